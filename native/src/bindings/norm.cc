// Batch norm kernels, split as PyTorch's CUDA path (the Kernels entries in backend.ts):
// batchNormStats, batchNormElemt, batchNormInvstd, batchNormBackwardReduce, batchNormBackwardElemt,
// batchNormUpdateRunning. Argument checks and marshalling only; the loops are in cpu/batchnorm.cc
// and, for activations a convolution left in oneDNN's blocked layout, cpu/batchnorm_blocked.cc.
#include <cmath>
#include <optional>
#include <stdexcept>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/batchnorm.h"
#include "cpu/broadcast.h"

namespace nodegrad {
namespace {

using cpu::fmtShape;

// An optional tensor argument: null or undefined is absent.
std::optional<TensorArg> optTensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return tensorArg(info, i, op, name);
}

cpu::BNLayout layoutOf(const TensorArg& x, const char* op) {
  if (x.shape.size() < 2) throw std::invalid_argument("expected input of shape [N, C, *], got " + fmtShape(x.shape));
  if (x.dtype != DType::F32 && x.dtype != DType::F64) {
    throw std::invalid_argument(std::string("input must be float32 or float64, got ") + dtypeName(x.dtype));
  }
  requireF32(x, op, "x");
  int64_t S = 1;
  for (size_t i = 2; i < x.shape.size(); i++) S *= x.shape[i];
  return {x.shape[0], x.shape[1], S};
}

// A per-channel vector must be [C] with the input's dtype; returns its data or null when absent.
const float* perChannel(const std::optional<TensorArg>& t, const TensorArg& x, int64_t C, const char* name) {
  if (!t) return nullptr;
  if (t->shape.size() != 1 || t->shape[0] != C || t->dtype != x.dtype) {
    throw std::invalid_argument(std::string(name) + " of shape " + fmtShape(t->shape) + " (" + dtypeName(t->dtype) +
                                ") must be [" + std::to_string(C) + "] (" + dtypeName(x.dtype) + ") for input " +
                                fmtShape(x.shape));
  }
  return t->f32();
}

// A float32 [C] result holding `v` (float or double).
template <typename T>
Napi::Object channelVector(Napi::Env env, const T* v, int64_t C) {
  Buffer* b;
  auto h = newHandle(env, size_t(C), DType::F32, &b);
  for (int64_t c = 0; c < C; c++) b->as<float>()[c] = float(v[c]);
  return rawObject(env, h, {C}, DType::F32);
}

// x as it is stored when blocked (a conv's output: the result keeps its layout), else plain.
TensorArg activationArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  TensorArg x = tensorArgAnyLayout(info, i, op, name);
  if (!x.blockedAsIs()) plainView(x);
  return x;
}

// dy and x in one layout for the backward parts: blocked when x is (the saved conv output), a
// plain dy of x's shape blocked to match as the elementwise kernels do, so that dx stays blocked
// for the conv's backward; otherwise both plain.
void gradArgs(const Napi::CallbackInfo& info, const char* op, TensorArg& dy, TensorArg& x) {
  dy = tensorArgAnyLayout(info, 0, op, "dy");
  x = tensorArgAnyLayout(info, 1, op, "x");
  const bool kept = x.blockedAsIs() && dy.shape == x.shape && dy.dtype == DType::F32;
  if (kept && !(dy.blockedAsIs() && dy.buf->block == x.buf->block)) blockedView(dy, x.buf);
  if (!kept) {
    plainView(dy);
    plainView(x);
  }
  if (dy.shape != x.shape || dy.dtype != x.dtype) {
    throw std::invalid_argument("dy " + fmtShape(dy.shape) + " (" + dtypeName(dy.dtype) + ") must match input " +
                                fmtShape(x.shape) + " (" + dtypeName(x.dtype) + ")");
  }
}

// A float32 [N, C, *] result laid out as x is (blocked or plain).
Napi::Value likeActivation(Napi::Env env, const TensorArg& x, Buffer** out) {
  const int block = x.buf->block;
  return block ? newBlockedHandle(env, x.shape, block, out) : newHandle(env, x.numel(), DType::F32, out);
}

double countArg(const Napi::Value& v) {
  const double count = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (!(count >= 1 && std::floor(count) == count)) {
    throw std::invalid_argument("count must be a positive integer (elements per channel over all ranks)");
  }
  return count;
}

Napi::Value BatchNormStats(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormStats";
  NG_KERNEL(op, {
    TensorArg x = activationArg(info, 0, op, "x");
    const double eps = info[1].ToNumber().DoubleValue();
    const cpu::BNLayout l = layoutOf(x, op);
    std::vector<double> mean, invstd;
    if (x.buf->block) cpu::batchNormStatsBlocked(x.f32(), l, x.buf->block, eps, mean, invstd);
    else cpu::batchNormStats(x.f32(), l, eps, mean, invstd);
    auto r = Napi::Object::New(info.Env());
    r.Set("mean", channelVector(info.Env(), mean.data(), l.C));
    r.Set("invstd", channelVector(info.Env(), invstd.data(), l.C));
    return r;
  })
}

Napi::Value BatchNormElemt(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormElemt";
  NG_KERNEL(op, {
    TensorArg x = activationArg(info, 0, op, "x");
    auto weight = optTensor(info, 1, op, "weight");
    auto bias = optTensor(info, 2, op, "bias");
    std::optional<TensorArg> mean = tensorArg(info, 3, op, "mean");
    std::optional<TensorArg> invstd = tensorArg(info, 4, op, "invstd");
    const cpu::BNLayout l = layoutOf(x, op);
    const float* w = perChannel(weight, x, l.C, "weight");
    const float* b = perChannel(bias, x, l.C, "bias");
    const float* mu = perChannel(mean, x, l.C, "mean");
    const float* is = perChannel(invstd, x, l.C, "invstd");
    const std::vector<double> md(mu, mu + l.C), isd(is, is + l.C);
    Buffer* y;
    auto hy = likeActivation(info.Env(), x, &y);
    if (x.buf->block) cpu::batchNormApplyBlocked(x.f32(), y->as<float>(), l, x.buf->block, md.data(), isd.data(), w, b);
    else cpu::batchNormApply(x.f32(), y->as<float>(), l, md.data(), isd.data(), w, b);
    return rawObject(info.Env(), hy, x.shape, DType::F32);
  })
}

Napi::Value BatchNormInvstd(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormInvstd";
  NG_KERNEL(op, {
    TensorArg v = tensorArg(info, 0, op, "runVar");
    requireF32(v, op, "runVar");
    if (v.shape.size() != 1) throw std::invalid_argument("runVar must be a vector [C], got " + fmtShape(v.shape));
    const double eps = info[1].ToNumber().DoubleValue();
    std::vector<double> is(v.numel());
    for (size_t c = 0; c < is.size(); c++) is[c] = 1.0 / std::sqrt(double(v.f32()[c]) + eps);
    return channelVector(info.Env(), is.data(), int64_t(is.size()));
  })
}

Napi::Value BatchNormBackwardReduce(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormBackwardReduce";
  NG_KERNEL(op, {
    auto env = info.Env();
    TensorArg dy, x;
    gradArgs(info, op, dy, x);
    std::optional<TensorArg> mean = tensorArg(info, 2, op, "mean");
    std::optional<TensorArg> invstd = tensorArg(info, 3, op, "invstd");
    const cpu::BNLayout l = layoutOf(x, op);
    const float* mu = perChannel(mean, x, l.C, "mean");
    const float* is = perChannel(invstd, x, l.C, "invstd");
    std::vector<double> s, t;
    if (x.buf->block) cpu::batchNormBackwardReduceBlocked(dy.f32(), x.f32(), l, x.buf->block, mu, s, t);
    else cpu::batchNormBackwardReduce(dy.f32(), x.f32(), l, mu, s, t);
    std::vector<double> dw(size_t(l.C));
    for (int64_t c = 0; c < l.C; c++) dw[size_t(c)] = t[size_t(c)] * is[c];
    auto r = Napi::Object::New(env);
    r.Set("sumDy", channelVector(env, s.data(), l.C));
    r.Set("sumDyXmu", channelVector(env, t.data(), l.C));
    r.Set("dweight", channelVector(env, dw.data(), l.C));
    r.Set("dbias", channelVector(env, s.data(), l.C));
    return r;
  })
}

Napi::Value BatchNormBackwardElemt(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormBackwardElemt";
  NG_KERNEL(op, {
    TensorArg dy, x;
    gradArgs(info, op, dy, x);
    std::optional<TensorArg> mean = tensorArg(info, 2, op, "mean");
    std::optional<TensorArg> invstd = tensorArg(info, 3, op, "invstd");
    auto weight = optTensor(info, 4, op, "weight");
    std::optional<TensorArg> sumDy = tensorArg(info, 5, op, "sumDy");
    std::optional<TensorArg> sumDyXmu = tensorArg(info, 6, op, "sumDyXmu");
    const double count = countArg(info[7]);
    const cpu::BNLayout l = layoutOf(x, op);
    const float* mu = perChannel(mean, x, l.C, "mean");
    const auto k = cpu::batchNormGradCoefs(l.C, perChannel(invstd, x, l.C, "invstd"), perChannel(weight, x, l.C, "weight"),
                                           perChannel(sumDy, x, l.C, "sumDy"), perChannel(sumDyXmu, x, l.C, "sumDyXmu"),
                                           count);
    Buffer* dx;
    auto hx = likeActivation(info.Env(), x, &dx);
    if (x.buf->block) cpu::batchNormBackwardElemtBlocked(dy.f32(), x.f32(), l, x.buf->block, mu, k, dx->as<float>());
    else cpu::batchNormBackwardElemt(dy.f32(), x.f32(), l, mu, k, dx->as<float>());
    return rawObject(info.Env(), hx, x.shape, DType::F32);
  })
}

Napi::Value BatchNormUpdateRunning(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormUpdateRunning";
  NG_KERNEL(op, {
    // Every argument is checked before the first write.
    TensorArg rm = tensorArg(info, 0, op, "runMean");
    const int64_t C = rm.shape.size() == 1 ? rm.shape[0] : -1;
    auto vec = [&](size_t i, const char* name) {
      TensorArg t = tensorArg(info, i, op, name);
      if (t.dtype != DType::F32 || t.shape.size() != 1 || t.shape[0] != C) {
        throw std::invalid_argument(std::string(name) + " of shape " + fmtShape(t.shape) + " (" + dtypeName(t.dtype) +
                                    ") must be a float32 vector like runMean " + fmtShape(rm.shape) + " (" +
                                    dtypeName(rm.dtype) + ")");
      }
      return t;
    };
    vec(0, "runMean");
    vec(1, "runVar");
    const TensorArg mean = vec(3, "mean"), invstd = vec(4, "invstd");
    const bool counted = !info[2].IsNull() && !info[2].IsUndefined();
    if (counted) {
      TensorArg n = tensorArg(info, 2, op, "counter");
      if (n.dtype != DType::I64 || n.numel() != 1) {
        throw std::invalid_argument("counter must be a one-element int64 tensor, got " + fmtShape(n.shape) + " (" +
                                    dtypeName(n.dtype) + ")");
      }
    }
    if (!info[5].IsObject()) throw std::invalid_argument("parameters must be an object { eps, count, factor }");
    auto p = info[5].As<Napi::Object>();
    const double eps = p.Get("eps").ToNumber().DoubleValue(), factor = p.Get("factor").ToNumber().DoubleValue();
    const double count = countArg(p.Get("count"));
    if (count < 2) throw std::invalid_argument("count must be > 1 (the unbiased variance divides by count - 1)");
    TensorArg rmw = writableArg(info, 0, op, "runMean"), rvw = writableArg(info, 1, op, "runVar");
    cpu::batchNormUpdateRunning(rmw.f32(), rvw.f32(), C, mean.f32(), invstd.f32(), eps, count, factor);
    // int64 is held as double (bindings/buffer.h): the counter advances on the device, unread.
    if (counted) writableArg(info, 2, op, "counter").buf->as<double>()[0] += 1;
    return info.Env().Undefined();
  })
}

}  // namespace

void registerNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormStats", Napi::Function::New(env, BatchNormStats));
  exports.Set("batchNormElemt", Napi::Function::New(env, BatchNormElemt));
  exports.Set("batchNormInvstd", Napi::Function::New(env, BatchNormInvstd));
  exports.Set("batchNormBackwardReduce", Napi::Function::New(env, BatchNormBackwardReduce));
  exports.Set("batchNormBackwardElemt", Napi::Function::New(env, BatchNormBackwardElemt));
  exports.Set("batchNormUpdateRunning", Napi::Function::New(env, BatchNormUpdateRunning));
}

}  // namespace nodegrad
