/** The 'cpu' backend's conv kernels: oneDNN's convolution forward, backward-data and backward-weights. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function convKernels(addon: NativeAddon): Pick<Kernels, 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter'> {
  return {
    Conv2D: (x, w, p) => addon.conv2d(x, w, p),
    Conv2DBackpropInput: (dy, w, xShape, p) => addon.conv2dBackpropInput(dy, w, xShape, p),
    Conv2DBackpropFilter: (x, dy, wShape, p) => addon.conv2dBackpropFilter(x, dy, wShape, p),
  };
}
