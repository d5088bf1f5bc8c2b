/**
 * The 'ts' backend: every kernel in plain TypeScript, always available. The half types are
 * emulated: they live in Float32Array, each kernel computes as for float32, and every half result
 * (and every half buffer an in-place kernel wrote) is rounded to its type, to nearest even.
 */
import type { Backend, DTypeSupport, Kernels, Raw } from '../../backend.js';
import { checkHostArray, isHalf, roundInPlace, type DType, type TypedArray } from '../../dtype.js';
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

const computing: Kernels = {
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

/** Rounds every half-typed Raw in a kernel's result (a Raw, an object of Raws, or a list) in place. */
function roundHalves(v: unknown): void {
  if (!v || typeof v !== 'object') return;
  if (Array.isArray(v)) { v.forEach(roundHalves); return; }
  if ('buf' in v && 'dtype' in v) {
    const r = v as Raw;
    if (isHalf(r.dtype)) roundInPlace(r.buf as TypedArray, r.dtype);
    return;
  }
  Object.values(v).forEach(roundHalves);
}

/** Each kernel, then the rounding of its half results; a kernel that returns nothing wrote into its arguments. */
const kernels = Object.fromEntries(Object.entries(computing).map(([name, k]) => [name, (...args: unknown[]) => {
  const r = (k as (...a: unknown[]) => unknown)(...args);
  roundHalves(r === undefined ? args : r);
  return r;
}])) as unknown as Kernels;

const FLOAT: readonly DType[] = ['float32', 'float64', 'bfloat16', 'float16'];
const ALL: readonly DType[] = [...FLOAT, 'int32', 'int64'];
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
    const buf = data.slice();
    if (isHalf(dtype)) roundInPlace(buf, dtype);
    return { buf, shape: [...shape], dtype };
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
