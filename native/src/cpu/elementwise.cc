#include "cpu/elementwise.h"

#include <cmath>

#include "core/elementwise_math.h"
#include "core/simd_clones.h"

namespace nodegrad::cpu {
namespace {

// Up to this many elements a loop runs on the calling thread without entering OpenMP: a parallel
// region whose `if` is false still makes a one-thread team (a heap allocation and about a
// microsecond), which was a third of a small elementwise kernel's time.
constexpr int64_t kParallelMin = 65536;

// body(i) for i in [0, n), vectorized (in the CPU's widest vectors), and on OpenMP's threads when n
// is large.
template <typename Body>
NG_SIMD_CLONES void loop(int64_t n, Body body) {
  if (n > kParallelMin) {
#pragma omp parallel for simd
    for (int64_t i = 0; i < n; i++) body(i);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) body(i);
  }
}

template <typename T, typename F>
void map1(const T* x, T* y, int64_t n, F f) {
  loop(n, [&](int64_t i) { y[i] = f(x[i]); });
}

template <typename T, typename F>
void map2(const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so, F f) {
  int64_t n = numel(so);
  if (numel(sa) == n && numel(sb) == n) {
    loop(n, [&](int64_t i) { out[i] = f(a[i], b[i]); });
  } else if (numel(sb) == 1 && numel(sa) == n) {
    const T bv = b[0];
    loop(n, [&](int64_t i) { out[i] = f(a[i], bv); });
  } else {
    forEachBroadcast(so, broadcastStrides(sa, so), broadcastStrides(sb, so),
                     [&](int64_t o, int64_t ia, int64_t ib) { out[o] = f(a[ia], b[ib]); });
  }
}

// What a half operand computes in: core/elementwise_math.h's HalfUnaryIn and HalfBinaryIn.
template <UnaryOp op>
using UnaryIn = math::HalfUnaryIn<op>;
template <BinaryOp op>
using BinaryIn = math::HalfBinaryIn<op>;

}  // namespace

// The math is core/elementwise_math.h's, shared with the 'cuda' kernels.
template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
  if constexpr (kHalf<T>) {
#define NG_MAP1(OP) map1(x, y, n, [](T v) { return T(math::unary<OP>(UnaryIn<OP>(float(v)))); })
    NG_UNARY_SWITCH(op, NG_MAP1)
#undef NG_MAP1
  } else {
#define NG_MAP1(OP) map1(x, y, n, [](T v) { return math::unary<OP>(v); })
    NG_UNARY_SWITCH(op, NG_MAP1)
#undef NG_MAP1
  }
}

template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
  if constexpr (kHalf<T>) {
#define NG_MAP2(OP) \
  map2(a, sa, b, sb, out, so, [](T x, T y) { return T(math::binary<OP>(BinaryIn<OP>(float(x)), BinaryIn<OP>(float(y)))); })
    NG_BINARY_SWITCH(op, NG_MAP2)
#undef NG_MAP2
  } else {
#define NG_MAP2(OP) map2(a, sa, b, sb, out, so, [](T x, T y) { return math::binary<OP>(x, y); })
    NG_BINARY_SWITCH(op, NG_MAP2)
#undef NG_MAP2
  }
}

template <typename T>
void binaryScalar(BinaryOp op, const T* x, float s, bool scalarFirst, T* out, int64_t n) {
#define NG_MAPS(OP)                                                                                    \
  {                                                                                                    \
    const BinaryIn<OP> v(s);                                                                           \
    if (scalarFirst) map1(x, out, n, [=](T e) { return T(math::binary<OP>(v, BinaryIn<OP>(float(e)))); }); \
    else map1(x, out, n, [=](T e) { return T(math::binary<OP>(BinaryIn<OP>(float(e)), v)); });         \
  }
  NG_BINARY_SWITCH(op, NG_MAPS)
#undef NG_MAPS
}

template <typename C, typename T>
void where(const C* c, const Shape& sc, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
  // Pick a where the condition holds: first the mask, then the two-operand select.
  std::vector<uint8_t> mask(size_t(numel(so)));
  auto stc = broadcastStrides(sc, so);
  forEachBroadcast(so, stc, stc, [&](int64_t o, int64_t ic, int64_t) { mask[size_t(o)] = c[ic] != 0; });
  forEachBroadcast(so, broadcastStrides(sa, so), broadcastStrides(sb, so),
                   [&](int64_t o, int64_t ia, int64_t ib) { out[o] = mask[size_t(o)] ? a[ia] : b[ib]; });
}

template <typename T>
void clamp(const T* x, T* y, int64_t n, double lo, double hi) {
  if constexpr (kHalf<T>) {
    map1(x, y, n, [=](T v) { return T(math::clamp(double(float(v)), lo, hi)); });
  } else {
    map1(x, y, n, [l = T(lo), h = T(hi)](T v) { return math::clamp(v, l, h); });
  }
}

template <typename T>
void activation(ActivationOp op, const T* x, T* y, int64_t n, double a, double b) {
  if constexpr (kHalf<T>) {
#define NG_MAPA(OP) map1(x, y, n, [=](T v) { return T(math::activation<OP>(double(float(v)), a, b)); })
    NG_ACTIVATION_SWITCH(op, NG_MAPA)
#undef NG_MAPA
  } else {
#define NG_MAPA(OP) map1(x, y, n, [pa = T(a), pb = T(b)](T v) { return math::activation<OP>(v, pa, pb); })
    NG_ACTIVATION_SWITCH(op, NG_MAPA)
#undef NG_MAPA
  }
}

#define NG_ELEMENTWISE(T)                                                                        \
  template void unary<T>(UnaryOp, const T*, T*, int64_t);                                        \
  template void activation<T>(ActivationOp, const T*, T*, int64_t, double, double);              \
  template void binary<T>(BinaryOp, const T*, const Shape&, const T*, const Shape&, T*, const Shape&); \
  template void clamp<T>(const T*, T*, int64_t, double, double);
#define NG_WHERE(C, T) \
  template void where<C, T>(const C*, const Shape&, const T*, const Shape&, const T*, const Shape&, T*, const Shape&);
#define NG_WHERE_ANY_COND(T) \
  NG_WHERE(float, T) NG_WHERE(double, T) NG_WHERE(int32_t, T) NG_WHERE(BFloat16, T) NG_WHERE(Float16, T)
#define NG_ALL(T) NG_ELEMENTWISE(T) NG_WHERE_ANY_COND(T)
NG_ALL(float)
NG_ALL(double)
NG_ALL(BFloat16)
NG_ALL(Float16)
template void binaryScalar<BFloat16>(BinaryOp, const BFloat16*, float, bool, BFloat16*, int64_t);
template void binaryScalar<Float16>(BinaryOp, const Float16*, float, bool, Float16*, int64_t);
#undef NG_ALL
#undef NG_WHERE_ANY_COND
#undef NG_WHERE
#undef NG_ELEMENTWISE

}  // namespace nodegrad::cpu
