// PLACEHOLDER: the movement kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addMovementKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
