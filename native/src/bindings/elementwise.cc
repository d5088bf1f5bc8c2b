// Elementwise kernels: unary(name, x), binary(name, a, b), where(c, a, b), clamp(x, lo, hi), cast(x, dtype).
#include <cmath>
#include <cstring>
#include <map>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/elementwise.h"
#include "cpu/layout.h"

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

// Elementwise kernels keep a blocked layout (cpu/layout.h) when they can compute on the buffers as
// stored: the tensor operands of the result's shape share one blocked layout, and the others are
// single elements broadcast over it. A plain float32 operand of that shape beside a blocked one is
// blocked to match (one reorder either way, and the result stays blocked for the next conv; a
// ResNet's identity shortcut after a plain max-pool is such a case). Returns the layout's buffer,
// or null after reading every operand plain. Kept results get their padding zeroed again.
Buffer* keptLayout(std::initializer_list<TensorArg*> args) {
  Buffer* ref = nullptr;
  for (auto* t : args) {
    if (t->blockedAsIs() && !ref) ref = t->buf;
  }
  bool ok = ref != nullptr;
  for (auto* t : args) {
    if (!ok) break;
    const bool same = t->blockedAsIs() && t->buf->block == ref->block && t->buf->dims == ref->dims;
    const bool blockable = t->buf->block == 0 && t->dtype == DType::F32 && t->shape == ref->dims;
    ok = same || blockable || (t->numel() == 1 && t->shape.size() <= 4);
  }
  for (auto* t : args) {
    const bool same = ok && t->blockedAsIs() && t->buf->block == ref->block && t->buf->dims == ref->dims;
    if (same) continue;
    plainView(*t);
    if (ok && t->numel() != 1) blockedView(*t, ref);
  }
  return ok ? ref : nullptr;
}

// The shape a kept operand is computed under: the whole stored buffer, or one element.
cpu::Shape storedShape(const TensorArg& t) {
  return {t.buf->block ? int64_t(t.buf->bytes / elementSize(t.dtype)) : 1};
}

// A result in `ref`'s layout (ref null: plain, of `numel` elements).
Napi::Value newResult(Napi::Env env, const Buffer* ref, size_t numel, DType dtype, Buffer** out) {
  return ref ? newBlockedHandle(env, ref->dims, ref->block, out) : newHandle(env, numel, dtype, out);
}

void finishKept(const Buffer* ref, Buffer* out) {
  if (ref) cpu::zeroBlockPadding(ref->dims, ref->block, out->as<float>());
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  NG_KERNEL(name, {
    TensorArg x = tensorArgAnyLayout(info, 1, name.c_str(), "x");
    requireReal(x, name.c_str(), "x");
    Buffer* ref = keptLayout({&x});
    Buffer* y;
    auto h = newResult(info.Env(), ref, x.numel(), x.dtype, &y);
    const auto n = int64_t(y->bytes / elementSize(x.dtype));
    NG_REAL_DISPATCH(x.dtype, cpu::unary(lookup(kUnary, name), x.buf->as<T>(), y->as<T>(), n);)
    finishKept(ref, y);
    return rawObject(info.Env(), h, x.shape, x.dtype);
  })
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  NG_KERNEL(name, {
    TensorArg a = tensorArgAnyLayout(info, 1, name.c_str(), "a");
    TensorArg b = tensorArgAnyLayout(info, 2, name.c_str(), "b");
    requireReal(a, name.c_str(), "a");
    requireSameDType(a, b, name.c_str());
    auto so = cpu::broadcastShapes(a.shape, b.shape);
    Buffer* ref = keptLayout({&a, &b});
    Buffer* out;
    auto h = newResult(info.Env(), ref, size_t(cpu::numel(so)), a.dtype, &out);
    auto sa = ref ? storedShape(a) : a.shape, sb = ref ? storedShape(b) : b.shape;
    auto sOut = ref ? cpu::Shape{int64_t(out->bytes / elementSize(a.dtype))} : so;
    NG_REAL_DISPATCH(a.dtype,
      cpu::binary(lookup(kBinary, name), a.buf->as<T>(), sa, b.buf->as<T>(), sb, out->as<T>(), sOut);)
    finishKept(ref, out);
    return rawObject(info.Env(), h, so, a.dtype);
  })
}

Napi::Value Where(const Napi::CallbackInfo& info) {
  NG_KERNEL("Where", {
    TensorArg c = tensorArgAnyLayout(info, 0, "Where", "cond");
    TensorArg a = tensorArgAnyLayout(info, 1, "Where", "a");
    TensorArg b = tensorArgAnyLayout(info, 2, "Where", "b");
    requireReal(a, "Where", "a");
    requireSameDType(a, b, "Where");
    auto so = cpu::broadcastShapes(cpu::broadcastShapes(c.shape, a.shape), b.shape);
    Buffer* ref = keptLayout({&c, &a, &b});
    Buffer* out;
    auto h = newResult(info.Env(), ref, size_t(cpu::numel(so)), a.dtype, &out);
    auto sc = ref ? storedShape(c) : c.shape, sa = ref ? storedShape(a) : a.shape, sb = ref ? storedShape(b) : b.shape;
    auto sOut = ref ? cpu::Shape{int64_t(out->bytes / elementSize(a.dtype))} : so;
    NG_REAL_DISPATCH(a.dtype, {
      auto* o = out->as<T>();
      if (c.dtype == DType::F32) cpu::where(c.f32(), sc, a.buf->as<T>(), sa, b.buf->as<T>(), sb, o, sOut);
      else if (c.dtype == DType::I32) cpu::where(c.buf->as<int32_t>(), sc, a.buf->as<T>(), sa, b.buf->as<T>(), sb, o, sOut);
      else cpu::where(c.buf->as<double>(), sc, a.buf->as<T>(), sa, b.buf->as<T>(), sb, o, sOut);
    })
    finishKept(ref, out);
    return rawObject(info.Env(), h, so, a.dtype);
  })
}

Napi::Value Clamp(const Napi::CallbackInfo& info) {
  NG_KERNEL("Clamp", {
    TensorArg x = tensorArgAnyLayout(info, 0, "Clamp", "x");
    requireReal(x, "Clamp", "x");
    Buffer* ref = keptLayout({&x});
    Buffer* y;
    auto h = newResult(info.Env(), ref, x.numel(), x.dtype, &y);
    double lo = info[1].As<Napi::Number>().DoubleValue(), hi = info[2].As<Napi::Number>().DoubleValue();
    const auto n = int64_t(y->bytes / elementSize(x.dtype));
    NG_REAL_DISPATCH(x.dtype, cpu::clamp(x.buf->as<T>(), y->as<T>(), n, T(lo), T(hi));)
    finishKept(ref, y);
    return rawObject(info.Env(), h, x.shape, x.dtype);
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
