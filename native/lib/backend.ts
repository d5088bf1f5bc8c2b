/** A native device as a Backend: its kernel table as it is, its memory functions, its dtypes. */
import type { Backend, DType, DTypeSupport, Kernels } from '@nodegrad/autograd';
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

/**
 * The dtypes the 'cuda:N' devices compute each kernel family in: the half types everywhere (cuBLAS
 * and cuDNN with float32 accumulation on tensor cores), matmul in float64 too.
 */
export const CUDA_DTYPES: DTypeSupport = {
  elementwise: [...REAL, ...HALF], cast: [...ALL, ...HALF], reduce: [...REAL, ...HALF], movement: [...ALL, ...HALF],
  creation: [...ALL, ...HALF], random: [...F32_F64, ...HALF], matmul: [...F32_F64, ...HALF], conv: [...F32, ...HALF],
  pool: [...F32, ...HALF], norm: [...F32, ...HALF], softmax: [...F32, ...HALF], optim: [...F32_F64, ...HALF],
};

/**
 * The result scratch of this thread, one for every device of every addon: calls are synchronous,
 * each reads it right after the binding wrote it, and the bindings keep one per thread.
 */
const scratch = new Float64Array(3 + 32);

/**
 * A native tensor's handle as this backend makes it for a kernel's result: the code of its slot in
 * the addon's handle table (native/src/bindings/handle_table.h). A plain JS object: a handle the
 * addon made as an External cost V8 a weak global handle, which every scavenge visited, and a
 * tidy frees nearly every handle long before the collector would (issue 17). Passed to a kernel,
 * it crosses as its code.
 */
class Handle {
  constructor(readonly id: number) {}
}

/** DType(i) of core/dtype.h, by index. */
const DTYPE_NAMES: readonly DType[] = ['float32', 'float64', 'int32', 'int64', 'bfloat16', 'float16'];
const DTYPE_INDEX: Readonly<Record<string, number>> = Object.fromEntries(DTYPE_NAMES.map((d, i) => [d, i]));

/**
 * The argument scratch of this thread (handles.h, kArgSlots x kArgSlot): a tensor argument i < 8 of
 * rank <= 8 crosses as its handle's code, with [dtype index, rank, dims...] in slot i. Read through
 * N-API, its Raw object's three properties and shape array were half a small kernel's call.
 */
const ARG_SLOTS = 8;
const ARG_SLOT = 10;
const args = new Float64Array(ARG_SLOTS * ARG_SLOT);

/** The shape of the call's first tensor argument, which a result of the same shape shares. */
let firstShape: readonly number[] | null = null;

/**
 * Argument i as it crosses: a Raw that has a slot as its handle's code, with the slot written;
 * anything else as it is (a list, a rank above 8, a bad dtype: the binding reads the object and
 * names what is wrong). Arguments are passed in order, after firstShape was reset.
 */
function toHandle(v: unknown, i: number): unknown {
  if (typeof v !== 'object' || v === null || i >= ARG_SLOTS) return v;
  const t = v as { buf?: unknown; shape: readonly number[]; dtype: string };
  if (t.buf === undefined) return v;
  const shape = t.shape;
  firstShape ??= shape;
  const rank = shape.length;
  const dtype = DTYPE_INDEX[t.dtype];
  if (rank > ARG_SLOT - 2 || dtype === undefined) return v;
  const o = i * ARG_SLOT;
  args[o] = dtype;
  args[o + 1] = rank;
  for (let k = 0; k < rank; k++) args[o + 2 + k] = shape[k]!;
  return t.buf instanceof Handle ? t.buf.id : t.buf;
}

/** The result's shape from the scratch: the first argument's frozen array when it is the same. */
function resultShape(rank: number): readonly number[] {
  const like = firstShape;
  if (like !== null && like.length === rank && Object.isFrozen(like)) {
    let same = true;
    for (let i = 0; i < rank; i++) if (like[i] !== scratch[3 + i]) { same = false; break; }
    if (same) return like;
  }
  const shape = new Array<number>(rank);
  for (let i = 0; i < rank; i++) shape[i] = scratch[3 + i]!;
  // Frozen: a tensor made from it shares the array instead of copying it.
  return Object.freeze(shape);
}

/**
 * The device's kernels and upload returning Raw objects built here from the dtype, rank, handle
 * code and shape the binding writes to a scratch array: making the object through N-API (an
 * object, an array and three named property sets) cost more than many small kernels themselves
 * (issue 17). The binding leaves scratch[0] at -1 for results it returns whole.
 */
function handleResults(device: NativeDevice): { kernels: Kernels; fromArray: Backend['fromArray'] } {
  device.setResultScratch(scratch, args);
  const raw = (r: unknown): unknown => {
    const dtype = scratch[0]!;
    if (dtype < 0) return r;
    return { buf: new Handle(scratch[2]!), shape: resultShape(scratch[1]!), dtype: DTYPE_NAMES[dtype]! };
  };
  // By arity rather than a rest parameter: no array per call for the common counts (issue 17).
  const call = (k: (...a: unknown[]) => unknown) => function (a0?: unknown, a1?: unknown, a2?: unknown, a3?: unknown, a4?: unknown) {
    firstShape = null;
    scratch[0] = -1;
    switch (arguments.length) {
      case 0: return raw(k());
      case 1: return raw(k(toHandle(a0, 0)));
      case 2: return raw(k(toHandle(a0, 0), toHandle(a1, 1)));
      case 3: return raw(k(toHandle(a0, 0), toHandle(a1, 1), toHandle(a2, 2)));
      case 4: return raw(k(toHandle(a0, 0), toHandle(a1, 1), toHandle(a2, 2), toHandle(a3, 3)));
      case 5: return raw(k(toHandle(a0, 0), toHandle(a1, 1), toHandle(a2, 2), toHandle(a3, 3), toHandle(a4, 4)));
      default: {
        // eslint-disable-next-line prefer-rest-params
        const a = Array.prototype.map.call(arguments, toHandle);
        return raw(k(...a));
      }
    }
  };
  const kernels = Object.fromEntries(Object.entries(device.handleKernels).map(([name, k]) => [name, call(k)]));
  return { kernels: kernels as unknown as Kernels, fromArray: call(device.fromArrayHandle as (...args: unknown[]) => unknown) as Backend['fromArray'] };
}

/** The Backend over one device of the addon: its table as the kernels, its memory functions, its dtypes. */
export function createBackend(device: NativeDevice, dtypes: DTypeSupport): Backend {
  const fast = handleResults(device);
  return {
    name: device.name,
    fromArray: fast.fromArray,
    readSync: device.readSync,
    // readSync waits for the work that writes x (on 'cpu' every kernel has finished when it returns).
    read: (x) => Promise.resolve(device.readSync(x)),
    sync: device.sync,
    copyInto: device.copyInto,
    free: (buf) => device.free(buf instanceof Handle ? buf.id : buf),
    collectable: device.collectable,
    dtypes,
    kernels: fast.kernels,
  };
}
