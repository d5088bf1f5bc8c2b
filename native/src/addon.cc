// The 'cpu' addon's entry point: it only registers. The 'cpu' device (cpu/device.h: host memory
// and its kernel table) through the bindings every device shares (bindings/, in the static core
// library), the thread controls, the MPI process group and the build's contents.
#include <napi.h>

#include "bindings/kernels.h"
#include "build_config.h"
#include "cpu/device.h"
#include "cpu_controls.h"
#ifdef NODEGRAD_HAVE_MPI
#include "mpi/bindings.h"
#endif

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
  feature("mpi", NODEGRAD_FEATURE_MPI);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nodegrad::registerDevice(env, exports, nodegrad::cpu::device());
  nodegrad::registerCpuControls(env, exports);
#ifdef NODEGRAD_HAVE_MPI
  nodegrad::mpi::bindMpi(env, exports);
#endif
  exports.Set("buildInfo", describeBuild(env));
  return exports;
}

}  // namespace

// NODE_API_MODULE is context-aware under N-API: the addon loads in worker_threads too.
NODE_API_MODULE(nodegrad, Init)
