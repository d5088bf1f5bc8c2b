// The bindings of one device: registerDevice exports its memory functions and its kernels object,
// whose keys are the KernelNames of packages/autograd/src/backend.ts, each family bound in
// bindings/<family>.cc (a key is left out when the device's table lacks the entry).
#pragma once
#include <napi.h>

#include "core/device.h"

namespace nodegrad {

// exports[name] = { name, fromArray, readSync, copyInto, free, sync, memoryStats, trimPool,
// layoutOf, kernels }, name being the device's ('cpu').
void registerDevice(Napi::Env env, Napi::Object exports, const Device& device);

void bindElementwise(Napi::Env env, Napi::Object kernels, const Device& device);
void bindReduce(Napi::Env env, Napi::Object kernels, const Device& device);
void bindMovement(Napi::Env env, Napi::Object kernels, const Device& device);
void bindCreation(Napi::Env env, Napi::Object kernels, const Device& device);
void bindMatmulConv(Napi::Env env, Napi::Object kernels, const Device& device);
void bindPool(Napi::Env env, Napi::Object kernels, const Device& device);
void bindOptim(Napi::Env env, Napi::Object kernels, const Device& device);
void bindNorm(Napi::Env env, Napi::Object kernels, const Device& device);

}  // namespace nodegrad
