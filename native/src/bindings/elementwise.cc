// Elementwise kernels: Neg ... Erf (x), Add ... GreaterEqual and ReluBackward (a, b), Where (cond, a, b),
// Clamp (x, min, max), Activation (x, kind, a, b) and Cast (x, dtype).
#include <utility>

#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

struct UnaryName {
  const char* name;
  UnaryOp op;
};
constexpr UnaryName kUnary[] = {
    {"Neg", UnaryOp::Neg}, {"Exp", UnaryOp::Exp}, {"Log", UnaryOp::Log}, {"Sqrt", UnaryOp::Sqrt},
    {"Rsqrt", UnaryOp::Rsqrt}, {"Abs", UnaryOp::Abs}, {"Sign", UnaryOp::Sign}, {"Relu", UnaryOp::Relu},
    {"Sigmoid", UnaryOp::Sigmoid}, {"Tanh", UnaryOp::Tanh}, {"Log1p", UnaryOp::Log1p}, {"Expm1", UnaryOp::Expm1},
    {"Sin", UnaryOp::Sin}, {"Cos", UnaryOp::Cos}, {"Erf", UnaryOp::Erf}};

struct BinaryName {
  const char* name;
  BinaryOp op;
};
constexpr BinaryName kBinary[] = {
    {"Add", BinaryOp::Add}, {"Sub", BinaryOp::Sub}, {"Mul", BinaryOp::Mul}, {"Div", BinaryOp::Div},
    {"Pow", BinaryOp::Pow}, {"Maximum", BinaryOp::Maximum}, {"Minimum", BinaryOp::Minimum},
    {"Equal", BinaryOp::Eq}, {"NotEqual", BinaryOp::Ne}, {"Less", BinaryOp::Lt}, {"LessEqual", BinaryOp::Le},
    {"Greater", BinaryOp::Gt}, {"GreaterEqual", BinaryOp::Ge}, {"ReluBackward", BinaryOp::ReluGrad}};

template <size_t I>
Napi::Value Unary(const Napi::CallbackInfo& info) {
  constexpr const char* name = kUnary[I].name;
  TensorRef x = tensorAt(info, 0, name, "x");
  NG_KERNEL(name, return result(info, deviceOf(info).kernels.unary(kUnary[I].op, x));)
}

template <size_t I>
Napi::Value Binary(const Napi::CallbackInfo& info) {
  constexpr const char* name = kBinary[I].name;
  TensorRef a = tensorAt(info, 0, name, "a");
  TensorRef b = tensorAt(info, 1, name, "b");
  NG_KERNEL(name, {
    // A half tensor beside a float32 scalar, either way round (KernelTable::binaryScalar).
    const auto scalarBeside = [](const TensorRef& x, const TensorRef& s) {
      return isHalf(x.dtype) && s.dtype == DType::F32 && numel(s.shape) == 1 && s.shape.size() <= x.shape.size();
    };
    const auto& k = deviceOf(info).kernels;
    if (a.dtype != b.dtype) {
      if (scalarBeside(a, b)) return result(info, k.binaryScalar(kBinary[I].op, a, b, false));
      if (scalarBeside(b, a)) return result(info, k.binaryScalar(kBinary[I].op, b, a, true));
    }
    requireSameDType("a", a, "b", b);
    return result(info, k.binary(kBinary[I].op, a, b));
  })
}

Napi::Value Where(const Napi::CallbackInfo& info) {
  TensorRef c = tensorAt(info, 0, "Where", "cond");
  TensorRef a = tensorAt(info, 1, "Where", "a");
  TensorRef b = tensorAt(info, 2, "Where", "b");
  NG_KERNEL("Where", {
    requireSameDType("a", a, "b", b);
    return result(info, deviceOf(info).kernels.where(c, a, b));
  })
}

Napi::Value Clamp(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Clamp", "x");
  const double lo = numberArg(info[1], "Clamp", "min"), hi = numberArg(info[2], "Clamp", "max");
  NG_KERNEL("Clamp", return result(info, deviceOf(info).kernels.clamp(x, lo, hi));)
}

struct ActivationName {
  const char* name;
  ActivationOp op;
};
constexpr ActivationName kActivation[] = {
    {"softplus", ActivationOp::Softplus}, {"gelu", ActivationOp::Gelu}, {"geluTanh", ActivationOp::GeluTanh},
    {"silu", ActivationOp::Silu}, {"elu", ActivationOp::Elu}, {"leakyRelu", ActivationOp::LeakyRelu},
    {"hardtanh", ActivationOp::Hardtanh}};

Napi::Value Activation(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Activation", "x");
  if (!info[1].IsString()) throw Napi::TypeError::New(info.Env(), "Activation: kind must be a string");
  const std::string kind = info[1].As<Napi::String>().Utf8Value();
  const ActivationName* found = nullptr;
  for (const auto& n : kActivation) if (kind == n.name) found = &n;
  if (!found) throw Napi::TypeError::New(info.Env(), "Activation: unknown kind '" + kind + "'");
  const double a = numberArg(info[2], "Activation", "a"), b = numberArg(info[3], "Activation", "b");
  NG_KERNEL("Activation", return result(info, deviceOf(info).kernels.activation(found->op, x, a, b));)
}

Napi::Value Cast(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Cast", "x");
  DType to = dtypeArg(info[1], "Cast");
  NG_KERNEL("Cast", return result(info, deviceOf(info).kernels.cast(x, to));)
}

template <size_t... I>
void bindUnary(Napi::Env env, Napi::Object k, const Device& d, std::index_sequence<I...>) {
  (defineKernel<Unary<I>>(env, k, kUnary[I].name, d), ...);
}

template <size_t... I>
void bindBinary(Napi::Env env, Napi::Object k, const Device& d, std::index_sequence<I...>) {
  (defineKernel<Binary<I>>(env, k, kBinary[I].name, d), ...);
}

}  // namespace

void bindElementwise(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.unary) bindUnary(env, k, d, std::make_index_sequence<std::size(kUnary)>());
  if (d.kernels.binary) bindBinary(env, k, d, std::make_index_sequence<std::size(kBinary)>());
  if (d.kernels.where) defineKernel<Where>(env, k, "Where", d);
  if (d.kernels.clamp) defineKernel<Clamp>(env, k, "Clamp", d);
  if (d.kernels.activation) defineKernel<Activation>(env, k, "Activation", d);
  if (d.kernels.cast) defineKernel<Cast>(env, k, "Cast", d);
}

}  // namespace nodegrad
