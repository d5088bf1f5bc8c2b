// Creation on the device: copy(x), fill(shape, value, dtype), random(kind, shape, dtype, seed,
// offset, p, value). Nothing but attributes crosses from JS.
#include <cmath>
#include <cstring>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/random.h"

namespace nodegrad {
namespace {

size_t numelOf(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

// A copy in the source's own layout: a blocked activation stays blocked.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  NG_KERNEL("Copy", {
    TensorArg x = tensorArgAnyLayout(info, 0, "Copy", "x");
    Buffer* out;
    Napi::Value h = x.buf->block != 0 ? newBlockedHandle(info.Env(), x.buf->dims, x.buf->block, &out)
                                      : newHandle(info.Env(), x.buf->numel, x.dtype, &out);
    if (out->bytes) std::memcpy(out->data, x.buf->data, out->bytes);
    return rawObject(info.Env(), h, x.shape, x.dtype);
  })
}

template <typename T>
void fillAll(Buffer* b, T v) {
  T* p = b->as<T>();
  for (size_t i = 0; i < b->numel; i++) p[i] = v;
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  NG_KERNEL("Fill", {
    auto shape = shapeArg(info, 0, "Fill", "shape");
    double value = info[1].As<Napi::Number>().DoubleValue();
    DType dt = parseDType(info[2].As<Napi::String>(), "Fill");
    Buffer* out;
    auto h = newHandle(info.Env(), numelOf(shape), dt, &out);
    switch (dt) {
      case DType::F32: fillAll(out, float(value)); break;
      case DType::I32: fillAll(out, int32_t(value)); break;
      case DType::I64: fillAll(out, std::trunc(value)); break;  // held as double; truncates as torch.full
      default: fillAll(out, value); break;
    }
    return rawObject(info.Env(), h, shape, dt);
  })
}

// random(kind: 'uniform' | 'normal' | 'bernoulli', shape, dtype, seed, offset, p, value)
Napi::Value Random(const Napi::CallbackInfo& info) {
  std::string kind = info[0].As<Napi::String>();
  NG_KERNEL(kind, {
    auto shape = shapeArg(info, 1, kind.c_str(), "shape");
    DType dt = parseDType(info[2].As<Napi::String>(), kind.c_str());
    if (dt != DType::F32 && dt != DType::F64) throw std::runtime_error("random draws are float32 or float64");
    // Seeds and offsets are JS numbers below 2^53: exact as doubles.
    uint64_t seed = uint64_t(info[3].As<Napi::Number>().DoubleValue());
    uint64_t offset = uint64_t(info[4].As<Napi::Number>().DoubleValue());
    double p = info[5].As<Napi::Number>().DoubleValue();
    double value = info[6].As<Napi::Number>().DoubleValue();
    cpu::RandomKind k = kind == "normal" ? cpu::RandomKind::Normal
                        : kind == "bernoulli" ? cpu::RandomKind::Bernoulli
                        : dt == DType::F32 ? cpu::RandomKind::Uniform24 : cpu::RandomKind::Uniform53;
    if (k == cpu::RandomKind::Bernoulli && !(p >= 0 && p <= 1)) throw std::runtime_error("p must be in [0, 1]");
    Buffer* out;
    auto h = newHandle(info.Env(), numelOf(shape), dt, &out);
    NG_REAL_DISPATCH(dt, cpu::randomFill<T>(k, out->as<T>(), out->numel, seed, offset, p, value);)
    return rawObject(info.Env(), h, shape, dt);
  })
}

}  // namespace

void registerCreation(Napi::Env env, Napi::Object exports) {
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("random", Napi::Function::New(env, Random));
}

}  // namespace nodegrad
