// BatchMatMul (a, b, transA, transB); Conv2D (x, w, p), Conv2DBackpropInput (dy, w, xShape, p),
// Conv2DBackpropFilter (x, dy, wShape, p) and Conv2DFused (x, w, bias | null, residual | null, p),
// p being the Conv2DParams object (Conv2DFusedParams, with `relu`, for Conv2DFused).
#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

// [B, M, K] x [B, K, N] -> [B, M, N], with optional transposes of the last two dims.
Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  TensorRef a = tensorAt(info, 0, "BatchMatMul", "a");
  TensorRef b = tensorAt(info, 1, "BatchMatMul", "b");
  const bool ta = info[2].ToBoolean(), tb = info[3].ToBoolean();
  NG_KERNEL("BatchMatMul", {
    requireSameDType("a", a, "b", b);
    if (a.shape.size() != 3 || b.shape.size() != 3) {
      throw std::runtime_error("expected rank-3 operands, got " + fmtShape(a.shape) + " and " + fmtShape(b.shape));
    }
    const int64_t batch = a.shape[0], k = ta ? a.shape[1] : a.shape[2], kb = tb ? b.shape[2] : b.shape[1];
    if (b.shape[0] != batch || kb != k) {
      throw std::runtime_error("shapes " + fmtShape(a.shape) + (ta ? " (transposed)" : "") + " and " + fmtShape(b.shape) +
                               (tb ? " (transposed)" : "") + " do not match (batch " + std::to_string(batch) + " vs " +
                               std::to_string(b.shape[0]) + ", inner " + std::to_string(k) + " vs " +
                               std::to_string(kb) + ")");
    }
    return result(info, deviceOf(info).kernels.batchMatMul(a, b, ta, tb));
  })
}

// Reads { stride: [h, w], padding: [h, w], dilation: [h, w], groups }.
ConvParams convParams(const Napi::CallbackInfo& info, size_t i, const char* op) {
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
  ConvParams p{};
  pair("stride", p.sh, p.sw);
  pair("padding", p.ph, p.pw);
  pair("dilation", p.dh, p.dw);
  if (!o.Get("groups").IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": params.groups must be a number");
  p.groups = o.Get("groups").As<Napi::Number>().Int64Value();
  return p;
}

Napi::Value Conv2D(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Conv2D", "x");
  TensorRef w = tensorAt(info, 1, "Conv2D", "w");
  auto p = convParams(info, 2, "Conv2D");
  NG_KERNEL("Conv2D", {
    requireSameDType("x", x, "w", w);
    return result(info, deviceOf(info).kernels.conv2d(x, w, p));
  })
}

Napi::Value Conv2DFused(const Napi::CallbackInfo& info) {
  const char* op = "Conv2DFused";
  TensorRef x = tensorAt(info, 0, op, "x");
  TensorRef w = tensorAt(info, 1, op, "w");
  auto bias = optionalTensorAt(info, 2, op, "bias");
  auto residual = optionalTensorAt(info, 3, op, "residual");
  auto p = convParams(info, 4, op);
  auto relu = info[4].As<Napi::Object>().Get("relu");
  if (!relu.IsBoolean()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": params.relu must be a boolean");
  NG_KERNEL(op, {
    requireSameDType("x", x, "w", w);
    const TensorRef* b = ptr(bias);
    const TensorRef* r = residual ? &*residual : nullptr;
    return result(info, deviceOf(info).kernels.conv2dFused(x, w, b, r, p, relu.As<Napi::Boolean>().Value()));
  })
}

Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  TensorRef dy = tensorAt(info, 0, "Conv2DBackpropInput", "dy");
  TensorRef w = tensorAt(info, 1, "Conv2DBackpropInput", "w");
  auto xShape = shapeArg(info, 2, "Conv2DBackpropInput", "xShape");
  auto p = convParams(info, 3, "Conv2DBackpropInput");
  NG_KERNEL("Conv2DBackpropInput", {
    requireSameDType("dy", dy, "w", w);
    return result(info, deviceOf(info).kernels.conv2dBackpropInput(dy, w, xShape, p));
  })
}

Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Conv2DBackpropFilter", "x");
  TensorRef dy = tensorAt(info, 1, "Conv2DBackpropFilter", "dy");
  auto wShape = shapeArg(info, 2, "Conv2DBackpropFilter", "wShape");
  auto p = convParams(info, 3, "Conv2DBackpropFilter");
  // Optional: the weight gradient's dtype, x's by default, or float32 for a half x.
  DType dwType = x.dtype;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    dwType = dtypeArg(info[4], "Conv2DBackpropFilter");
    if (dwType != x.dtype && !(isHalf(x.dtype) && dwType == DType::F32)) {
      throw Napi::TypeError::New(info.Env(), std::string("Conv2DBackpropFilter: dtype must be x's (") + dtypeName(x.dtype) +
                                                 ") or float32 for a half x, got " + dtypeName(dwType));
    }
  }
  NG_KERNEL("Conv2DBackpropFilter", {
    requireSameDType("x", x, "dy", dy);
    return result(info, deviceOf(info).kernels.conv2dBackpropFilter(x, dy, wShape, p, dwType));
  })
}

}  // namespace

void bindMatmulConv(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.batchMatMul) defineKernel<BatchMatMul>(env, k, "BatchMatMul", d);
  if (d.kernels.conv2d) defineKernel<Conv2D>(env, k, "Conv2D", d);
  if (d.kernels.conv2dBackpropInput) defineKernel<Conv2DBackpropInput>(env, k, "Conv2DBackpropInput", d);
  if (d.kernels.conv2dBackpropFilter) defineKernel<Conv2DBackpropFilter>(env, k, "Conv2DBackpropFilter", d);
  if (d.kernels.conv2dFused) defineKernel<Conv2DFused>(env, k, "Conv2DFused", d);
}

}  // namespace nodegrad
