/**
 * The 'cpu' backend's batch norm kernels: plain C++ over (n, c) planes (src/cpu/batchnorm.cc),
 * statistics accumulated in double as in the 'ts' backend.
 */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function normKernels(addon: NativeAddon): Pick<Kernels, 'BatchNormForward' | 'BatchNormBackward'> {
  return {
    BatchNormForward: (x, weight, bias, runMean, runVar, p) => addon.batchNormForward(x, weight, bias, runMean, runVar, p),
    BatchNormBackward: (dy, x, weight, mean, invstd) => addon.batchNormBackward(dy, x, weight, mean, invstd),
  };
}
