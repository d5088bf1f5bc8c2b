#include "cpu/elementwise.h"

#include <cmath>

namespace nodegrad::cpu {
namespace {

template <typename F>
void map1(const float* x, float* y, int64_t n, F f) {
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
}

template <typename F>
void map2(const float* a, const Shape& sa, const float* b, const Shape& sb, float* out, const Shape& so, F f) {
  int64_t n = numel(so);
  if (numel(sa) == n && numel(sb) == n) {
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = f(a[i], b[i]);
  } else if (numel(sb) == 1 && numel(sa) == n) {
    float bv = b[0];
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = f(a[i], bv);
  } else {
    forEachBroadcast(so, broadcastStrides(sa, so), broadcastStrides(sb, so),
                     [&](int64_t o, int64_t ia, int64_t ib) { out[o] = f(a[ia], b[ib]); });
  }
}

}  // namespace

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map1(x, y, n, [](float v) { return -v; });
    case UnaryOp::Exp: return map1(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::Log: return map1(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::Sqrt: return map1(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt: return map1(x, y, n, [](float v) { return 1.0f / std::sqrt(v); });
    case UnaryOp::Abs: return map1(x, y, n, [](float v) { return std::fabs(v); });
    case UnaryOp::Sign: return map1(x, y, n, [](float v) { return float((v > 0) - (v < 0)); });
    case UnaryOp::Relu: return map1(x, y, n, [](float v) { return v > 0 ? v : 0.0f; });
    case UnaryOp::Sigmoid:
      return map1(x, y, n, [](float v) { return v >= 0 ? 1 / (1 + std::exp(-v)) : std::exp(v) / (1 + std::exp(v)); });
    case UnaryOp::Tanh: return map1(x, y, n, [](float v) { return std::tanh(v); });
  }
}

void binary(BinaryOp op, const float* a, const Shape& sa, const float* b, const Shape& sb, float* out, const Shape& so) {
  switch (op) {
    case BinaryOp::Add: return map2(a, sa, b, sb, out, so, [](float x, float y) { return x + y; });
    case BinaryOp::Sub: return map2(a, sa, b, sb, out, so, [](float x, float y) { return x - y; });
    case BinaryOp::Mul: return map2(a, sa, b, sb, out, so, [](float x, float y) { return x * y; });
    case BinaryOp::Div: return map2(a, sa, b, sb, out, so, [](float x, float y) { return x / y; });
    case BinaryOp::Pow: return map2(a, sa, b, sb, out, so, [](float x, float y) { return std::pow(x, y); });
    // NaN propagates through maximum/minimum, as in PyTorch.
    case BinaryOp::Maximum:
      return map2(a, sa, b, sb, out, so, [](float x, float y) { return (x != x || y != y) ? NAN : (x > y ? x : y); });
    case BinaryOp::Minimum:
      return map2(a, sa, b, sb, out, so, [](float x, float y) { return (x != x || y != y) ? NAN : (x < y ? x : y); });
    case BinaryOp::Eq: return map2(a, sa, b, sb, out, so, [](float x, float y) { return float(x == y); });
    case BinaryOp::Ne: return map2(a, sa, b, sb, out, so, [](float x, float y) { return float(x != y); });
    case BinaryOp::Lt: return map2(a, sa, b, sb, out, so, [](float x, float y) { return float(x < y); });
    case BinaryOp::Le: return map2(a, sa, b, sb, out, so, [](float x, float y) { return float(x <= y); });
    case BinaryOp::Gt: return map2(a, sa, b, sb, out, so, [](float x, float y) { return float(x > y); });
    case BinaryOp::Ge: return map2(a, sa, b, sb, out, so, [](float x, float y) { return float(x >= y); });
  }
}

void where(const float* c, const Shape& sc, const float* a, const Shape& sa, const float* b, const Shape& sb,
           float* out, const Shape& so) {
  // Pick a where the condition holds: first the mask, then the two-operand select.
  std::vector<uint8_t> mask(size_t(numel(so)));
  auto stc = broadcastStrides(sc, so);
  forEachBroadcast(so, stc, stc, [&](int64_t o, int64_t ic, int64_t) { mask[size_t(o)] = c[ic] != 0; });
  forEachBroadcast(so, broadcastStrides(sa, so), broadcastStrides(sb, so),
                   [&](int64_t o, int64_t ia, int64_t ib) { out[o] = mask[size_t(o)] ? a[ia] : b[ib]; });
}

void clamp(const float* x, float* y, int64_t n, float lo, float hi) {
  map1(x, y, n, [=](float v) { return v < lo ? lo : (v > hi ? hi : v); });
}

}  // namespace nodegrad::cpu
