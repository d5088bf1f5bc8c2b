/** The 'cpu' backend: the Backend interface over the addon's float32 kernels. */
import type { Backend, Kernels, Raw } from '@nodegrad/autograd';
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
    toArray: addon.toArray,
    copyInto: addon.copyInto,
    free: addon.free,
    kernels,
  };
}
