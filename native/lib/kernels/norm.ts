/** The 'cpu' backend's norm kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function normKernels(_addon: NativeAddon): Pick<Kernels, 'BatchNormForward' | 'BatchNormBackward'> {
  return {
    BatchNormForward: notNative('BatchNormForward'),
    BatchNormBackward: notNative('BatchNormBackward'),
  };
}
