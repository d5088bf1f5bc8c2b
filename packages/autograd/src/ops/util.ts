/** Helpers every op family uses: argument checks, scalar lifting, kernel access. */
import type { Backend, Kernels, Raw } from '../backend.js';
import { isFloat, isHalf, type DType } from '../dtype.js';
import { anyAutocast, autocastInputs, type CastPolicy } from '../autocast.js';
import { keep } from '../scope.js';
import { fmt, type Shape } from '../shape.js';
import { Tensor, type Storage } from '../tensor.js';

export type TensorLike = Tensor | number;

/** The kernel table of the tensor's backend. */
export function kernels(t: Tensor): Kernels {
  return t.backend.kernels;
}

/** Wraps a kernel result on the same backend as `like`. */
export function wrap(raw: Raw, like: Tensor): Tensor {
  return Tensor.fromRaw(raw, like.backend);
}

/**
 * Scalar operands as device tensors, made once by a Fill kernel and reused: `x.mul(0.9)` in every
 * step uploads nothing. At most MAX_SCALARS per backend; the oldest is forgotten first (not freed:
 * a recorded op may still hold it; the finalizer frees it once nothing does).
 */
// By backend, then dtype, then value: a number keys its own Map entry, so a lookup builds no string
// (a key string per scalar operand was a tenth of a small op's allocations, issue 17).
const scalars = new Map<Backend, Map<DType, Map<number | string, Tensor>>>();
const constants = new WeakSet<Storage>();
const MAX_SCALARS = 1024;

/** How many scalar operands are cached on a device: each holds one live 0-d buffer (memory accounting). */
export function cachedScalarCount(device: string): number {
  let n = 0;
  for (const [b, byType] of scalars) if (b.name === device) for (const m of byType.values()) n += m.size;
  return n;
}

/** Whether a storage is a shared scalar operand, which no in-place op may write. */
export function isSharedConstant(s: Storage): boolean {
  return constants.has(s);
}

/** A plain number becomes a 0-d tensor of `like`'s device and dtype (or `dtype`). */
export function lift(x: TensorLike, like: Tensor, dtype: DType = like.dtype): Tensor {
  if (x instanceof Tensor) return x;
  let byType = scalars.get(like.backend);
  if (!byType) scalars.set(like.backend, (byType = new Map()));
  let cache = byType.get(dtype);
  if (!cache) byType.set(dtype, (cache = new Map()));
  // A Map keys -0 as 0: it gets a key of its own (NaN keys itself).
  const key = Object.is(x, -0) ? '-0' : x;
  let t = cache.get(key);
  if (!t) {
    t = keep(Tensor.fromRaw(like.backend.kernels.Fill([], x, dtype), like.backend));
    constants.add(t.storage);
    if (cache.size >= MAX_SCALARS) cache.delete(cache.keys().next().value!);
    cache.set(key, t);
  }
  return t;
}

/** Throws unless `t` is a Tensor. */
/**
 * Refuses option names `what` does not know (PyTorch's TypeError for an unknown keyword): under
 * another spelling (torch's drop_last) an option would be ignored without a word.
 */
export function checkOptionNames(what: string, opts: object, known: readonly string[]): void {
  const unknown = Object.keys(opts ?? {}).filter((k) => !known.includes(k));
  if (unknown.length) throw new RangeError(`${what}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${known.join(', ')})`);
}

export function checkTensor(op: string, arg: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${op}: argument '${arg}' must be a Tensor, got ${typeof t}`);
}

/**
 * All tensors on one device and of one dtype: a float32/float64 mix is an error, as asked. Runs on
 * every op, so it walks the names without building arrays of entries (issue 17's profile).
 */
export function checkSame(op: string, named: Record<string, Tensor | null | undefined>): void {
  let n0 = '';
  let t0: Tensor | undefined;
  for (const n in named) {
    const t = named[n];
    if (!t) continue;
    if (!t0) {
      n0 = n;
      t0 = t;
    } else if (t.device !== t0.device) {
      throw new Error(`${op}: '${n0}' is on device ${t0.device} but '${n}' is on ${t.device}`);
    } else if (t.dtype !== t0.dtype) {
      // The dtype PyTorch would promote to: the floating one beside an integer one.
      const to = isFloat(t.dtype) && !isFloat(t0.dtype) ? t.dtype : t0.dtype;
      throw new Error(`${op}: '${n0}' has dtype ${t0.dtype} but '${n}' has dtype ${t.dtype}; convert one with .to('${to}')`);
    }
  }
}

/** checkSame for a binary op's pair ('input', 'other'): the object of names is built only to report a mismatch. */
function checkPair(op: string, a: Tensor, b: Tensor): void {
  if (a.device !== b.device || a.dtype !== b.dtype) checkSame(op, { input: a, other: b });
}

export function checkFloat(op: string, arg: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new Error(`${op}: '${arg}' must be a float tensor (float32, float64, bfloat16, float16), got ${t.dtype}`);
}

export function checkRank(op: string, arg: string, t: Tensor, ranks: number[]): void {
  if (!ranks.includes(t.ndim)) {
    throw new Error(`${op}: '${arg}' must have ${ranks.join(' or ')} dimensions, got shape ${fmt(t.shape)}`);
  }
}

/**
 * Whether one of a pair is a half tensor and the other a float32 0-d tensor beside it that keeps
 * its type (torch.result_type: a 0-d tensor beside one with dimensions, or a lifted number beside
 * any), on the same device, with no gradient wanted. The binary kernels take such a pair as it is
 * and compute with the scalar unrounded, as PyTorch computes with a CPU scalar; arith lifts a
 * number the half type cannot hold so.
 */
export function halfBesideScalar(a: Tensor, b: Tensor): boolean {
  const [h, s] = isHalf(a.dtype) ? [a, b] : [b, a];
  return isHalf(h.dtype) && s.dtype === 'float32' && s.ndim === 0 && (h.ndim > 0 || constants.has(s.storage)) &&
    !s.requiresGrad && s.device === h.device;
}

/**
 * Lifts a scalar operand and checks a pair for a binary op; under autocast the pair is cast by
 * `policy` first (mixed float types promoted, as torch.result_type), elsewhere a mix is an error.
 * `scalarOperand` (add, sub, mul, div) takes a half tensor beside a float32 scalar as it is
 * (halfBesideScalar), as PyTorch computes those with a CPU scalar unrounded.
 */
export function binaryArgs(op: string, a: TensorLike, b: TensorLike, policy: CastPolicy = 'promote', scalarOperand = false): [Tensor, Tensor] {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) throw new Error(`${op}: at least one argument must be a Tensor`);
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = b instanceof Tensor ? b : lift(b, ta);
  if (scalarOperand && ta.dtype !== tb.dtype && halfBesideScalar(ta, tb)) return [ta, tb];
  if (!anyAutocast()) {
    checkPair(op, ta, tb);
    return [ta, tb];
  }
  const [ca, cb] = autocastInputs(policy, ta, tb);
  checkPair(op, ca, cb);
  return [ca, cb];
}

/** An op of one tensor whose input autocast casts by `policy` before the op records. */
export function autocasting<A extends unknown[]>(policy: CastPolicy, op: (x: Tensor, ...rest: A) => Tensor) {
  return (x: Tensor, ...rest: A): Tensor => op(autocastInputs(policy, x)[0], ...rest);
}


export type { Shape };
