#include "cpu/elementwise.h"

#include <cmath>

#include "core/elementwise_math.h"

namespace nodegrad::cpu {
namespace {

// Up to this many elements a loop runs on the calling thread without entering OpenMP: a parallel
// region whose `if` is false still makes a one-thread team (a heap allocation and about a
// microsecond), which was a third of a small elementwise kernel's time.
constexpr int64_t kParallelMin = 65536;

// body(i) for i in [0, n), vectorized, and on OpenMP's threads when n is large.
template <typename Body>
void loop(int64_t n, Body body) {
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

}  // namespace

// The math is core/elementwise_math.h's, shared with the 'cuda' kernels.
template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
#define NG_MAP1(OP) map1(x, y, n, [](T v) { return math::unary<OP>(v); })
  NG_UNARY_SWITCH(op, NG_MAP1)
#undef NG_MAP1
}

template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
#define NG_MAP2(OP) map2(a, sa, b, sb, out, so, [](T x, T y) { return math::binary<OP>(x, y); })
  NG_BINARY_SWITCH(op, NG_MAP2)
#undef NG_MAP2
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
void clamp(const T* x, T* y, int64_t n, T lo, T hi) {
  map1(x, y, n, [=](T v) { return math::clamp(v, lo, hi); });
}

template void unary<float>(UnaryOp, const float*, float*, int64_t);
template void unary<double>(UnaryOp, const double*, double*, int64_t);
template void binary<float>(BinaryOp, const float*, const Shape&, const float*, const Shape&, float*, const Shape&);
template void binary<double>(BinaryOp, const double*, const Shape&, const double*, const Shape&, double*, const Shape&);
#define NG_WHERE(C, T) \
  template void where<C, T>(const C*, const Shape&, const T*, const Shape&, const T*, const Shape&, T*, const Shape&);
NG_WHERE(float, float)
NG_WHERE(double, float)
NG_WHERE(float, double)
NG_WHERE(double, double)
NG_WHERE(int32_t, float)
NG_WHERE(int32_t, double)
#undef NG_WHERE
template void clamp<float>(const float*, float*, int64_t, float, float);
template void clamp<double>(const double*, double*, int64_t, double, double);

}  // namespace nodegrad::cpu
