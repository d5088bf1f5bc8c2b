/** A native device as a Backend: its kernel table as it is, its memory functions, its dtypes. */
import type { Backend, DType, DTypeSupport } from '@nodegrad/autograd';
import type { NativeDevice } from './native.js';

const ALL: readonly DType[] = ['float32', 'float64', 'int32', 'int64'];
// int32 holds indices only: arithmetic and reductions refuse it (cast to int64 first).
const REAL: readonly DType[] = ['float32', 'float64', 'int64'];
const F32: readonly DType[] = ['float32'];
const F32_F64: readonly DType[] = ['float32', 'float64'];
const HALF: readonly DType[] = ['bfloat16', 'float16'];

/**
 * The dtypes the 'cpu' device computes each kernel family in. The half types everywhere but
 * float16 matmul and conv: those run on oneDNN's primitives, and oneDNN 2.6 has bfloat16 ones
 * (AVX512-BF16, AMX) but no float16 ones for CPUs (the kernels say so when called).
 */
export const CPU_DTYPES: DTypeSupport = {
  elementwise: [...REAL, ...HALF], cast: [...ALL, ...HALF], reduce: [...REAL, ...HALF], movement: [...ALL, ...HALF],
  creation: [...ALL, ...HALF], random: [...F32_F64, ...HALF], matmul: [...F32, 'bfloat16'], conv: [...F32, 'bfloat16'],
  pool: [...F32, ...HALF], norm: [...F32, ...HALF], softmax: [...F32, ...HALF], optim: [...F32_F64, ...HALF],
};

/** The dtypes the 'cuda:N' devices compute each kernel family in: no half types yet, cuBLAS matmul in float64 too. */
export const CUDA_DTYPES: DTypeSupport = {
  elementwise: REAL, cast: ALL, reduce: REAL, movement: ALL, creation: ALL, random: F32_F64,
  matmul: F32_F64, conv: F32, pool: F32, norm: F32, softmax: F32, optim: F32_F64,
};

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
