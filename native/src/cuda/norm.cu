// PLACEHOLDER: the norm kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addNormKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
