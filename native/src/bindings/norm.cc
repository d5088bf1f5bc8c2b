// Batch norm kernels: batchNormForward(x, weight, bias, runMean, runVar, { training, eps }) ->
// { y, mean, invstd } and batchNormBackward(dy, x, weight, mean, invstd) -> { dx, dweight, dbias }.
// Argument checks and marshalling only; the loops are in cpu/batchnorm.cc.
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

// A float32 [C] result holding `v`.
Napi::Object channelVector(Napi::Env env, const float* v, int64_t C) {
  Buffer* b;
  auto h = newHandle(env, size_t(C), DType::F32, &b);
  for (int64_t c = 0; c < C; c++) b->as<float>()[c] = v[c];
  return rawObject(env, h, {C}, DType::F32);
}

Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormForward";
  NG_KERNEL(op, {
    auto env = info.Env();
    // A blocked input (a conv's output) is normalized as stored and y keeps its layout.
    TensorArg x = tensorArgAnyLayout(info, 0, op, "x");
    if (!x.blockedAsIs()) plainView(x);
    const int block = x.buf->block;
    auto weight = optTensor(info, 1, op, "weight");
    auto bias = optTensor(info, 2, op, "bias");
    auto runMean = optTensor(info, 3, op, "runMean");
    auto runVar = optTensor(info, 4, op, "runVar");
    if (!info[5].IsObject()) throw std::invalid_argument("parameters must be an object { training, eps }");
    auto p = info[5].As<Napi::Object>();
    const bool training = p.Get("training").ToBoolean();
    const double eps = p.Get("eps").ToNumber().DoubleValue();
    cpu::BNLayout l = layoutOf(x, op);
    const float* w = perChannel(weight, x, l.C, "weight");
    const float* b = perChannel(bias, x, l.C, "bias");
    std::vector<double> mean, invstd;
    if (training && block) {
      cpu::batchNormStatsBlocked(x.f32(), l, block, eps, mean, invstd);
    } else if (training) {
      cpu::batchNormStats(x.f32(), l, eps, mean, invstd);
    } else {
      if (!runMean || !runVar) {
        throw std::invalid_argument("eval mode needs running_mean and running_var, for input " + fmtShape(x.shape));
      }
      const float* rm = perChannel(runMean, x, l.C, "running_mean");
      const float* rv = perChannel(runVar, x, l.C, "running_var");
      mean.resize(size_t(l.C));
      invstd.resize(size_t(l.C));
      for (int64_t c = 0; c < l.C; c++) {
        mean[size_t(c)] = rm[c];
        invstd[size_t(c)] = 1.0 / std::sqrt(double(rv[c]) + eps);
      }
    }
    Buffer* y;
    auto hy = block ? newBlockedHandle(env, x.shape, block, &y) : newHandle(env, x.numel(), DType::F32, &y);
    if (block) cpu::batchNormApplyBlocked(x.f32(), y->as<float>(), l, block, mean.data(), invstd.data(), w, b);
    else cpu::batchNormApply(x.f32(), y->as<float>(), l, mean.data(), invstd.data(), w, b);
    std::vector<float> mf(mean.begin(), mean.end()), isf(invstd.begin(), invstd.end());
    auto r = Napi::Object::New(env);
    r.Set("y", rawObject(env, hy, x.shape, DType::F32));
    r.Set("mean", channelVector(env, mf.data(), l.C));
    r.Set("invstd", channelVector(env, isf.data(), l.C));
    return r;
  })
}

Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormBackward";
  NG_KERNEL(op, {
    auto env = info.Env();
    // Blocked when x is (the saved conv output): a plain dy of x's shape is blocked to match, as
    // the elementwise kernels do, so that dx stays blocked for the conv's backward.
    TensorArg dy = tensorArgAnyLayout(info, 0, op, "dy");
    TensorArg x = tensorArgAnyLayout(info, 1, op, "x");
    const bool kept = x.blockedAsIs() && dy.shape == x.shape && dy.dtype == DType::F32;
    if (kept && !(dy.blockedAsIs() && dy.buf->block == x.buf->block)) blockedView(dy, x.buf);
    if (!kept) {
      plainView(dy);
      plainView(x);
    }
    const int block = x.buf->block;
    auto weight = optTensor(info, 2, op, "weight");
    std::optional<TensorArg> mean = tensorArg(info, 3, op, "mean");
    std::optional<TensorArg> invstd = tensorArg(info, 4, op, "invstd");
    cpu::BNLayout l = layoutOf(x, op);
    if (dy.shape != x.shape || dy.dtype != x.dtype) {
      throw std::invalid_argument("dy " + fmtShape(dy.shape) + " (" + dtypeName(dy.dtype) + ") must match input " +
                                  fmtShape(x.shape) + " (" + dtypeName(x.dtype) + ")");
    }
    const float* w = perChannel(weight, x, l.C, "weight");
    const float* mu = perChannel(mean, x, l.C, "mean");
    const float* is = perChannel(invstd, x, l.C, "invstd");
    Buffer *dx, *dw, *db;
    auto hx = block ? newBlockedHandle(env, x.shape, block, &dx) : newHandle(env, x.numel(), DType::F32, &dx);
    auto hw = newHandle(env, size_t(l.C), DType::F32, &dw);
    auto hb = newHandle(env, size_t(l.C), DType::F32, &db);
    if (block) {
      cpu::batchNormBackwardBlocked(dy.f32(), x.f32(), l, block, w, mu, is, dx->as<float>(), dw->as<float>(),
                                    db->as<float>());
    } else {
      cpu::batchNormBackward(dy.f32(), x.f32(), l, w, mu, is, dx->as<float>(), dw->as<float>(), db->as<float>());
    }
    auto r = Napi::Object::New(env);
    r.Set("dx", rawObject(env, hx, x.shape, DType::F32));
    r.Set("dweight", rawObject(env, hw, {l.C}, DType::F32));
    r.Set("dbias", rawObject(env, hb, {l.C}, DType::F32));
    return r;
  })
}

}  // namespace

void registerNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward));
}

}  // namespace nodegrad
