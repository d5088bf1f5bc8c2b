#include "cpu/device.h"

#include "cpu/host_allocator.h"

namespace nodegrad::cpu {

const Device& device() {
  static const Device d = [] {
    Device dev{&hostAllocator(), memoryFunctions(), {}};
    addElementwiseKernels(dev.kernels);
    addReduceKernels(dev.kernels);
    addMovementKernels(dev.kernels);
    addCreationKernels(dev.kernels);
    addMatmulConvKernels(dev.kernels);
    addPoolKernels(dev.kernels);
    addOptimKernels(dev.kernels);
    addNormKernels(dev.kernels);
    return dev;
  }();
  return d;
}

}  // namespace nodegrad::cpu
