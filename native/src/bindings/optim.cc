// Fused optimizer kernels: sgdStep(param, grad, momentumBuf | null, opts) and
// adamStep(param, grad, expAvg, expAvgSq, maxExpAvgSq | null, opts), in place, returning
// undefined. Argument checks and marshalling only; the loops are in cpu/optim.cc.
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/broadcast.h"
#include "cpu/optim.h"

namespace nodegrad {
namespace {

using cpu::fmtShape;

// A tensor of param's shape and dtype; null or undefined is absent (returns nullptr). The state
// buffers are written in place (writableArg); the gradient is only read, through a plain view
// that `hold` keeps alive for the call.
Buffer* like(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, const TensorArg& param,
             bool optional, TensorArg* hold = nullptr) {
  if (optional && (info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  TensorArg t = hold ? tensorArg(info, i, op, name) : writableArg(info, i, op, name);
  if (hold) *hold = t;
  if (t.shape != param.shape || t.dtype != param.dtype) {
    throw std::invalid_argument(std::string("'") + name + "' " + fmtShape(t.shape) + " (" + dtypeName(t.dtype) +
                                ") must match 'param' " + fmtShape(param.shape) + " (" + dtypeName(param.dtype) + ")");
  }
  return t.buf;
}

TensorArg floatParam(const Napi::CallbackInfo& info, const char* op) {
  TensorArg p = writableArg(info, 0, op, "param");
  if (p.dtype != DType::F32 && p.dtype != DType::F64) {
    throw std::invalid_argument(std::string("'param' must be float32 or float64, got ") + dtypeName(p.dtype));
  }
  return p;
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
    TensorArg p = floatParam(info, op);
    TensorArg gradArg;
    Buffer* g = like(info, 1, op, "grad", p, false, &gradArg);
    Buffer* buf = like(info, 2, op, "momentumBuf", p, true);
    auto o = options(info, 3);
    cpu::SGDOptions so{num(o, "lr"), num(o, "momentum"), num(o, "dampening"), num(o, "weightDecay"),
                       flag(o, "nesterov"), flag(o, "maximize"), flag(o, "firstStep")};
    if (so.momentum != 0 && !buf) throw std::invalid_argument("momentum needs 'momentumBuf'");
    const auto n = int64_t(p.numel());
    NG_REAL_DISPATCH(p.dtype, cpu::sgdStep(p.buf->as<T>(), g->as<T>(), buf ? buf->as<T>() : nullptr, n, so);)
    return info.Env().Undefined();
  })
}

Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  const char* op = "AdamStep";
  NG_KERNEL(op, {
    TensorArg p = floatParam(info, op);
    TensorArg gradArg;
    Buffer* g = like(info, 1, op, "grad", p, false, &gradArg);
    Buffer* m = like(info, 2, op, "expAvg", p, false);
    Buffer* v = like(info, 3, op, "expAvgSq", p, false);
    Buffer* vmax = like(info, 4, op, "maxExpAvgSq", p, true);
    auto o = options(info, 5);
    cpu::AdamOptions ao{num(o, "lr"), num(o, "beta1"), num(o, "beta2"), num(o, "eps"), num(o, "weightDecay"),
                        flag(o, "decoupled"), flag(o, "amsgrad"), flag(o, "maximize"), int64_t(num(o, "step"))};
    if (ao.amsgrad && !vmax) throw std::invalid_argument("amsgrad needs 'maxExpAvgSq'");
    if (ao.step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(ao.step));
    const auto n = int64_t(p.numel());
    NG_REAL_DISPATCH(p.dtype, cpu::adamStep(p.buf->as<T>(), g->as<T>(), m->as<T>(), v->as<T>(),
                                            vmax ? vmax->as<T>() : nullptr, n, ao);)
    return info.Env().Undefined();
  })
}

}  // namespace

void registerOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("sgdStep", Napi::Function::New(env, SGDStep));
  exports.Set("adamStep", Napi::Function::New(env, AdamStep));
}

}  // namespace nodegrad
