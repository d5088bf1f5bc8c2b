// The elementwise ops' per-element math, for every device (core/hd.h). T is float or double
// (double also holds int64). Written with the C library's names so that nvcc picks its device
// overloads and the host compiler <cmath>'s.
#pragma once
#include <cmath>
#include <type_traits>

#include "core/hd.h"
#include "core/params.h"

namespace nodegrad::math {

using std::cos;
using std::erf;
using std::exp;
using std::expm1;
using std::fabs;
using std::log;
using std::log1p;
using std::pow;
using std::sin;
using std::sqrt;
using std::tanh;

template <UnaryOp op, typename T>
NG_HD T unary(T v) {
  if constexpr (op == UnaryOp::Neg) return -v;
  if constexpr (op == UnaryOp::Exp) return exp(v);
  if constexpr (op == UnaryOp::Log) return log(v);
  if constexpr (op == UnaryOp::Sqrt) return sqrt(v);
  if constexpr (op == UnaryOp::Rsqrt) return T(1) / sqrt(v);
  if constexpr (op == UnaryOp::Abs) return fabs(v);
  if constexpr (op == UnaryOp::Sign) return T((v > 0) - (v < 0));
  // As PyTorch: NaN passes through (a NaN must not vanish into a 0), and -0 stays -0.
  if constexpr (op == UnaryOp::Relu) return v < 0 ? T(0) : v;
  // Each branch exponentiates a non-positive number, so neither overflows.
  if constexpr (op == UnaryOp::Sigmoid) return v >= 0 ? T(1) / (T(1) + exp(-v)) : exp(v) / (T(1) + exp(v));
  if constexpr (op == UnaryOp::Tanh) return tanh(v);
  if constexpr (op == UnaryOp::Log1p) return log1p(v);
  if constexpr (op == UnaryOp::Expm1) return expm1(v);
  if constexpr (op == UnaryOp::Sin) return sin(v);
  if constexpr (op == UnaryOp::Cos) return cos(v);
  if constexpr (op == UnaryOp::Erf) return erf(v);
}

template <BinaryOp op, typename T>
NG_HD T binary(T x, T y) {
  if constexpr (op == BinaryOp::Add) return x + y;
  if constexpr (op == BinaryOp::Sub) return x - y;
  if constexpr (op == BinaryOp::Mul) return x * y;
  if constexpr (op == BinaryOp::Div) return x / y;
  if constexpr (op == BinaryOp::Pow) return pow(x, y);
  // NaN propagates through maximum/minimum, as in PyTorch (x != x is the NaN test on both sides).
  if constexpr (op == BinaryOp::Maximum) return (x != x || y != y) ? x + y : (x > y ? x : y);
  if constexpr (op == BinaryOp::Minimum) return (x != x || y != y) ? x + y : (x < y ? x : y);
  if constexpr (op == BinaryOp::Eq) return T(x == y);
  if constexpr (op == BinaryOp::Ne) return T(x != y);
  if constexpr (op == BinaryOp::Lt) return T(x < y);
  if constexpr (op == BinaryOp::Le) return T(x <= y);
  if constexpr (op == BinaryOp::Gt) return T(x > y);
  if constexpr (op == BinaryOp::Ge) return T(x >= y);
  // x is the gradient, y relu's output: a zero output passes nothing, even an infinite gradient.
  if constexpr (op == BinaryOp::ReluGrad) return y <= T(0) ? T(0) : x;
}

template <typename T>
NG_HD T clamp(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// PyTorch's activations (packages/autograd/src/ops/activation.ts states the same formulas).
template <ActivationOp op, typename T>
NG_HD T activation(T v, T a, T b) {
  if constexpr (op == ActivationOp::Softplus) {
    // Linear above threshold / beta, where log1p(exp(beta v)) / beta equals v to float precision.
    const T bv = v * a;
    return bv > b ? v : log1p(exp(bv)) / a;
  }
  if constexpr (op == ActivationOp::Gelu) return v * T(0.5) * (erf(v * T(0.70710678118654752440)) + T(1));
  if constexpr (op == ActivationOp::GeluTanh) {
    const T k = T(0.79788456080286535588);  // sqrt(2 / pi)
    return v * T(0.5) * (tanh((v + v * v * v * T(0.044715)) * k) + T(1));
  }
  if constexpr (op == ActivationOp::Silu) return v * unary<UnaryOp::Sigmoid>(v);
  if constexpr (op == ActivationOp::Elu) return v > T(0) ? v : expm1(v) * a;
  if constexpr (op == ActivationOp::LeakyRelu) return v > T(0) ? v : v * a;
  if constexpr (op == ActivationOp::Hardtanh) return clamp(v, a, b);
}

// What a half operand computes in, on every device. The 'ts' reference computes in float64 and
// rounds to float32, then to the half type; float32 arithmetic gives the same float32 for + - * /
// and sqrt (rounding twice through a format of 53 >= 2 * 24 + 2 bits is innocuous, Figueroa 1995)
// and for the exact ops, but not for the transcendental ones, which run in double.
template <UnaryOp op>
using HalfUnaryIn = std::conditional_t<op == UnaryOp::Exp || op == UnaryOp::Log || op == UnaryOp::Rsqrt ||
                                           op == UnaryOp::Sigmoid || op == UnaryOp::Tanh || op == UnaryOp::Log1p ||
                                           op == UnaryOp::Expm1 || op == UnaryOp::Sin || op == UnaryOp::Cos ||
                                           op == UnaryOp::Erf,
                                       double, float>;
template <BinaryOp op>
using HalfBinaryIn = std::conditional_t<op == BinaryOp::Pow, double, float>;

}  // namespace nodegrad::math

// Calls BODY(OP) with OP a constexpr UnaryOp / BinaryOp equal to the runtime `op`: the one switch
// from an op enum to a template argument, for every device's kernels.
#define NG_UNARY_SWITCH(op, BODY)                    \
  switch (op) {                                      \
    case ::nodegrad::UnaryOp::Neg: BODY(::nodegrad::UnaryOp::Neg); break;         \
    case ::nodegrad::UnaryOp::Exp: BODY(::nodegrad::UnaryOp::Exp); break;         \
    case ::nodegrad::UnaryOp::Log: BODY(::nodegrad::UnaryOp::Log); break;         \
    case ::nodegrad::UnaryOp::Sqrt: BODY(::nodegrad::UnaryOp::Sqrt); break;       \
    case ::nodegrad::UnaryOp::Rsqrt: BODY(::nodegrad::UnaryOp::Rsqrt); break;     \
    case ::nodegrad::UnaryOp::Abs: BODY(::nodegrad::UnaryOp::Abs); break;         \
    case ::nodegrad::UnaryOp::Sign: BODY(::nodegrad::UnaryOp::Sign); break;       \
    case ::nodegrad::UnaryOp::Relu: BODY(::nodegrad::UnaryOp::Relu); break;       \
    case ::nodegrad::UnaryOp::Sigmoid: BODY(::nodegrad::UnaryOp::Sigmoid); break; \
    case ::nodegrad::UnaryOp::Tanh: BODY(::nodegrad::UnaryOp::Tanh); break;       \
    case ::nodegrad::UnaryOp::Log1p: BODY(::nodegrad::UnaryOp::Log1p); break;     \
    case ::nodegrad::UnaryOp::Expm1: BODY(::nodegrad::UnaryOp::Expm1); break;     \
    case ::nodegrad::UnaryOp::Sin: BODY(::nodegrad::UnaryOp::Sin); break;         \
    case ::nodegrad::UnaryOp::Cos: BODY(::nodegrad::UnaryOp::Cos); break;         \
    case ::nodegrad::UnaryOp::Erf: BODY(::nodegrad::UnaryOp::Erf); break;         \
  }

#define NG_ACTIVATION_SWITCH(op, BODY)                                                      \
  switch (op) {                                                                             \
    case ::nodegrad::ActivationOp::Softplus: BODY(::nodegrad::ActivationOp::Softplus); break;   \
    case ::nodegrad::ActivationOp::Gelu: BODY(::nodegrad::ActivationOp::Gelu); break;           \
    case ::nodegrad::ActivationOp::GeluTanh: BODY(::nodegrad::ActivationOp::GeluTanh); break;   \
    case ::nodegrad::ActivationOp::Silu: BODY(::nodegrad::ActivationOp::Silu); break;           \
    case ::nodegrad::ActivationOp::Elu: BODY(::nodegrad::ActivationOp::Elu); break;             \
    case ::nodegrad::ActivationOp::LeakyRelu: BODY(::nodegrad::ActivationOp::LeakyRelu); break; \
    case ::nodegrad::ActivationOp::Hardtanh: BODY(::nodegrad::ActivationOp::Hardtanh); break;   \
  }

#define NG_BINARY_SWITCH(op, BODY)                                                    \
  switch (op) {                                                                       \
    case ::nodegrad::BinaryOp::Add: BODY(::nodegrad::BinaryOp::Add); break;           \
    case ::nodegrad::BinaryOp::Sub: BODY(::nodegrad::BinaryOp::Sub); break;           \
    case ::nodegrad::BinaryOp::Mul: BODY(::nodegrad::BinaryOp::Mul); break;           \
    case ::nodegrad::BinaryOp::Div: BODY(::nodegrad::BinaryOp::Div); break;           \
    case ::nodegrad::BinaryOp::Pow: BODY(::nodegrad::BinaryOp::Pow); break;           \
    case ::nodegrad::BinaryOp::Maximum: BODY(::nodegrad::BinaryOp::Maximum); break;   \
    case ::nodegrad::BinaryOp::Minimum: BODY(::nodegrad::BinaryOp::Minimum); break;   \
    case ::nodegrad::BinaryOp::Eq: BODY(::nodegrad::BinaryOp::Eq); break;             \
    case ::nodegrad::BinaryOp::Ne: BODY(::nodegrad::BinaryOp::Ne); break;             \
    case ::nodegrad::BinaryOp::Lt: BODY(::nodegrad::BinaryOp::Lt); break;             \
    case ::nodegrad::BinaryOp::Le: BODY(::nodegrad::BinaryOp::Le); break;             \
    case ::nodegrad::BinaryOp::Gt: BODY(::nodegrad::BinaryOp::Gt); break;             \
    case ::nodegrad::BinaryOp::Ge: BODY(::nodegrad::BinaryOp::Ge); break;             \
    case ::nodegrad::BinaryOp::ReluGrad: BODY(::nodegrad::BinaryOp::ReluGrad); break; \
  }
