/** The 'cpu' backend's data movement (bindings/movement.cc), for every dtype. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function movementKernels(addon: NativeAddon):
  Pick<Kernels, 'Transpose' | 'BroadcastTo' | 'Slice' | 'Pad' | 'Concat' | 'OneHot'> {
  return {
    Transpose: addon.transpose,
    BroadcastTo: addon.broadcastTo,
    Slice: addon.slice,
    Pad: addon.pad,
    Concat: addon.concat,
    OneHot: addon.oneHot,
  };
}
