/** The 'cpu' backend's matmul kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function matmulKernels(_addon: NativeAddon): Pick<Kernels, 'BatchMatMul'> {
  return {
    BatchMatMul: notNative('BatchMatMul'),
  };
}
