/**
 * The 'cpu' backend's conv kernels: oneDNN's convolution forward, backward-data and
 * backward-weights, and the inference forward with bias, residual sum and ReLU as post-ops.
 */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

type ConvKernel = 'Conv2D' | 'Conv2DFused' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter';

export function convKernels(addon: NativeAddon): Required<Pick<Kernels, ConvKernel>> {
  return {
    Conv2D: (x, w, p) => addon.conv2d(x, w, p),
    Conv2DFused: (x, w, bias, residual, p) => addon.conv2dFused(x, w, bias, residual, p),
    Conv2DBackpropInput: (dy, w, xShape, p) => addon.conv2dBackpropInput(dy, w, xShape, p),
    Conv2DBackpropFilter: (x, dy, wShape, p) => addon.conv2dBackpropFilter(x, dy, wShape, p),
  };
}
