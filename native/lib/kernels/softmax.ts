/** The 'cpu' backend's softmax family (bindings/softmax.cc). */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function softmaxKernels(addon: NativeAddon): Pick<Kernels, 'Softmax' | 'LogSoftmax'> {
  return {
    Softmax: (x, axis) => addon.softmax(x, axis, false),
    LogSoftmax: (x, axis) => addon.softmax(x, axis, true),
  };
}
