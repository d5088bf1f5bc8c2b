#include "cpu/elementwise.h"

#include <cmath>

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

template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map1(x, y, n, [](T v) { return -v; });
    case UnaryOp::Exp: return map1(x, y, n, [](T v) { return std::exp(v); });
    case UnaryOp::Log: return map1(x, y, n, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt: return map1(x, y, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt: return map1(x, y, n, [](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::Abs: return map1(x, y, n, [](T v) { return std::fabs(v); });
    case UnaryOp::Sign: return map1(x, y, n, [](T v) { return T((v > 0) - (v < 0)); });
    case UnaryOp::Relu: return map1(x, y, n, [](T v) { return v > 0 ? v : T(0); });
    case UnaryOp::Sigmoid:
      return map1(x, y, n, [](T v) { return v >= 0 ? 1 / (1 + std::exp(-v)) : std::exp(v) / (1 + std::exp(v)); });
    case UnaryOp::Tanh: return map1(x, y, n, [](T v) { return std::tanh(v); });
  }
}

template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
  switch (op) {
    case BinaryOp::Add: return map2(a, sa, b, sb, out, so, [](T x, T y) { return x + y; });
    case BinaryOp::Sub: return map2(a, sa, b, sb, out, so, [](T x, T y) { return x - y; });
    case BinaryOp::Mul: return map2(a, sa, b, sb, out, so, [](T x, T y) { return x * y; });
    case BinaryOp::Div: return map2(a, sa, b, sb, out, so, [](T x, T y) { return x / y; });
    case BinaryOp::Pow: return map2(a, sa, b, sb, out, so, [](T x, T y) { return std::pow(x, y); });
    // NaN propagates through maximum/minimum, as in PyTorch.
    case BinaryOp::Maximum:
      return map2(a, sa, b, sb, out, so, [](T x, T y) { return (x != x || y != y) ? T(NAN) : (x > y ? x : y); });
    case BinaryOp::Minimum:
      return map2(a, sa, b, sb, out, so, [](T x, T y) { return (x != x || y != y) ? T(NAN) : (x < y ? x : y); });
    case BinaryOp::Eq: return map2(a, sa, b, sb, out, so, [](T x, T y) { return T(x == y); });
    case BinaryOp::Ne: return map2(a, sa, b, sb, out, so, [](T x, T y) { return T(x != y); });
    case BinaryOp::Lt: return map2(a, sa, b, sb, out, so, [](T x, T y) { return T(x < y); });
    case BinaryOp::Le: return map2(a, sa, b, sb, out, so, [](T x, T y) { return T(x <= y); });
    case BinaryOp::Gt: return map2(a, sa, b, sb, out, so, [](T x, T y) { return T(x > y); });
    case BinaryOp::Ge: return map2(a, sa, b, sb, out, so, [](T x, T y) { return T(x >= y); });
  }
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
  map1(x, y, n, [=](T v) { return v < lo ? lo : (v > hi ? hi : v); });
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
