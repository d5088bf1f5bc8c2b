/**
 * The 'cpu' backend's fused optimizer kernels: plain C++ loops with OpenMP (src/cpu/optim.cc),
 * float32 and float64, each element computed in double as in the 'ts' backend.
 */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function optimKernels(addon: NativeAddon): Pick<Kernels, 'SGDStep' | 'AdamStep'> {
  return {
    SGDStep: (param, grad, momentumBuf, o) => addon.sgdStep(param, grad, momentumBuf, o),
    AdamStep: (param, grad, expAvg, expAvgSq, maxExpAvgSq, o) => addon.adamStep(param, grad, expAvg, expAvgSq, maxExpAvgSq, o),
  };
}
