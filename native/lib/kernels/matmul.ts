/** The 'cpu' backend's matmul kernel: oneDNN's matmul, transposes read in place through strides. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function matmulKernels(addon: NativeAddon): Pick<Kernels, 'BatchMatMul'> {
  return {
    BatchMatMul: (a, b, transA, transB) => addon.batchMatMul(a, b, transA, transB),
  };
}
