// Pooling kernels: maxPool2d(x, p) -> { y, indices }, maxPool2dBackward(dy, indices, xShape),
// maxPool2dGather(x, indices), avgPool2d(x, p), avgPool2dBackward(dy, xShape, p),
// adaptiveAvgPool2d(x, [oh, ow]), adaptiveAvgPool2dBackward(dy, xShape). Argument checks and
// marshalling only; the loops are in cpu/pooling.cc.
#include <cmath>
#include <stdexcept>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/pooling.h"

namespace nodegrad {
namespace {

using cpu::fmtShape;
using cpu::Shape;

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

cpu::Pool2D poolParams(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject()) throw std::invalid_argument("pool parameters must be an object");
  auto o = info[i].As<Napi::Object>();
  cpu::Pool2D p;
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

Shape withHW(const Shape& lead, int64_t oh, int64_t ow) {
  Shape s = lead;
  s.push_back(oh);
  s.push_back(ow);
  return s;
}

bool isIndex(DType d) { return d == DType::I64 || d == DType::I32; }

// Calls f with the indices' data as double* (int64) or int32_t*.
template <typename F>
bool withIndices(const TensorArg& idx, F f) {
  if (idx.dtype == DType::I32) return f(idx.buf->as<int32_t>());
  return f(idx.buf->as<double>());
}

Napi::Value MaxPool2D(const Napi::CallbackInfo& info) {
  NG_KERNEL("MaxPool2D", {
    auto env = info.Env();
    // A blocked input (the stem's conv, batch norm and ReLU) is pooled as stored; y keeps its layout.
    TensorArg x = tensorArgAnyLayout(info, 0, "MaxPool2D", "x");
    if (!x.blockedAsIs()) plainView(x);
    cpu::Pool2D p = poolParams(info, 1);
    int64_t OH, OW;
    cpu::poolOutShape(x.shape, p, false, &OH, &OW);
    requireF32(x, "MaxPool2D", "x");
    cpu::Planes pl = cpu::planesOf(x.shape);
    Shape ys = withHW(pl.lead, OH, OW);
    const int block = x.buf->block;
    Buffer *y, *idx;
    auto hy = block ? newBlockedHandle(env, ys, block, &y) : newHandle(env, size_t(cpu::numel(ys)), DType::F32, &y);
    auto hi = newHandle(env, size_t(cpu::numel(ys)), DType::I64, &idx);
    if (block) cpu::maxPool2dBlocked(x.f32(), y->as<float>(), idx->as<double>(), x.shape, block, OH, OW, p);
    else cpu::maxPool2d(x.f32(), y->as<float>(), idx->as<double>(), pl.planes, pl.H, pl.W, OH, OW, p);
    auto r = Napi::Object::New(env);
    r.Set("y", rawObject(env, hy, ys, DType::F32));
    r.Set("indices", rawObject(env, hi, ys, DType::I64));
    return r;
  })
}

Napi::Value MaxPool2DBackward(const Napi::CallbackInfo& info) {
  NG_KERNEL("MaxPool2DBackward", {
    // A blocked dy (layer 1's gradient) gives a blocked dx; the indices are always plain.
    TensorArg dy = tensorArgAnyLayout(info, 0, "MaxPool2DBackward", "dy");
    TensorArg idx = tensorArg(info, 1, "MaxPool2DBackward", "indices");
    Shape xs = sizesArg(info, 2, "MaxPool2DBackward", "xShape");
    const bool sameLead = xs.size() == 4 && dy.shape.size() == 4 && xs[0] == dy.shape[0] && xs[1] == dy.shape[1];
    const int block = dy.blockedAsIs() && sameLead ? dy.buf->block : 0;
    if (!block) plainView(dy);
    cpu::Planes pl = cpu::planesOf(xs);
    if (idx.shape != dy.shape || !isIndex(idx.dtype)) {
      throw std::invalid_argument("indices " + fmtShape(idx.shape) + " (" + dtypeName(idx.dtype) +
                                  ") must be int64 with the shape of dy " + fmtShape(dy.shape));
    }
    int64_t L = dy.shape.size() < 2 ? 0 : dy.shape[dy.shape.size() - 2] * dy.shape[dy.shape.size() - 1];
    if (int64_t(dy.numel()) != pl.planes * L) {
      throw std::invalid_argument("dy " + fmtShape(dy.shape) + " does not have the planes of input " + fmtShape(xs));
    }
    requireF32(dy, "MaxPool2DBackward", "dy");
    Buffer* dx;
    auto h = block ? newBlockedHandle(info.Env(), xs, block, &dx) : newHandle(info.Env(), size_t(cpu::numel(xs)), DType::F32, &dx);
    bool ok = withIndices(idx, [&](auto* id) {
      if (block) return cpu::maxPool2dBackwardBlocked(dy.f32(), id, dx->as<float>(), xs, block, dy.shape[2], dy.shape[3]);
      return cpu::maxPool2dBackward(dy.f32(), id, dx->as<float>(), pl.planes, pl.H * pl.W, L);
    });
    if (!ok) throw std::out_of_range("an index lies outside its input plane of " + std::to_string(pl.H * pl.W) + " elements");
    return rawObject(info.Env(), h, xs, DType::F32);
  })
}

Napi::Value MaxPool2DGather(const Napi::CallbackInfo& info) {
  NG_KERNEL("MaxPool2DGather", {
    TensorArg x = tensorArg(info, 0, "MaxPool2DGather", "x");
    TensorArg idx = tensorArg(info, 1, "MaxPool2DGather", "indices");
    cpu::Planes pl = cpu::planesOf(x.shape);
    const Shape& is = idx.shape;
    int64_t L = is.size() < 2 ? 0 : is[is.size() - 2] * is[is.size() - 1];
    if (is.size() != x.shape.size() || int64_t(idx.numel()) != pl.planes * L || !isIndex(idx.dtype)) {
      throw std::invalid_argument("indices " + fmtShape(is) + " (" + dtypeName(idx.dtype) +
                                  ") do not match the planes of x " + fmtShape(x.shape));
    }
    requireF32(x, "MaxPool2DGather", "x");
    Buffer* y;
    auto h = newHandle(info.Env(), idx.numel(), DType::F32, &y);
    bool ok = withIndices(idx, [&](auto* id) {
      return cpu::maxPool2dGather(x.f32(), id, y->as<float>(), pl.planes, pl.H * pl.W, L);
    });
    if (!ok) throw std::out_of_range("an index lies outside its input plane of " + std::to_string(pl.H * pl.W) + " elements");
    return rawObject(info.Env(), h, is, DType::F32);
  })
}

Napi::Value AvgPool2D(const Napi::CallbackInfo& info) {
  NG_KERNEL("AvgPool2D", {
    TensorArg x = tensorArg(info, 0, "AvgPool2D", "x");
    cpu::Pool2D p = poolParams(info, 1);
    int64_t OH, OW;
    cpu::poolOutShape(x.shape, p, true, &OH, &OW);
    requireF32(x, "AvgPool2D", "x");
    cpu::Planes pl = cpu::planesOf(x.shape);
    Shape ys = withHW(pl.lead, OH, OW);
    Buffer* y;
    auto h = newHandle(info.Env(), size_t(cpu::numel(ys)), DType::F32, &y);
    cpu::avgPool2d(x.f32(), y->as<float>(), pl.planes, pl.H, pl.W, OH, OW, p);
    return rawObject(info.Env(), h, ys, DType::F32);
  })
}

Napi::Value AvgPool2DBackward(const Napi::CallbackInfo& info) {
  NG_KERNEL("AvgPool2DBackward", {
    TensorArg dy = tensorArg(info, 0, "AvgPool2DBackward", "dy");
    Shape xs = sizesArg(info, 1, "AvgPool2DBackward", "xShape");
    cpu::Pool2D p = poolParams(info, 2);
    int64_t OH, OW;
    cpu::poolOutShape(xs, p, true, &OH, &OW);
    cpu::Planes pl = cpu::planesOf(xs);
    Shape want = withHW(pl.lead, OH, OW);
    if (dy.shape != want) {
      throw std::invalid_argument("dy " + fmtShape(dy.shape) + " should be " + fmtShape(want) + " for input " + fmtShape(xs));
    }
    requireF32(dy, "AvgPool2DBackward", "dy");
    Buffer* dx;
    auto h = newHandle(info.Env(), size_t(cpu::numel(xs)), DType::F32, &dx);
    cpu::avgPool2dBackward(dy.f32(), dx->as<float>(), pl.planes, pl.H, pl.W, OH, OW, p);
    return rawObject(info.Env(), h, xs, DType::F32);
  })
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

Napi::Value AdaptiveAvgPool2D(const Napi::CallbackInfo& info) {
  NG_KERNEL("AdaptiveAvgPool2D", {
    TensorArg x = tensorArg(info, 0, "AdaptiveAvgPool2D", "x");
    if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != 2) {
      throw std::invalid_argument("outSize must be a pair [oh, ow]");
    }
    auto a = info[1].As<Napi::Array>();
    double oh = a.Get(0u).ToNumber().DoubleValue(), ow = a.Get(1u).ToNumber().DoubleValue();
    cpu::Planes pl = cpu::planesOf(x.shape);
    checkAdaptiveSize(oh, ow, x.shape);
    requireF32(x, "AdaptiveAvgPool2D", "x");
    Shape ys = withHW(pl.lead, int64_t(oh), int64_t(ow));
    Buffer* y;
    auto h = newHandle(info.Env(), size_t(cpu::numel(ys)), DType::F32, &y);
    cpu::adaptiveAvgPool2d(x.f32(), y->as<float>(), pl.planes, pl.H, pl.W, int64_t(oh), int64_t(ow));
    return rawObject(info.Env(), h, ys, DType::F32);
  })
}

Napi::Value AdaptiveAvgPool2DBackward(const Napi::CallbackInfo& info) {
  NG_KERNEL("AdaptiveAvgPool2DBackward", {
    TensorArg dy = tensorArg(info, 0, "AdaptiveAvgPool2DBackward", "dy");
    Shape xs = sizesArg(info, 1, "AdaptiveAvgPool2DBackward", "xShape");
    const Shape& ds = dy.shape;
    bool sameLead = ds.size() == xs.size() && xs.size() >= 2 && std::equal(xs.begin(), xs.end() - 2, ds.begin());
    if (!sameLead) {
      throw std::invalid_argument("dy " + fmtShape(ds) + " does not have the planes of input " + fmtShape(xs));
    }
    int64_t OH = ds[ds.size() - 2], OW = ds[ds.size() - 1];
    cpu::Planes pl = cpu::planesOf(xs);
    checkAdaptiveSize(double(OH), double(OW), xs);
    requireF32(dy, "AdaptiveAvgPool2DBackward", "dy");
    Buffer* dx;
    auto h = newHandle(info.Env(), size_t(cpu::numel(xs)), DType::F32, &dx);
    cpu::adaptiveAvgPool2dBackward(dy.f32(), dx->as<float>(), pl.planes, pl.H, pl.W, OH, OW);
    return rawObject(info.Env(), h, xs, DType::F32);
  })
}

}  // namespace

void registerPool(Napi::Env env, Napi::Object exports) {
  exports.Set("maxPool2d", Napi::Function::New(env, MaxPool2D));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2DBackward));
  exports.Set("maxPool2dGather", Napi::Function::New(env, MaxPool2DGather));
  exports.Set("avgPool2d", Napi::Function::New(env, AvgPool2D));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, AvgPool2DBackward));
  exports.Set("adaptiveAvgPool2d", Napi::Function::New(env, AdaptiveAvgPool2D));
  exports.Set("adaptiveAvgPool2dBackward", Napi::Function::New(env, AdaptiveAvgPool2DBackward));
}

}  // namespace nodegrad
