/** The 'cpu' backend: the Backend interface over the addon's kernels. */
import type { Backend, DType, DTypeSupport, Kernels, Raw } from '@nodegrad/autograd';
import { convKernels } from './kernels/conv.js';
import { matmulKernels } from './kernels/matmul.js';
import { movementKernels } from './kernels/movement.js';
import { normKernels } from './kernels/norm.js';
import { optimKernels } from './kernels/optim.js';
import { poolKernels } from './kernels/pool.js';
import { reduceKernels } from './kernels/reduce.js';
import { softmaxKernels } from './kernels/softmax.js';
import type { NativeAddon } from './native.js';

type UnaryName = 'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Rsqrt' | 'Abs' | 'Sign' | 'Relu' | 'Sigmoid' | 'Tanh';
type BinaryName = 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Maximum' | 'Minimum' | 'Equal' | 'NotEqual' |
  'Less' | 'LessEqual' | 'Greater' | 'GreaterEqual';
const UNARY: UnaryName[] = ['Neg', 'Exp', 'Log', 'Sqrt', 'Rsqrt', 'Abs', 'Sign', 'Relu', 'Sigmoid', 'Tanh'];
const BINARY: BinaryName[] = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Maximum', 'Minimum', 'Equal', 'NotEqual',
  'Less', 'LessEqual', 'Greater', 'GreaterEqual'];

const ALL: readonly DType[] = ['float32', 'float64', 'int32', 'int64'];
// int32 holds indices only: arithmetic and reductions refuse it (cast to int64 first).
const REAL: readonly DType[] = ['float32', 'float64', 'int64'];
const F32: readonly DType[] = ['float32'];
const dtypes: DTypeSupport = {
  elementwise: REAL, cast: ALL, reduce: REAL, movement: ALL, creation: ALL, random: ['float32', 'float64'],
  matmul: F32, conv: F32, pool: F32, norm: F32, softmax: F32, optim: ['float32', 'float64'],
};

export function createCpuBackend(addon: NativeAddon): Backend {
  const elementwise = {
    ...Object.fromEntries(UNARY.map((k) => [k, (x: Raw) => addon.unary(k, x)])),
    ...Object.fromEntries(BINARY.map((k) => [k, (a: Raw, b: Raw) => addon.binary(k, a, b)])),
    Where: addon.where,
    Clamp: addon.clamp,
    Cast: addon.cast,
  } as Pick<Kernels, UnaryName | BinaryName | 'Where' | 'Clamp' | 'Cast'>;
  const kernels: Kernels = {
    ...elementwise,
    Copy: addon.copy,
    Fill: addon.fill,
    RandomUniform: (shape, dtype, seed, offset) => addon.random('uniform', shape, dtype, seed, offset, 0, 0),
    RandomNormal: (shape, dtype, seed, offset) => addon.random('normal', shape, dtype, seed, offset, 0, 0),
    Bernoulli: (shape, p, value, dtype, seed, offset) => addon.random('bernoulli', shape, dtype, seed, offset, p, value),
    ...reduceKernels(addon),
    ...movementKernels(addon),
    ...softmaxKernels(addon),
    ...matmulKernels(addon),
    ...convKernels(addon),
    ...poolKernels(addon),
    ...normKernels(addon),
    ...optimKernels(addon),
  };
  return {
    name: 'cpu',
    fromArray: addon.fromArray,
    // Every kernel has finished when it returns: reads need not wait, and sync has nothing to do.
    readSync: addon.toArray,
    read: (x) => Promise.resolve(addon.toArray(x)),
    sync: () => {},
    copyInto: addon.copyInto,
    free: addon.free,
    dtypes,
    kernels,
  };
}
