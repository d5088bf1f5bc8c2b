// Fused optimizer kernels, in place, returning undefined: SGDStep (param, grad, momentumBuf | null,
// opts) and AdamStep (param, grad, expAvg, expAvgSq, maxExpAvgSq | null, opts). Every argument is
// checked before the device writes anything.
#include <stdexcept>
#include <string>

#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

TensorRef floatParam(const Napi::CallbackInfo& info, const char* op) {
  TensorRef p = tensorAt(info, 0, op, "param");
  if (p.dtype != DType::F32 && p.dtype != DType::F64) {
    throw std::invalid_argument(std::string("'param' must be float32 or float64, got ") + dtypeName(p.dtype));
  }
  return p;
}

// A tensor of param's shape and dtype; null or undefined is absent when optional.
std::optional<TensorRef> like(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                              const TensorRef& param, bool optional) {
  if (optional && (info[i].IsNull() || info[i].IsUndefined())) return std::nullopt;
  TensorRef t = tensorAt(info, i, op, name);
  if (t.shape != param.shape || t.dtype != param.dtype) {
    throw std::invalid_argument(std::string("'") + name + "' " + fmtShape(t.shape) + " (" + dtypeName(t.dtype) +
                                ") must match 'param' " + fmtShape(param.shape) + " (" + dtypeName(param.dtype) + ")");
  }
  return t;
}

Napi::Object options(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject()) throw std::invalid_argument("the options must be an object");
  return info[i].As<Napi::Object>();
}

double num(const Napi::Object& o, const char* key) {
  auto v = o.Get(key);
  if (!v.IsNumber()) throw std::invalid_argument(std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool flag(const Napi::Object& o, const char* key) { return o.Get(key).ToBoolean(); }

Napi::Value SGDStep(const Napi::CallbackInfo& info) {
  const char* op = "SGDStep";
  NG_KERNEL(op, {
    TensorRef p = floatParam(info, op);
    auto g = like(info, 1, op, "grad", p, false);
    auto buf = like(info, 2, op, "momentumBuf", p, true);
    auto o = options(info, 3);
    SGDOptions so{num(o, "lr"), num(o, "momentum"), num(o, "dampening"), num(o, "weightDecay"),
                  flag(o, "nesterov"), flag(o, "maximize"), flag(o, "firstStep")};
    if (so.momentum != 0 && !buf) throw std::invalid_argument("momentum needs 'momentumBuf'");
    deviceOf(info).kernels.sgdStep(p, *g, ptr(buf), so);
    return info.Env().Undefined();
  })
}

Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  const char* op = "AdamStep";
  NG_KERNEL(op, {
    TensorRef p = floatParam(info, op);
    auto g = like(info, 1, op, "grad", p, false);
    auto m = like(info, 2, op, "expAvg", p, false);
    auto v = like(info, 3, op, "expAvgSq", p, false);
    auto vmax = like(info, 4, op, "maxExpAvgSq", p, true);
    auto o = options(info, 5);
    AdamOptions ao{num(o, "lr"), num(o, "beta1"), num(o, "beta2"), num(o, "eps"), num(o, "weightDecay"),
                   flag(o, "decoupled"), flag(o, "amsgrad"), flag(o, "maximize"), int64_t(num(o, "step"))};
    if (ao.amsgrad && !vmax) throw std::invalid_argument("amsgrad needs 'maxExpAvgSq'");
    if (ao.step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(ao.step));
    deviceOf(info).kernels.adamStep(p, *g, *m, *v, ptr(vmax), ao);
    return info.Env().Undefined();
  })
}

}  // namespace

void bindOptim(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.sgdStep) defineKernel<SGDStep>(env, k, "SGDStep", d);
  if (d.kernels.adamStep) defineKernel<AdamStep>(env, k, "AdamStep", d);
}

}  // namespace nodegrad
