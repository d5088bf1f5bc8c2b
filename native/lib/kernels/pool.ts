/** The 'cpu' backend's pool kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function poolKernels(_addon: NativeAddon): Pick<Kernels, 'MaxPool2D' | 'MaxPool2DBackward' | 'MaxPool2DGather' | 'AvgPool2D' | 'AvgPool2DBackward' | 'AdaptiveAvgPool2D' | 'AdaptiveAvgPool2DBackward'> {
  return {
    MaxPool2D: notNative('MaxPool2D'),
    MaxPool2DBackward: notNative('MaxPool2DBackward'),
    MaxPool2DGather: notNative('MaxPool2DGather'),
    AvgPool2D: notNative('AvgPool2D'),
    AvgPool2DBackward: notNative('AvgPool2DBackward'),
    AdaptiveAvgPool2D: notNative('AdaptiveAvgPool2D'),
    AdaptiveAvgPool2DBackward: notNative('AdaptiveAvgPool2DBackward'),
  };
}
