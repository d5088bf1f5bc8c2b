/** The 'cpu' backend's reductions (bindings/reduce.cc). */
import type { Kernels } from '@nodegrad/autograd';
import type { NativeAddon } from '../native.js';

export function reduceKernels(addon: NativeAddon): Pick<Kernels, 'Sum' | 'Max' | 'Min' | 'ArgMax' | 'ArgMin'> {
  return {
    Sum: (x, axes) => addon.reduce('Sum', x, axes),
    Max: (x, axes) => addon.reduce('Max', x, axes),
    Min: (x, axes) => addon.reduce('Min', x, axes),
    ArgMax: (x, axis) => addon.argReduce('ArgMax', x, axis),
    ArgMin: (x, axis) => addon.argReduce('ArgMin', x, axis),
  };
}
