// The addon's entry point: it only registers. Each concern lives in bindings/ (argument checks
// and marshalling) over plain C++ kernels in cpu/ that never include napi.h.
#include <napi.h>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "build_config.h"

namespace {

Napi::Object describeBuild(Napi::Env env) {
  auto o = Napi::Object::New(env);
  auto feature = [&](const char* name, const char* v) {
    auto f = Napi::Object::New(env);
    bool on = std::string(v) == "1";
    f.Set("enabled", on);
    if (!on) f.Set("reason", v);
    o.Set(name, f);
  };
  feature("onednn", NODEGRAD_FEATURE_ONEDNN);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nodegrad::registerBuffer(env, exports);
  nodegrad::registerKernels(env, exports);
  exports.Set("buildInfo", describeBuild(env));
  return exports;
}

}  // namespace

// NODE_API_MODULE is context-aware under N-API: the addon loads in worker_threads too.
NODE_API_MODULE(nodegrad, Init)
