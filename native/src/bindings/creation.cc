// Creation on the device: Copy (x), Fill (shape, value, dtype), RandomUniform and RandomNormal
// (shape, dtype, seed, offset), Bernoulli (shape, p, value, dtype, seed, offset). Nothing but
// attributes crosses from JS.
#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

// Seeds and offsets are JS numbers below 2^53: exact as doubles.
uint64_t counterArg(const Napi::Value& v, const char* op, const char* name) { return uint64_t(numberArg(v, op, name)); }

// A float dtype (float32, float64 or a half type).
DType drawDType(const Napi::Value& v, const char* op) {
  DType dt = dtypeArg(v, op);
  if (dt == DType::I32 || dt == DType::I64) throw std::runtime_error("random draws are float, not " + std::string(dtypeName(dt)));
  return dt;
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Copy", "x");
  NG_KERNEL("Copy", return result(info, deviceOf(info).kernels.copy(x));)
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  auto shape = shapeArg(info, 0, "Fill", "shape");
  const double value = numberArg(info[1], "Fill", "value");
  DType dt = dtypeArg(info[2], "Fill");
  NG_KERNEL("Fill", return result(info, deviceOf(info).kernels.fill(shape, value, dt));)
}

template <bool normal>
Napi::Value Random(const Napi::CallbackInfo& info) {
  constexpr const char* name = normal ? "RandomNormal" : "RandomUniform";
  auto shape = shapeArg(info, 0, name, "shape");
  NG_KERNEL(name, {
    DType dt = drawDType(info[1], name);
    const uint64_t seed = counterArg(info[2], name, "seed"), offset = counterArg(info[3], name, "offset");
    const auto& k = deviceOf(info).kernels;
    return result(info, normal ? k.randomNormal(shape, dt, seed, offset) : k.randomUniform(shape, dt, seed, offset));
  })
}

Napi::Value Bernoulli(const Napi::CallbackInfo& info) {
  auto shape = shapeArg(info, 0, "Bernoulli", "shape");
  const double p = numberArg(info[1], "Bernoulli", "p"), value = numberArg(info[2], "Bernoulli", "value");
  NG_KERNEL("Bernoulli", {
    DType dt = drawDType(info[3], "Bernoulli");
    const uint64_t seed = counterArg(info[4], "Bernoulli", "seed"), offset = counterArg(info[5], "Bernoulli", "offset");
    if (!(p >= 0 && p <= 1)) throw std::runtime_error("p must be in [0, 1]");
    return result(info, deviceOf(info).kernels.bernoulli(shape, p, value, dt, seed, offset));
  })
}

}  // namespace

void bindCreation(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.copy) defineKernel<Copy>(env, k, "Copy", d);
  if (d.kernels.fill) defineKernel<Fill>(env, k, "Fill", d);
  if (d.kernels.randomUniform) defineKernel<Random<false>>(env, k, "RandomUniform", d);
  if (d.kernels.randomNormal) defineKernel<Random<true>>(env, k, "RandomNormal", d);
  if (d.kernels.bernoulli) defineKernel<Bernoulli>(env, k, "Bernoulli", d);
}

}  // namespace nodegrad
