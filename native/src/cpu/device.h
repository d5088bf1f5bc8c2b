// The 'cpu' device: host memory from the pool, and its kernel table, filled family by family by
// the files that implement each family's entries (*_kernels.cc), layout policy included.
#pragma once
#include "core/device.h"

namespace nodegrad::cpu {

// The device the addon registers as 'cpu' (made once, shared by every worker thread).
const Device& device();

DeviceMemory memoryFunctions();
void addElementwiseKernels(KernelTable& t);
void addReduceKernels(KernelTable& t);
void addMovementKernels(KernelTable& t);
void addCreationKernels(KernelTable& t);
void addMatmulConvKernels(KernelTable& t);
void addPoolKernels(KernelTable& t);
void addOptimKernels(KernelTable& t);
void addNormKernels(KernelTable& t);

}  // namespace nodegrad::cpu
