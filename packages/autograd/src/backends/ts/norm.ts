import type { Kernels } from '../../backend.js';
const missing = (k: string) => () => { throw new Error(`ts backend: kernel ${k} is not written yet`); };
export const normKernels: Pick<Kernels, 'BatchNormForward' | 'BatchNormBackward'> = {
  BatchNormForward: missing('BatchNormForward'), BatchNormBackward: missing('BatchNormBackward'),
};
