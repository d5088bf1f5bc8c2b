// The 'cpu' addon's own exports beside its device: oneDNN's and OpenMP's thread count, fixed
// before the first primitive, and the primitive cache's statistics.
#pragma once
#include <napi.h>

namespace nodegrad {

// Exports: setNumThreads, getNumThreads, primitiveCacheStats.
void registerCpuControls(Napi::Env env, Napi::Object exports);

}  // namespace nodegrad
