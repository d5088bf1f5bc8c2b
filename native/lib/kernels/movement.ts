/** The 'cpu' backend's movement kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function movementKernels(_addon: NativeAddon): Pick<Kernels, 'Transpose' | 'BroadcastTo' | 'Slice' | 'Pad' | 'Concat' | 'OneHot'> {
  return {
    Transpose: notNative('Transpose'),
    BroadcastTo: notNative('BroadcastTo'),
    Slice: notNative('Slice'),
    Pad: notNative('Pad'),
    Concat: notNative('Concat'),
    OneHot: notNative('OneHot'),
  };
}
