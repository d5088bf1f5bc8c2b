// Conv kernels: conv2d(x, w, p), conv2dFused(x, w, bias, residual, p), conv2dBackpropInput(dy, w,
// xShape, p) and conv2dBackpropFilter(x, dy, wShape, p); p is the Conv2DParams object of the
// Kernels interface (Conv2DFusedParams, with `relu`, for conv2dFused).
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/conv.h"

namespace nodegrad {
namespace {

std::string fmt(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Reads { stride: [h, w], padding: [h, w], dilation: [h, w], groups }.
cpu::ConvParams convParams(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": params must be an object");
  auto o = info[i].As<Napi::Object>();
  auto pair = [&](const char* name, int64_t& a, int64_t& b) {
    auto v = o.Get(name);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) {
      throw Napi::TypeError::New(info.Env(), std::string(op) + ": params." + name + " must be a pair of numbers");
    }
    a = v.As<Napi::Array>().Get(0u).As<Napi::Number>().Int64Value();
    b = v.As<Napi::Array>().Get(1u).As<Napi::Number>().Int64Value();
  };
  cpu::ConvParams p{};
  pair("stride", p.sh, p.sw);
  pair("padding", p.ph, p.pw);
  pair("dilation", p.dh, p.dw);
  if (!o.Get("groups").IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": params.groups must be a number");
  p.groups = o.Get("groups").As<Napi::Number>().Int64Value();
  return p;
}

// An activation argument as the conv kernels take it: a blocked buffer seen under its own shape
// is passed as it is; anything else (a view of one included) is read plain.
cpu::Act act(TensorArg& t) {
  if (!t.blockedAsIs()) plainView(t);
  return {t.f32(), t.buf->block};
}

// A weight argument with its buffer's reorder cache (none for a plain copy of a blocked buffer).
cpu::Weight weight(const TensorArg& t) {
  return {t.f32(), t.buf->generation, t.converted ? nullptr : &t.buf->derived};
}

// Allocates an activation result of logical shape `dims` in the layout the kernel reports.
struct ActResult {
  Napi::Env env;
  std::vector<int64_t> dims;
  Napi::Value handle;
  cpu::AllocAct alloc() {
    return [this](int block) {
      Buffer* b;
      handle = newBlockedHandle(env, dims, block, &b);
      return b->as<float>();
    };
  }
};

Napi::Value Conv2D(const Napi::CallbackInfo& info) {
  NG_KERNEL("Conv2D", {
    TensorArg x = tensorArgAnyLayout(info, 0, "Conv2D", "x");
    TensorArg w = tensorArg(info, 1, "Conv2D", "w");
    auto p = convParams(info, 2, "Conv2D");
    requireF32(x, "Conv2D", "x");
    requireF32(w, "Conv2D", "w");
    auto g = cpu::convGeom(x.shape, w.shape, p);
    ActResult y{info.Env(), g.yShape(), {}};
    cpu::conv2dForward(g, act(x), weight(w), y.alloc());
    return rawObject(info.Env(), y.handle, g.yShape(), DType::F32);
  })
}

// conv2dFused(x, w, bias | null, residual | null, p) with p.relu: the inference epilogue.
Napi::Value Conv2DFused(const Napi::CallbackInfo& info) {
  NG_KERNEL("Conv2DFused", {
    const char* op = "Conv2DFused";
    TensorArg x = tensorArgAnyLayout(info, 0, op, "x");
    TensorArg w = tensorArg(info, 1, op, "w");
    auto p = convParams(info, 4, op);
    auto relu = info[4].As<Napi::Object>().Get("relu");
    if (!relu.IsBoolean()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": params.relu must be a boolean");
    requireF32(x, op, "x");
    requireF32(w, op, "w");
    auto g = cpu::convGeom(x.shape, w.shape, p);
    const float* bias = nullptr;
    std::optional<TensorArg> r;
    cpu::Act residual{};
    if (!info[2].IsNull()) {
      TensorArg b = tensorArg(info, 2, op, "bias");
      requireF32(b, op, "bias");
      if (b.shape != std::vector<int64_t>{g.o}) {
        throw std::runtime_error("bias of shape " + fmt(b.shape) + " must have shape [" + std::to_string(g.o) + "]");
      }
      bias = b.f32();
    }
    if (!info[3].IsNull()) {
      r = tensorArgAnyLayout(info, 3, op, "residual");
      requireF32(*r, op, "residual");
      if (r->shape != g.yShape()) {
        throw std::runtime_error("residual of shape " + fmt(r->shape) + " must have the output's shape " +
                                 fmt(g.yShape()));
      }
      residual = act(*r);
    }
    ActResult y{info.Env(), g.yShape(), {}};
    cpu::conv2dForwardFused(g, act(x), weight(w), bias, r ? &residual : nullptr, relu.As<Napi::Boolean>().Value(),
                            y.alloc());
    return rawObject(info.Env(), y.handle, g.yShape(), DType::F32);
  })
}

Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  NG_KERNEL("Conv2DBackpropInput", {
    TensorArg dy = tensorArgAnyLayout(info, 0, "Conv2DBackpropInput", "dy");
    TensorArg w = tensorArg(info, 1, "Conv2DBackpropInput", "w");
    auto xShape = shapeArg(info, 2, "Conv2DBackpropInput", "xShape");
    auto p = convParams(info, 3, "Conv2DBackpropInput");
    requireF32(dy, "Conv2DBackpropInput", "dy");
    requireF32(w, "Conv2DBackpropInput", "w");
    auto g = cpu::convGeom(xShape, w.shape, p, &dy.shape);
    ActResult dx{info.Env(), g.xShape(), {}};
    cpu::conv2dBackwardData(g, act(dy), weight(w), dx.alloc());
    return rawObject(info.Env(), dx.handle, xShape, DType::F32);
  })
}

Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  NG_KERNEL("Conv2DBackpropFilter", {
    TensorArg x = tensorArgAnyLayout(info, 0, "Conv2DBackpropFilter", "x");
    TensorArg dy = tensorArgAnyLayout(info, 1, "Conv2DBackpropFilter", "dy");
    auto wShape = shapeArg(info, 2, "Conv2DBackpropFilter", "wShape");
    auto p = convParams(info, 3, "Conv2DBackpropFilter");
    requireF32(x, "Conv2DBackpropFilter", "x");
    requireF32(dy, "Conv2DBackpropFilter", "dy");
    auto g = cpu::convGeom(x.shape, wShape, p, &dy.shape);
    Buffer* dw;
    auto h = newHandle(info.Env(), size_t(g.o * (g.c / p.groups) * g.kh * g.kw), DType::F32, &dw);
    cpu::conv2dBackwardWeights(g, act(x), act(dy), dw->as<float>());
    return rawObject(info.Env(), h, wShape, DType::F32);
  })
}

}  // namespace

void registerConv(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2D));
  exports.Set("conv2dFused", Napi::Function::New(env, Conv2DFused));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2DBackpropInput));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2DBackpropFilter));
}

}  // namespace nodegrad
