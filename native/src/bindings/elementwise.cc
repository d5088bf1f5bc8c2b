// Elementwise kernels: unary(name, x), binary(name, a, b), where(c, a, b), clamp(x, lo, hi), cast(x, dtype).
#include <cmath>
#include <cstring>
#include <map>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/elementwise.h"

namespace nodegrad {
namespace {

using cpu::BinaryOp;
using cpu::UnaryOp;

const std::map<std::string, UnaryOp> kUnary = {
    {"Neg", UnaryOp::Neg}, {"Exp", UnaryOp::Exp}, {"Log", UnaryOp::Log}, {"Sqrt", UnaryOp::Sqrt},
    {"Rsqrt", UnaryOp::Rsqrt}, {"Abs", UnaryOp::Abs}, {"Sign", UnaryOp::Sign}, {"Relu", UnaryOp::Relu},
    {"Sigmoid", UnaryOp::Sigmoid}, {"Tanh", UnaryOp::Tanh}};
const std::map<std::string, BinaryOp> kBinary = {
    {"Add", BinaryOp::Add}, {"Sub", BinaryOp::Sub}, {"Mul", BinaryOp::Mul}, {"Div", BinaryOp::Div},
    {"Pow", BinaryOp::Pow}, {"Maximum", BinaryOp::Maximum}, {"Minimum", BinaryOp::Minimum},
    {"Equal", BinaryOp::Eq}, {"NotEqual", BinaryOp::Ne}, {"Less", BinaryOp::Lt}, {"LessEqual", BinaryOp::Le},
    {"Greater", BinaryOp::Gt}, {"GreaterEqual", BinaryOp::Ge}};

template <typename M>
auto lookup(const M& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end()) throw std::runtime_error("unknown kernel '" + name + "'");
  return it->second;
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  NG_KERNEL(name, {
    TensorArg x = tensorArg(info, 1, name.c_str(), "x");
    requireF32(x, name.c_str(), "x");
    Buffer* y;
    auto h = newHandle(info.Env(), x.numel(), DType::F32, &y);
    cpu::unary(lookup(kUnary, name), x.f32(), y->as<float>(), int64_t(x.numel()));
    return rawObject(info.Env(), h, x.shape, DType::F32);
  })
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  NG_KERNEL(name, {
    TensorArg a = tensorArg(info, 1, name.c_str(), "a");
    TensorArg b = tensorArg(info, 2, name.c_str(), "b");
    requireF32(a, name.c_str(), "a");
    requireF32(b, name.c_str(), "b");
    auto so = cpu::broadcastShapes(a.shape, b.shape);
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(so)), DType::F32, &out);
    cpu::binary(lookup(kBinary, name), a.f32(), a.shape, b.f32(), b.shape, out->as<float>(), so);
    return rawObject(info.Env(), h, so, DType::F32);
  })
}

Napi::Value Where(const Napi::CallbackInfo& info) {
  NG_KERNEL("Where", {
    TensorArg c = tensorArg(info, 0, "Where", "cond");
    TensorArg a = tensorArg(info, 1, "Where", "a");
    TensorArg b = tensorArg(info, 2, "Where", "b");
    for (auto* t : {&c, &a, &b}) requireF32(*t, "Where", "input");
    auto so = cpu::broadcastShapes(cpu::broadcastShapes(c.shape, a.shape), b.shape);
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(so)), DType::F32, &out);
    cpu::where(c.f32(), c.shape, a.f32(), a.shape, b.f32(), b.shape, out->as<float>(), so);
    return rawObject(info.Env(), h, so, DType::F32);
  })
}

Napi::Value Clamp(const Napi::CallbackInfo& info) {
  NG_KERNEL("Clamp", {
    TensorArg x = tensorArg(info, 0, "Clamp", "x");
    requireF32(x, "Clamp", "x");
    Buffer* y;
    auto h = newHandle(info.Env(), x.numel(), DType::F32, &y);
    cpu::clamp(x.f32(), y->as<float>(), int64_t(x.numel()), info[1].As<Napi::Number>().FloatValue(),
               info[2].As<Napi::Number>().FloatValue());
    return rawObject(info.Env(), h, x.shape, DType::F32);
  })
}

template <typename S, typename D>
void convert(const void* src, void* dst, size_t n, bool truncate) {
  auto* s = static_cast<const S*>(src);
  auto* d = static_cast<D*>(dst);
  for (size_t i = 0; i < n; i++) d[i] = truncate ? D(std::trunc(double(s[i]))) : D(s[i]);
}

// Any dtype to any dtype; float -> integer truncates toward zero, as the 'ts' backend.
Napi::Value Cast(const Napi::CallbackInfo& info) {
  NG_KERNEL("Cast", {
    TensorArg x = tensorArg(info, 0, "Cast", "x");
    DType to = parseDType(info[1].As<Napi::String>(), "Cast");
    Buffer* y;
    auto h = newHandle(info.Env(), x.numel(), to, &y);
    bool trunc = to == DType::I32 || to == DType::I64;
    auto n = x.numel();
    const void* s = x.buf->data;
    void* d = y->data;
    auto fromF = [&](auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      switch (to) {
        case DType::F32: convert<S, float>(s, d, n, false); break;
        case DType::F64: case DType::I64: convert<S, double>(s, d, n, trunc); break;
        case DType::I32: convert<S, int32_t>(s, d, n, true); break;
      }
    };
    switch (x.dtype) {
      case DType::F32: fromF(static_cast<float*>(nullptr)); break;
      case DType::F64: case DType::I64: fromF(static_cast<double*>(nullptr)); break;
      case DType::I32: fromF(static_cast<int32_t*>(nullptr)); break;
    }
    return rawObject(info.Env(), h, x.shape, to);
  })
}

}  // namespace

void registerElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("where", Napi::Function::New(env, Where));
  exports.Set("clamp", Napi::Function::New(env, Clamp));
  exports.Set("cast", Napi::Function::New(env, Cast));
}

}  // namespace nodegrad
