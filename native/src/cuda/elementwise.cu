// PLACEHOLDER: the elementwise kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addElementwiseKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
