// Fused optimizer kernels over lists of parameters, in place, returning undefined: SGDStep
// (params, grads, momentumBufs | null, opts), AdamStep (params, grads, expAvgs, expAvgSqs,
// maxExpAvgSqs | null, opts) and GradScaler's NonFiniteCheckAndUnscale (grads, foundInf, invScale).
// Every argument is checked before the device writes anything.
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

using Tensors = std::vector<TensorRef>;

std::string item(const char* name, size_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }
std::string at(const char* name, size_t i) { return "'" + item(name, i) + "'"; }

// The float tensors of list argument 0 ('params', or 'grads' for the unscale), all of one dtype.
Tensors floatList(const Napi::CallbackInfo& info, const char* op, const char* name = "params") {
  if (!info[0].IsArray()) throw std::invalid_argument(std::string("'") + name + "' must be an array of tensors");
  auto list = info[0].As<Napi::Array>();
  Tensors ps;
  for (uint32_t i = 0; i < list.Length(); i++) {
    ps.push_back(readTensor(list.Get(i), op, item(name, i).c_str(), deviceOf(info).allocator));
    if (ps[i].dtype == DType::I32 || ps[i].dtype == DType::I64) {
      throw std::invalid_argument(at(name, i) + " must be a float tensor, got " + dtypeName(ps[i].dtype));
    }
    if (ps[i].dtype != ps[0].dtype) {
      throw std::invalid_argument(at(name, i) + " is " + dtypeName(ps[i].dtype) + " but " + at(name, 0) + " is " +
                                  dtypeName(ps[0].dtype) + "; a list is of one dtype");
    }
  }
  return ps;
}

// A list of tensors, entry i of params[i]'s shape and dtype; null or undefined is absent when optional.
std::optional<Tensors> like(const Napi::CallbackInfo& info, size_t arg, const char* op, const char* name,
                            const Tensors& params, bool optional) {
  if (optional && (info[arg].IsNull() || info[arg].IsUndefined())) return std::nullopt;
  if (!info[arg].IsArray()) throw std::invalid_argument(std::string("'") + name + "' must be an array of tensors");
  auto list = info[arg].As<Napi::Array>();
  if (list.Length() != params.size()) {
    throw std::invalid_argument(std::string("'") + name + "' has " + std::to_string(list.Length()) +
                                " tensors but 'params' has " + std::to_string(params.size()));
  }
  Tensors ts;
  for (uint32_t i = 0; i < list.Length(); i++) {
    ts.push_back(readTensor(list.Get(i), op, item(name, i).c_str(), deviceOf(info).allocator));
    const TensorRef &t = ts[i], &p = params[i];
    if (t.shape != p.shape || t.dtype != p.dtype) {
      throw std::invalid_argument(at(name, i) + " " + fmtShape(t.shape) + " (" + dtypeName(t.dtype) + ") must match " +
                                  at("params", i) + " " + fmtShape(p.shape) + " (" + dtypeName(p.dtype) + ")");
    }
  }
  return ts;
}

const Tensors* ptr(const std::optional<Tensors>& t) { return t ? &*t : nullptr; }

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
    Tensors p = floatList(info, op);
    auto g = like(info, 1, op, "grads", p, false);
    auto buf = like(info, 2, op, "momentumBufs", p, true);
    auto o = options(info, 3);
    SGDOptions so{num(o, "lr"), num(o, "momentum"), num(o, "dampening"), num(o, "weightDecay"),
                  flag(o, "nesterov"), flag(o, "maximize"), flag(o, "firstStep")};
    if (so.momentum != 0 && !buf) throw std::invalid_argument("momentum needs 'momentumBufs'");
    if (!p.empty()) deviceOf(info).kernels.sgdStep(p, *g, ptr(buf), so);
    return info.Env().Undefined();
  })
}

Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  const char* op = "AdamStep";
  NG_KERNEL(op, {
    Tensors p = floatList(info, op);
    auto g = like(info, 1, op, "grads", p, false);
    auto m = like(info, 2, op, "expAvgs", p, false);
    auto v = like(info, 3, op, "expAvgSqs", p, false);
    auto vmax = like(info, 4, op, "maxExpAvgSqs", p, true);
    auto o = options(info, 5);
    AdamOptions ao{num(o, "lr"), num(o, "beta1"), num(o, "beta2"), num(o, "eps"), num(o, "weightDecay"),
                   flag(o, "decoupled"), flag(o, "amsgrad"), flag(o, "maximize"), int64_t(num(o, "step"))};
    if (ao.amsgrad && !vmax) throw std::invalid_argument("amsgrad needs 'maxExpAvgSqs'");
    if (ao.step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(ao.step));
    if (!p.empty()) deviceOf(info).kernels.adamStep(p, *g, *m, *v, ptr(vmax), ao);
    return info.Env().Undefined();
  })
}

Napi::Value NonFiniteCheckAndUnscale(const Napi::CallbackInfo& info) {
  const char* op = "NonFiniteCheckAndUnscale";
  NG_KERNEL(op, {
    Tensors g = floatList(info, op, "grads");
    TensorRef found = tensorAt(info, 1, op, "foundInf");
    if (found.dtype != DType::F32 || found.numel() != 1) {
      throw std::invalid_argument("'foundInf' must be a float32 tensor of one element, got " +
                                  std::string(dtypeName(found.dtype)) + " " + fmtShape(found.shape));
    }
    const double inv = numberArg(info[2], op, "invScale");
    if (!g.empty()) deviceOf(info).kernels.nonFiniteCheckAndUnscale(g, found, inv);
    return info.Env().Undefined();
  })
}

}  // namespace

void bindOptim(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.sgdStep) defineKernel<SGDStep>(env, k, "SGDStep", d);
  if (d.kernels.adamStep) defineKernel<AdamStep>(env, k, "AdamStep", d);
  if (d.kernels.nonFiniteCheckAndUnscale) {
    defineKernel<NonFiniteCheckAndUnscale>(env, k, "NonFiniteCheckAndUnscale", d);
  }
}

}  // namespace nodegrad
