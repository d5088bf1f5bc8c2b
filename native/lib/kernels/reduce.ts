/** The 'cpu' backend's reduce kernels. */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';
import { notNative } from './not_native.js';

export function reduceKernels(_addon: NativeAddon): Pick<Kernels, 'Sum' | 'Max' | 'Min' | 'ArgMax' | 'ArgMin'> {
  return {
    Sum: notNative('Sum'),
    Max: notNative('Max'),
    Min: notNative('Min'),
    ArgMax: notNative('ArgMax'),
    ArgMin: notNative('ArgMin'),
  };
}
