/** The 'ts' backend: every kernel in plain TypeScript, float32 and float64, always available. */
import type { Backend, DTypeSupport, Kernels } from '../../backend.js';
import { checkHostArray, type DType } from '../../dtype.js';
import { fmt, numel } from '../../shape.js';
import { convKernels } from './conv.js';
import { creationKernels } from './creation.js';
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
  ...creationKernels,
  ...matmulKernels,
  ...convKernels,
  ...poolKernels,
  ...normKernels,
  ...softmaxKernels,
  ...optimKernels,
};

const ALL: readonly DType[] = ['float32', 'float64', 'int32', 'int64'];
const FLOAT: readonly DType[] = ['float32', 'float64'];
const dtypes: DTypeSupport = {
  elementwise: ALL, cast: ALL, reduce: ALL, movement: ALL, creation: ALL, random: FLOAT,
  matmul: FLOAT, conv: FLOAT, pool: FLOAT, norm: FLOAT, softmax: FLOAT, optim: FLOAT,
};

/** Synchronous host memory: a read is a copy, and there is no queue to wait for. */
export const tsBackend: Backend = {
  name: 'ts',
  fromArray(data, shape, dtype) {
    checkHostArray('ts.fromArray', data, dtype);
    if (data.length !== numel(shape)) throw new Error(`ts.fromArray: ${data.length} elements for shape ${fmt(shape)}`);
    return { buf: data.slice(), shape: [...shape], dtype };
  },
  readSync: (x) => arr(x).slice(),
  read: (x) => Promise.resolve(arr(x).slice()),
  sync: () => {},
  copyInto(dst, src) {
    arr(dst).set(arr(src));
  },
  dtypes,
  kernels,
};
