#include "cpu_controls.h"

#include "bindings/handles.h"
#include "cpu/onednn.h"

namespace nodegrad {
namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  NG_CALL("setNumThreads", {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setNumThreads: n must be a number");
    cpu::setNumThreads(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  })
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::numThreads()); }

Napi::Value PrimitiveCacheStats(const Napi::CallbackInfo& info) {
  auto s = cpu::primitiveCacheStats();
  auto o = Napi::Object::New(info.Env());
  o.Set("entries", double(s.entries));
  o.Set("created", double(s.created));
  return o;
}

}  // namespace

void registerCpuControls(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreads>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreads>(env, "getNumThreads"));
  exports.Set("primitiveCacheStats", Napi::Function::New<PrimitiveCacheStats>(env, "primitiveCacheStats"));
}

}  // namespace nodegrad
