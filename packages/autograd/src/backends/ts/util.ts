/** Shared pieces of the TS backend: typed-array access, allocation, strided iteration. */
import type { Raw } from '../../backend.js';
import { allocArray, type DType, type TypedArray } from '../../dtype.js';
import { numel, stridesOf, type Shape } from '../../shape.js';

export function arr(x: Raw): TypedArray {
  return x.buf as TypedArray;
}

/** A Float32Array or Float64Array view for float kernels (int64 is stored as Float64Array). */
export function farr(x: Raw): Float32Array | Float64Array {
  return x.buf as Float32Array | Float64Array;
}

export function out(shape: Shape, dtype: DType, data?: TypedArray): Raw {
  return { buf: data ?? allocArray(dtype, numel(shape)), shape: [...shape], dtype };
}

/** Strides of `shape` as seen from `outShape` under broadcasting: 0 where a dim is broadcast. */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const s = stridesOf(shape);
  const lead = outShape.length - shape.length;
  return outShape.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : s[i - lead]!));
}

/**
 * Calls fn(outIndex, offsetA, offsetB) for every output element; offsets follow broadcast strides.
 * The innermost dim is a plain loop so the common cases stay fast.
 */
export function forEachBroadcast(outShape: Shape, sa: number[], sb: number[],
  fn: (o: number, ia: number, ib: number) => void): void {
  const n = numel(outShape);
  if (n === 0) return;
  const rank = outShape.length;
  if (rank === 0) { fn(0, 0, 0); return; }
  const inner = outShape[rank - 1]!;
  const ia = sa[rank - 1]!, ib = sb[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let offA = 0, offB = 0;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0, a = offA, b = offB; j < inner; j++, a += ia, b += ib) fn(o + j, a, b);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      offA += sa[d]!; offB += sb[d]!;
      if (idx[d]! < outShape[d]!) break;
      offA -= sa[d]! * outShape[d]!; offB -= sb[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}
