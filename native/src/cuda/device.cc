#include "cuda/device.h"

#include "cuda/context.h"

namespace nodegrad::cuda {

const std::vector<Device>& devices(int count) {
  static const std::vector<Device> all = [count] {
    KernelTable table;
    addElementwiseKernels(table);
    addReduceKernels(table);
    addMovementKernels(table);
    addCreationKernels(table);
    addMatmulKernels(table);
    addConvKernels(table);
    addPoolKernels(table);
    addOptimKernels(table);
    addNormKernels(table);
    std::vector<Device> v;
    for (int i = 0; i < count; i++) v.push_back(Device{&context(i).allocator, memoryFunctions(), table});
    return v;
  }();
  return all;
}

}  // namespace nodegrad::cuda
