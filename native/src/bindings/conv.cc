// Conv kernels: not native yet (the TS side throws 'not native yet' for them).
#include "bindings/kernels.h"

namespace nodegrad {

void registerConv(Napi::Env, Napi::Object) {}

}  // namespace nodegrad
