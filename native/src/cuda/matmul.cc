// PLACEHOLDER: the matmul kernels are not written yet (issue 10).
#include "cuda/device.h"

namespace nodegrad::cuda {

void addMatmulKernels(KernelTable&) {}

}  // namespace nodegrad::cuda
