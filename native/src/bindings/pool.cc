// Pooling kernels: MaxPool2D (x, p) -> y, MaxPool2DBackward (dy, x, y, p), MaxPool2DWithIndices
// (x, p) -> { y, indices }, MaxPool2DScatter (dy, indices, xShape), MaxPool2DGather (x, indices),
// AvgPool2D (x, p), AvgPool2DBackward (dy, xShape, p), AdaptiveAvgPool2D (x, [oh, ow]),
// AdaptiveAvgPool2DBackward (dy, xShape); p is Pool2DParams.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

void readPair(Napi::Object o, const char* key, int64_t* out) {
  auto v = o.Get(key);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) {
    throw std::invalid_argument(std::string("pool parameter '") + key + "' must be a pair of integers");
  }
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < 2; i++) {
    auto e = a.Get(i);
    if (!e.IsNumber()) throw std::invalid_argument(std::string("pool parameter '") + key + "' must be a pair of integers");
    out[i] = e.As<Napi::Number>().Int64Value();
  }
}

Pool2D poolParams(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject()) throw std::invalid_argument("pool parameters must be an object");
  auto o = info[i].As<Napi::Object>();
  Pool2D p;
  readPair(o, "kernel", p.kernel);
  readPair(o, "stride", p.stride);
  readPair(o, "padding", p.padding);
  readPair(o, "dilation", p.dilation);
  p.ceilMode = o.Get("ceilMode").ToBoolean();
  p.countIncludePad = o.Get("countIncludePad").ToBoolean();
  return p;
}

// An input shape given as sizes (the forward's xShape); negative sizes would wrap the allocation.
Shape sizesArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Shape s = shapeArg(info, i, op, name);
  for (auto d : s) {
    if (d < 0) throw std::invalid_argument(std::string(name) + " " + fmtShape(s) + " has a negative size");
  }
  return s;
}

// Adaptive output sizes must be positive integers; they arrive as JS numbers.
void checkAdaptiveSize(double oh, double ow, const Shape& xs) {
  auto good = [](double v) { return std::floor(v) == v && v >= 1 && v < 9007199254740992.0; };
  if (!good(oh) || !good(ow)) {
    auto num = [](double v) { return std::floor(v) == v ? std::to_string(int64_t(v)) : std::to_string(v); };
    throw std::invalid_argument("output size [" + num(oh) + ", " + num(ow) + "] must be positive integers, for input " +
                                fmtShape(xs));
  }
}

Napi::Value MaxPool2D(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "MaxPool2D", "x");
  NG_KERNEL("MaxPool2D", return result(info, deviceOf(info).kernels.maxPool2d(x, poolParams(info, 1)));)
}

Napi::Value MaxPool2DBackward(const Napi::CallbackInfo& info) {
  TensorRef dy = tensorAt(info, 0, "MaxPool2DBackward", "dy");
  TensorRef x = tensorAt(info, 1, "MaxPool2DBackward", "x");
  TensorRef y = tensorAt(info, 2, "MaxPool2DBackward", "y");
  NG_KERNEL("MaxPool2DBackward", {
    return result(info, deviceOf(info).kernels.maxPool2dBackward(dy, x, y, poolParams(info, 3)));
  })
}

Napi::Value MaxPool2DWithIndices(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "MaxPool2DWithIndices", "x");
  NG_KERNEL("MaxPool2DWithIndices", {
    auto [y, indices] = deviceOf(info).kernels.maxPool2dWithIndices(x, poolParams(info, 1));
    auto r = Napi::Object::New(info.Env());
    r.Set("y", wrap(info.Env(), std::move(y)));
    r.Set("indices", wrap(info.Env(), std::move(indices)));
    return r;
  })
}

Napi::Value MaxPool2DScatter(const Napi::CallbackInfo& info) {
  TensorRef dy = tensorAt(info, 0, "MaxPool2DScatter", "dy");
  TensorRef idx = tensorAt(info, 1, "MaxPool2DScatter", "indices");
  NG_KERNEL("MaxPool2DScatter", {
    Shape xs = sizesArg(info, 2, "MaxPool2DScatter", "xShape");
    return result(info, deviceOf(info).kernels.maxPool2dScatter(dy, idx, xs));
  })
}

Napi::Value MaxPool2DGather(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "MaxPool2DGather", "x");
  TensorRef idx = tensorAt(info, 1, "MaxPool2DGather", "indices");
  NG_KERNEL("MaxPool2DGather", return result(info, deviceOf(info).kernels.maxPool2dGather(x, idx));)
}

Napi::Value AvgPool2D(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "AvgPool2D", "x");
  NG_KERNEL("AvgPool2D", return result(info, deviceOf(info).kernels.avgPool2d(x, poolParams(info, 1)));)
}

Napi::Value AvgPool2DBackward(const Napi::CallbackInfo& info) {
  TensorRef dy = tensorAt(info, 0, "AvgPool2DBackward", "dy");
  NG_KERNEL("AvgPool2DBackward", {
    Shape xs = sizesArg(info, 1, "AvgPool2DBackward", "xShape");
    return result(info, deviceOf(info).kernels.avgPool2dBackward(dy, xs, poolParams(info, 2)));
  })
}

Napi::Value AdaptiveAvgPool2D(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "AdaptiveAvgPool2D", "x");
  NG_KERNEL("AdaptiveAvgPool2D", {
    if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != 2) {
      throw std::invalid_argument("outSize must be a pair [oh, ow]");
    }
    auto a = info[1].As<Napi::Array>();
    const double oh = a.Get(0u).ToNumber().DoubleValue(), ow = a.Get(1u).ToNumber().DoubleValue();
    checkAdaptiveSize(oh, ow, x.shape);
    return result(info, deviceOf(info).kernels.adaptiveAvgPool2d(x, int64_t(oh), int64_t(ow)));
  })
}

Napi::Value AdaptiveAvgPool2DBackward(const Napi::CallbackInfo& info) {
  TensorRef dy = tensorAt(info, 0, "AdaptiveAvgPool2DBackward", "dy");
  NG_KERNEL("AdaptiveAvgPool2DBackward", {
    Shape xs = sizesArg(info, 1, "AdaptiveAvgPool2DBackward", "xShape");
    const Shape& ds = dy.shape;
    const bool sameLead = ds.size() == xs.size() && xs.size() >= 2 && std::equal(xs.begin(), xs.end() - 2, ds.begin());
    if (!sameLead) throw std::invalid_argument("dy " + fmtShape(ds) + " does not have the planes of input " + fmtShape(xs));
    checkAdaptiveSize(double(ds[ds.size() - 2]), double(ds[ds.size() - 1]), xs);
    return result(info, deviceOf(info).kernels.adaptiveAvgPool2dBackward(dy, xs));
  })
}

}  // namespace

void bindPool(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.maxPool2d) defineKernel<MaxPool2D>(env, k, "MaxPool2D", d);
  if (d.kernels.maxPool2dBackward) defineKernel<MaxPool2DBackward>(env, k, "MaxPool2DBackward", d);
  if (d.kernels.maxPool2dWithIndices) defineKernel<MaxPool2DWithIndices>(env, k, "MaxPool2DWithIndices", d);
  if (d.kernels.maxPool2dScatter) defineKernel<MaxPool2DScatter>(env, k, "MaxPool2DScatter", d);
  if (d.kernels.maxPool2dGather) defineKernel<MaxPool2DGather>(env, k, "MaxPool2DGather", d);
  if (d.kernels.avgPool2d) defineKernel<AvgPool2D>(env, k, "AvgPool2D", d);
  if (d.kernels.avgPool2dBackward) defineKernel<AvgPool2DBackward>(env, k, "AvgPool2DBackward", d);
  if (d.kernels.adaptiveAvgPool2d) defineKernel<AdaptiveAvgPool2D>(env, k, "AdaptiveAvgPool2D", d);
  if (d.kernels.adaptiveAvgPool2dBackward) defineKernel<AdaptiveAvgPool2DBackward>(env, k, "AdaptiveAvgPool2DBackward", d);
}

}  // namespace nodegrad
