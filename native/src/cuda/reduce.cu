// PLACEHOLDER: the reduce kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addReduceKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
