/**
 * The 'cpu' backend's batch norm kernels, split as PyTorch's CUDA path: plain C++ over (n, c)
 * planes (src/cpu/batchnorm.cc), or over channel blocks when a convolution left the activation
 * in oneDNN's blocked layout (src/cpu/batchnorm_blocked.cc); statistics accumulated in double as
 * in the 'ts' backend.
 */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

type NormKernel = 'BatchNormStats' | 'BatchNormElemt' | 'BatchNormInvstd' | 'BatchNormBackwardReduce' |
  'BatchNormBackwardElemt' | 'BatchNormUpdateRunning';

export function normKernels(addon: NativeAddon): Pick<Kernels, NormKernel> {
  return {
    BatchNormStats: (x, eps) => addon.batchNormStats(x, eps),
    BatchNormElemt: (x, weight, bias, mean, invstd) => addon.batchNormElemt(x, weight, bias, mean, invstd),
    BatchNormInvstd: (runVar, eps) => addon.batchNormInvstd(runVar, eps),
    BatchNormBackwardReduce: (dy, x, mean, invstd) => addon.batchNormBackwardReduce(dy, x, mean, invstd),
    BatchNormBackwardElemt: (dy, x, mean, invstd, weight, sumDy, sumDyXmu, count) =>
      addon.batchNormBackwardElemt(dy, x, mean, invstd, weight, sumDy, sumDyXmu, count),
    BatchNormUpdateRunning: (runMean, runVar, counter, mean, invstd, p) =>
      addon.batchNormUpdateRunning(runMean, runVar, counter, mean, invstd, p),
  };
}
