/** The 'ts' backend: every kernel in plain TypeScript, float32 and float64, always available. */
import type { Backend, Kernels } from '../../backend.js';
import { allocArray, type TypedArray } from '../../dtype.js';
import { numel } from '../../shape.js';
import { convKernels } from './conv.js';
import { elementwiseKernels } from './elementwise.js';
import { matmulKernels } from './gemm.js';
import { movementKernels } from './movement.js';
import { normKernels } from './norm.js';
import { optimKernels } from './optim.js';
import { poolKernels } from './pool.js';
import { reduceKernels } from './reduce.js';
import { softmaxKernels } from './softmax.js';
import { arr } from './util.js';

const kernels: Kernels = {
  ...elementwiseKernels,
  ...reduceKernels,
  ...movementKernels,
  ...matmulKernels,
  ...convKernels,
  ...poolKernels,
  ...normKernels,
  ...softmaxKernels,
  ...optimKernels,
};

export const tsBackend: Backend = {
  name: 'ts',
  fromArray(data, shape, dtype) {
    if (data.length !== numel(shape)) throw new Error(`ts.fromArray: ${data.length} elements for shape [${shape.join(', ')}]`);
    const copy: TypedArray = allocArray(dtype, data.length);
    copy.set(data);
    return { buf: copy, shape: [...shape], dtype };
  },
  toArray(x) {
    return arr(x).slice();
  },
  copyInto(dst, src) {
    arr(dst).set(arr(src));
  },
  kernels,
};
