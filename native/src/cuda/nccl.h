// The NCCL process group's JS surface on the 'cuda' addon (exports.nccl): communicators over the
// job's GPUs and the collectives on 'cuda:N' tensors, each on the communicator's own stream,
// ordered after the compute stream's work by an event and handed back as an event.
#pragma once
#include <napi.h>

namespace nodegrad::cuda {

void bindNccl(Napi::Env env, Napi::Object exports);

}  // namespace nodegrad::cuda
