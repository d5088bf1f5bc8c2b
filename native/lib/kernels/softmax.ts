/** The 'cpu' backend's softmax kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function softmaxKernels(_addon: NativeAddon): Pick<Kernels, 'Softmax' | 'LogSoftmax'> {
  return {
    Softmax: notNative('Softmax'),
    LogSoftmax: notNative('LogSoftmax'),
  };
}
