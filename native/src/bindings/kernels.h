// One registration function per kernel family; each lives in bindings/<family>.cc.
#pragma once
#include <napi.h>

namespace nodegrad {

void registerElementwise(Napi::Env env, Napi::Object exports);
void registerReduce(Napi::Env env, Napi::Object exports);
void registerMovement(Napi::Env env, Napi::Object exports);
void registerCreation(Napi::Env env, Napi::Object exports);
void registerSoftmax(Napi::Env env, Napi::Object exports);
void registerMatmul(Napi::Env env, Napi::Object exports);
void registerConv(Napi::Env env, Napi::Object exports);
void registerPool(Napi::Env env, Napi::Object exports);
void registerNorm(Napi::Env env, Napi::Object exports);
void registerOptim(Napi::Env env, Napi::Object exports);

inline void registerKernels(Napi::Env env, Napi::Object exports) {
  registerElementwise(env, exports);
  registerReduce(env, exports);
  registerMovement(env, exports);
  registerCreation(env, exports);
  registerSoftmax(env, exports);
  registerMatmul(env, exports);
  registerConv(env, exports);
  registerPool(env, exports);
  registerNorm(env, exports);
  registerOptim(env, exports);
}

}  // namespace nodegrad
