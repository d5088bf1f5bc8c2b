// Softmax kernels: not native yet (the TS side throws 'not native yet' for them).
#include "bindings/kernels.h"

namespace nodegrad {

void registerSoftmax(Napi::Env, Napi::Object) {}

}  // namespace nodegrad
