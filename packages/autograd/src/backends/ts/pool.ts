import type { Kernels } from '../../backend.js';
const missing = (k: string) => () => { throw new Error(`ts backend: kernel ${k} is not written yet`); };
export const poolKernels: Pick<Kernels, 'MaxPool2D' | 'MaxPool2DBackward' | 'MaxPool2DGather' | 'AvgPool2D' |
  'AvgPool2DBackward' | 'AdaptiveAvgPool2D' | 'AdaptiveAvgPool2DBackward'> = {
  MaxPool2D: missing('MaxPool2D'), MaxPool2DBackward: missing('MaxPool2DBackward'), MaxPool2DGather: missing('MaxPool2DGather'),
  AvgPool2D: missing('AvgPool2D'), AvgPool2DBackward: missing('AvgPool2DBackward'),
  AdaptiveAvgPool2D: missing('AdaptiveAvgPool2D'), AdaptiveAvgPool2DBackward: missing('AdaptiveAvgPool2DBackward'),
};
