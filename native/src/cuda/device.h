// The 'cuda:N' devices: each GPU's caching allocator, the memory functions over its stream, and
// one kernel table shared by every GPU (kernels run on the current device, core/device.h's
// activate), filled family by family by the files that implement each family.
#pragma once
#include <vector>

#include "core/device.h"

namespace nodegrad::cuda {

// The devices the addon registers, 'cuda:0' .. 'cuda:<count - 1>' (made once).
const std::vector<Device>& devices(int count);

DeviceMemory memoryFunctions();
void addElementwiseKernels(KernelTable& t);
void addReduceKernels(KernelTable& t);
void addMovementKernels(KernelTable& t);
void addCreationKernels(KernelTable& t);
void addMatmulKernels(KernelTable& t);
void addConvKernels(KernelTable& t);
void addPoolKernels(KernelTable& t);
void addOptimKernels(KernelTable& t);
void addNormKernels(KernelTable& t);
// The Cast kernel (cuda/elementwise.cu), for families that widen a half operand to float32.
Tensor castTo(const TensorRef& x, DType to);

}  // namespace nodegrad::cuda
