// Matmul kernels: batchMatMul(a, b, transA, transB). Also the oneDNN-wide controls shared with
// conv: setNumThreads / getNumThreads (fixed before the first primitive) and primitiveCacheStats.
#include <string>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/matmul.h"
#include "cpu/onednn.h"

namespace nodegrad {
namespace {

std::string fmt(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// [B, M, K] x [B, K, N] -> [B, M, N], with optional transposes of the last two dims (the 'ts' contract).
Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  NG_KERNEL("BatchMatMul", {
    TensorArg a = tensorArg(info, 0, "BatchMatMul", "a");
    TensorArg b = tensorArg(info, 1, "BatchMatMul", "b");
    bool ta = info[2].ToBoolean(), tb = info[3].ToBoolean();
    requireF32(a, "BatchMatMul", "a");
    requireF32(b, "BatchMatMul", "b");
    if (a.shape.size() != 3 || b.shape.size() != 3) {
      throw std::runtime_error("expected rank-3 operands, got " + fmt(a.shape) + " and " + fmt(b.shape));
    }
    cpu::MatmulDims d{a.shape[0], ta ? a.shape[2] : a.shape[1], ta ? a.shape[1] : a.shape[2],
                      tb ? b.shape[1] : b.shape[2], ta, tb};
    int64_t kb = tb ? b.shape[2] : b.shape[1];
    if (b.shape[0] != d.batch || kb != d.k) {
      throw std::runtime_error("shapes " + fmt(a.shape) + (ta ? " (transposed)" : "") + " and " + fmt(b.shape) +
                               (tb ? " (transposed)" : "") + " do not match (batch " + std::to_string(d.batch) +
                               " vs " + std::to_string(b.shape[0]) + ", inner " + std::to_string(d.k) + " vs " +
                               std::to_string(kb) + ")");
    }
    std::vector<int64_t> shape{d.batch, d.m, d.n};
    Buffer* c;
    auto h = newHandle(info.Env(), size_t(d.batch * d.m * d.n), DType::F32, &c);
    cpu::batchMatmul(d, a.f32(), b.f32(), c->as<float>());
    return rawObject(info.Env(), h, shape, DType::F32);
  })
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  NG_KERNEL("setNumThreads", {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setNumThreads: n must be a number");
    cpu::setNumThreads(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  })
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::numThreads());
}

Napi::Value PrimitiveCacheStats(const Napi::CallbackInfo& info) {
  auto s = cpu::primitiveCacheStats();
  auto o = Napi::Object::New(info.Env());
  o.Set("entries", double(s.entries));
  o.Set("created", double(s.created));
  return o;
}

}  // namespace

void registerMatmul(Napi::Env env, Napi::Object exports) {
  exports.Set("batchMatMul", Napi::Function::New(env, BatchMatMul));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("primitiveCacheStats", Napi::Function::New(env, PrimitiveCacheStats));
}

}  // namespace nodegrad
