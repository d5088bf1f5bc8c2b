import type { Kernels } from '../../backend.js';
const missing = (k: string) => () => { throw new Error(`ts backend: kernel ${k} is not written yet`); };
export const convKernels: Pick<Kernels, 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter'> = {
  Conv2D: missing('Conv2D'), Conv2DBackpropInput: missing('Conv2DBackpropInput'), Conv2DBackpropFilter: missing('Conv2DBackpropFilter'),
};
