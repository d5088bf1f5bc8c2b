/** The 'cpu' backend's conv kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function convKernels(_addon: NativeAddon): Pick<Kernels, 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter'> {
  return {
    Conv2D: notNative('Conv2D'),
    Conv2DBackpropInput: notNative('Conv2DBackpropInput'),
    Conv2DBackpropFilter: notNative('Conv2DBackpropFilter'),
  };
}
