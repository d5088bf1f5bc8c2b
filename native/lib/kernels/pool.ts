/**
 * The 'cpu' backend's pooling kernels: plain C++ loops over (n, c) planes (src/cpu/pooling.cc) with
 * the 'ts' backend's semantics (output sizes, divisor rule, adaptive bins, flat plane indices).
 */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function poolKernels(addon: NativeAddon): Pick<Kernels, 'MaxPool2D' | 'MaxPool2DBackward' | 'MaxPool2DGather' | 'AvgPool2D' | 'AvgPool2DBackward' | 'AdaptiveAvgPool2D' | 'AdaptiveAvgPool2DBackward'> {
  return {
    MaxPool2D: (x, p) => addon.maxPool2d(x, p),
    MaxPool2DBackward: (dy, indices, xShape) => addon.maxPool2dBackward(dy, indices, xShape),
    MaxPool2DGather: (x, indices) => addon.maxPool2dGather(x, indices),
    AvgPool2D: (x, p) => addon.avgPool2d(x, p),
    AvgPool2DBackward: (dy, xShape, p) => addon.avgPool2dBackward(dy, xShape, p),
    AdaptiveAvgPool2D: (x, outSize) => addon.adaptiveAvgPool2d(x, outSize),
    AdaptiveAvgPool2DBackward: (dy, xShape) => addon.adaptiveAvgPool2dBackward(dy, xShape),
  };
}
