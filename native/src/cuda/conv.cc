// PLACEHOLDER: the conv kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addConvKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
