// The MPI process group's JS surface on the 'cpu' addon (exports.mpi), present when the build
// found MPI (describeBuild's 'mpi' feature says why not otherwise).
#pragma once
#include <napi.h>

namespace nodegrad::mpi {

void bindMpi(Napi::Env env, Napi::Object exports);

}  // namespace nodegrad::mpi
