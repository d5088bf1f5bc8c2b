// Batch norm kernels, split as PyTorch's CUDA path so that SyncBatchNorm can run its collectives
// between them: BatchNormStats (x, eps) -> { mean, invstd }, BatchNormElemt (x, weight, bias, mean,
// invstd[, residual, relu]), BatchNormInvstd (runVar, eps), BatchNormBackwardReduce (dy, x, mean,
// invstd[, relu, weight, bias]) -> { sumDy, sumDyXmu, dweight, dbias }, BatchNormBackwardElemt (dy,
// x, mean, invstd, weight, sumDy, sumDyXmu, count[, relu, bias]), BatchNormUpdateRunning (runMean,
// runVar, counter, mean, invstd, { eps, count, factor }). The optional tails fuse the ReLU (and the
// residual add) that follow a batch norm (core/device.h's BatchNormEpilogue, BatchNormReluMask).
// Every argument is checked here before the device computes or writes anything.
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

// x is [N, C, *].
void checkNC(const TensorRef& x) {
  if (x.shape.size() < 2) throw std::invalid_argument("expected input of shape [N, C, *], got " + fmtShape(x.shape));
}

// Whether a per-channel operand's dtype suits an input (or running statistic) of dtype x: x's own,
// or float32 for a half x, the type of the statistics the kernels make for it.
bool channelDType(DType t, DType x) { return t == x || (isHalf(x) && t == DType::F32); }

// A per-channel operand must be [C] in x's dtype (or float32 for a half x).
void checkPerChannel(const TensorRef* t, const TensorRef& x, const char* name) {
  if (!t) return;
  const int64_t C = x.shape[1];
  if (t->shape.size() != 1 || t->shape[0] != C || !channelDType(t->dtype, x.dtype)) {
    throw std::invalid_argument(std::string(name) + " of shape " + fmtShape(t->shape) + " (" + dtypeName(t->dtype) +
                                ") must be [" + std::to_string(C) + "] (" + dtypeName(x.dtype) +
                                (isHalf(x.dtype) ? " or float32" : "") + ") for input " + fmtShape(x.shape));
  }
}

// The backward parts' dy and the forward's residual have x's shape and dtype.
void checkLike(const TensorRef& t, const TensorRef& x, const char* name) {
  if (t.shape != x.shape || t.dtype != x.dtype) {
    throw std::invalid_argument(std::string(name) + " " + fmtShape(t.shape) + " (" + dtypeName(t.dtype) +
                                ") must match input " + fmtShape(x.shape) + " (" + dtypeName(x.dtype) + ")");
  }
}

// Elements per channel over every rank: a count, given as a JS number.
double countArg(const Napi::Value& v) {
  const double count = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (!(count >= 1 && std::floor(count) == count)) {
    throw std::invalid_argument("count must be a positive integer (elements per channel over all ranks)");
  }
  return count;
}

Napi::Value BatchNormStats(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "BatchNormStats", "x");
  const double eps = numberArg(info[1], "BatchNormStats", "eps");
  NG_KERNEL("BatchNormStats", {
    checkNC(x);
    auto [mean, invstd] = deviceOf(info).kernels.batchNormStats(x, eps);
    auto r = Napi::Object::New(info.Env());
    r.Set("mean", wrap(info.Env(), std::move(mean)));
    r.Set("invstd", wrap(info.Env(), std::move(invstd)));
    return r;
  })
}

Napi::Value BatchNormElemt(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormElemt";
  TensorRef x = tensorAt(info, 0, op, "x");
  auto w = optionalTensorAt(info, 1, op, "weight"), b = optionalTensorAt(info, 2, op, "bias");
  TensorRef mean = tensorAt(info, 3, op, "mean"), invstd = tensorAt(info, 4, op, "invstd");
  auto residual = optionalTensorAt(info, 5, op, "residual");
  const bool relu = info[6].ToBoolean();
  NG_KERNEL(op, {
    checkNC(x);
    checkPerChannel(ptr(w), x, "weight");
    checkPerChannel(ptr(b), x, "bias");
    checkPerChannel(&mean, x, "mean");
    checkPerChannel(&invstd, x, "invstd");
    if (residual) checkLike(*residual, x, "residual");
    return result(info, deviceOf(info).kernels.batchNormElemt(x, ptr(w), ptr(b), mean, invstd, {ptr(residual), relu}));
  })
}

Napi::Value BatchNormInvstd(const Napi::CallbackInfo& info) {
  TensorRef v = tensorAt(info, 0, "BatchNormInvstd", "runVar");
  const double eps = numberArg(info[1], "BatchNormInvstd", "eps");
  NG_KERNEL("BatchNormInvstd", {
    if (v.shape.size() != 1) throw std::invalid_argument("runVar must be a vector [C], got " + fmtShape(v.shape));
    return result(info, deviceOf(info).kernels.batchNormInvstd(v, eps));
  })
}

Napi::Value BatchNormBackwardReduce(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormBackwardReduce";
  TensorRef dy = tensorAt(info, 0, op, "dy"), x = tensorAt(info, 1, op, "x");
  TensorRef mean = tensorAt(info, 2, op, "mean"), invstd = tensorAt(info, 3, op, "invstd");
  const bool relu = info[4].ToBoolean();
  auto w = optionalTensorAt(info, 5, op, "weight"), b = optionalTensorAt(info, 6, op, "bias");
  NG_KERNEL(op, {
    checkNC(x);
    checkLike(dy, x, "dy");
    checkPerChannel(&mean, x, "mean");
    checkPerChannel(&invstd, x, "invstd");
    checkPerChannel(ptr(w), x, "weight");
    checkPerChannel(ptr(b), x, "bias");
    BatchNormReduce red = deviceOf(info).kernels.batchNormBackwardReduce(dy, x, mean, invstd, {relu, ptr(w), ptr(b)});
    auto env = info.Env();
    auto r = Napi::Object::New(env);
    r.Set("sumDy", wrap(env, std::move(red.sumDy)));
    r.Set("sumDyXmu", wrap(env, std::move(red.sumDyXmu)));
    r.Set("dweight", wrap(env, std::move(red.dweight)));
    r.Set("dbias", wrap(env, std::move(red.dbias)));
    return r;
  })
}

Napi::Value BatchNormBackwardElemt(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormBackwardElemt";
  TensorRef dy = tensorAt(info, 0, op, "dy"), x = tensorAt(info, 1, op, "x");
  TensorRef mean = tensorAt(info, 2, op, "mean"), invstd = tensorAt(info, 3, op, "invstd");
  auto w = optionalTensorAt(info, 4, op, "weight");
  TensorRef sumDy = tensorAt(info, 5, op, "sumDy"), sumDyXmu = tensorAt(info, 6, op, "sumDyXmu");
  const bool relu = info[8].ToBoolean();
  auto b = optionalTensorAt(info, 9, op, "bias");
  NG_KERNEL(op, {
    checkNC(x);
    checkLike(dy, x, "dy");
    checkPerChannel(&mean, x, "mean");
    checkPerChannel(&invstd, x, "invstd");
    checkPerChannel(ptr(w), x, "weight");
    checkPerChannel(&sumDy, x, "sumDy");
    checkPerChannel(&sumDyXmu, x, "sumDyXmu");
    checkPerChannel(ptr(b), x, "bias");
    const double count = countArg(info[7]);
    return result(info, deviceOf(info).kernels.batchNormBackwardElemt(dy, x, mean, invstd, ptr(w), sumDy, sumDyXmu,
                                                                      count, {relu, ptr(w), ptr(b)}));
  })
}

Napi::Value BatchNormUpdateRunning(const Napi::CallbackInfo& info) {
  const char* op = "BatchNormUpdateRunning";
  TensorRef rm = tensorAt(info, 0, op, "runMean"), rv = tensorAt(info, 1, op, "runVar");
  auto counter = optionalTensorAt(info, 2, op, "counter");
  TensorRef mean = tensorAt(info, 3, op, "mean"), invstd = tensorAt(info, 4, op, "invstd");
  NG_KERNEL(op, {
    // The kernel writes in place, so everything is checked before it runs.
    const int64_t C = rm.shape.size() == 1 ? rm.shape[0] : -1;
    // mean and invstd may be float32 beside half running statistics.
    auto vector = [&](const TensorRef& t, const char* name) {
      const bool dtypeOk = &t == &mean || &t == &invstd ? channelDType(t.dtype, rm.dtype) : t.dtype == rm.dtype;
      if (!dtypeOk || t.shape.size() != 1 || t.shape[0] != C) {
        throw std::invalid_argument(std::string(name) + " of shape " + fmtShape(t.shape) + " (" + dtypeName(t.dtype) +
                                    ") must be a vector like runMean " + fmtShape(rm.shape) + " (" +
                                    dtypeName(rm.dtype) + ")");
      }
    };
    vector(rm, "runMean");
    vector(rv, "runVar");
    vector(mean, "mean");
    vector(invstd, "invstd");
    if (counter && (counter->dtype != DType::I64 || counter->numel() != 1)) {
      throw std::invalid_argument("counter must be a one-element int64 tensor, got " + fmtShape(counter->shape) + " (" +
                                  dtypeName(counter->dtype) + ")");
    }
    if (!info[5].IsObject()) throw std::invalid_argument("parameters must be an object { eps, count, factor }");
    auto o = info[5].As<Napi::Object>();
    BatchNormUpdate p{numberArg(o.Get("eps"), op, "eps"), countArg(o.Get("count")), numberArg(o.Get("factor"), op, "factor")};
    if (p.count < 2) throw std::invalid_argument("count must be > 1 (the unbiased variance divides by count - 1)");
    deviceOf(info).kernels.batchNormUpdateRunning(rm, rv, ptr(counter), mean, invstd, p);
    return info.Env().Undefined();
  })
}

}  // namespace

void bindNorm(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.batchNormStats) defineKernel<BatchNormStats>(env, k, "BatchNormStats", d);
  if (d.kernels.batchNormElemt) defineKernel<BatchNormElemt>(env, k, "BatchNormElemt", d);
  if (d.kernels.batchNormInvstd) defineKernel<BatchNormInvstd>(env, k, "BatchNormInvstd", d);
  if (d.kernels.batchNormBackwardReduce) defineKernel<BatchNormBackwardReduce>(env, k, "BatchNormBackwardReduce", d);
  if (d.kernels.batchNormBackwardElemt) defineKernel<BatchNormBackwardElemt>(env, k, "BatchNormBackwardElemt", d);
  if (d.kernels.batchNormUpdateRunning) defineKernel<BatchNormUpdateRunning>(env, k, "BatchNormUpdateRunning", d);
}

}  // namespace nodegrad
