// PLACEHOLDER: the pool kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addPoolKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
