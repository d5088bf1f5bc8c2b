/** Helpers every op family uses: argument checks, scalar lifting, kernel access. */
import type { Kernels, Raw } from '../backend.js';
import { isFloat, type DType } from '../dtype.js';
import { fmt, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';

export type TensorLike = Tensor | number;

/** The kernel table of the tensor's backend. */
export function kernels(t: Tensor): Kernels {
  return t.backend.kernels;
}

/** Wraps a kernel result on the same backend as `like`. */
export function wrap(raw: Raw, like: Tensor): Tensor {
  return Tensor.fromRaw(raw, like.backend);
}

/** A plain number becomes a 0-d tensor of `like`'s dtype and device. */
export function lift(x: TensorLike, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const arr = like.dtype === 'float32' ? new Float32Array([x]) : new Float64Array([x]);
  return Tensor.fromRaw(like.backend.fromArray(arr, [], like.dtype), like.backend);
}

/** Throws unless `t` is a Tensor. */
export function checkTensor(op: string, arg: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${op}: argument '${arg}' must be a Tensor, got ${typeof t}`);
}

/** All tensors on one device and of one dtype: a float32/float64 mix is an error, as asked. */
export function checkSame(op: string, named: Record<string, Tensor | null | undefined>): void {
  const entries = Object.entries(named).filter((e): e is [string, Tensor] => !!e[1]);
  const [n0, t0] = entries[0]!;
  for (const [n, t] of entries.slice(1)) {
    if (t.device !== t0.device) {
      throw new Error(`${op}: '${n0}' is on device ${t0.device} but '${n}' is on ${t.device}`);
    }
    if (t.dtype !== t0.dtype) {
      throw new Error(`${op}: '${n0}' has dtype ${t0.dtype} but '${n}' has dtype ${t.dtype}; ` +
        `convert one with .to('${t0.dtype}')`);
    }
  }
}

export function checkFloat(op: string, arg: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new Error(`${op}: '${arg}' must be float32 or float64, got ${t.dtype}`);
}

export function checkRank(op: string, arg: string, t: Tensor, ranks: number[]): void {
  if (!ranks.includes(t.ndim)) {
    throw new Error(`${op}: '${arg}' must have ${ranks.join(' or ')} dimensions, got shape ${fmt(t.shape)}`);
  }
}

/** Lifts a scalar operand and checks a pair for a binary op. */
export function binaryArgs(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) throw new Error(`${op}: at least one argument must be a Tensor`);
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = b instanceof Tensor ? b : lift(b, ta);
  checkSame(op, { input: ta, other: tb });
  return [ta, tb];
}

export function floatDType(dtype: DType): dtype is 'float32' | 'float64' {
  return isFloat(dtype);
}

export type { Shape };
