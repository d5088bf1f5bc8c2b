// PLACEHOLDER: the optim kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addOptimKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
