/** A native device as a Backend: its kernel table as it is, its memory functions, its dtypes. */
import type { Backend, DType, DTypeSupport } from '@nodegrad/autograd';
import type { NativeDevice } from './native.js';

const ALL: readonly DType[] = ['float32', 'float64', 'int32', 'int64'];
// int32 holds indices only: arithmetic and reductions refuse it (cast to int64 first).
const REAL: readonly DType[] = ['float32', 'float64', 'int64'];
const F32: readonly DType[] = ['float32'];

/** The dtypes the 'cpu' device computes each kernel family in. */
export const CPU_DTYPES: DTypeSupport = {
  elementwise: REAL, cast: ALL, reduce: REAL, movement: ALL, creation: ALL, random: ['float32', 'float64'],
  matmul: F32, conv: F32, pool: F32, norm: F32, softmax: F32, optim: ['float32', 'float64'],
};

/**
 * The dtypes the 'cuda:N' devices compute each kernel family in: as 'cpu', with cuBLAS matmul in
 * float64 too.
 */
export const CUDA_DTYPES: DTypeSupport = { ...CPU_DTYPES, matmul: ['float32', 'float64'] };

/** The Backend over one device of the addon: its table as the kernels, its memory functions, its dtypes. */
export function createBackend(device: NativeDevice, dtypes: DTypeSupport): Backend {
  return {
    name: device.name,
    fromArray: device.fromArray,
    readSync: device.readSync,
    // readSync waits for the work that writes x (on 'cpu' every kernel has finished when it returns).
    read: (x) => Promise.resolve(device.readSync(x)),
    sync: device.sync,
    copyInto: device.copyInto,
    free: device.free,
    dtypes,
    kernels: device.kernels,
  };
}
