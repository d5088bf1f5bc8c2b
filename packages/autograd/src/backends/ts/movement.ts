/** Data-movement kernels: transpose, broadcast, slice, pad, concat, one-hot. */
import type { Kernels, Raw } from '../../backend.js';
import { isFloat } from '../../dtype.js';
import { fmt, numel, stridesOf } from '../../shape.js';
import { arr, broadcastStrides, forEachBroadcast, out } from './util.js';

/**
 * Calls fn(row, offset) for each row (last-dim run) of `shape`, with the offset of that row under
 * `strides` (one per dim but the last); rank 0 and 1 have a single row.
 */
function forEachRow(shape: readonly number[], strides: number[], fn: (row: number, off: number) => void): void {
  const outer = shape.slice(0, -1);
  const s = strides.slice(0, -1);
  forEachBroadcast(outer, s, s, fn);
}

/** Copies x into a new tensor of outShape where source offsets follow `srcStrides`, plus `base`. */
function gather(x: Raw, outShape: readonly number[], srcStrides: number[], base = 0): Raw {
  const r = out(outShape, x.dtype);
  const o = arr(r), a = arr(x);
  forEachBroadcast(outShape, srcStrides, srcStrides, (i, ia) => { o[i] = a[ia + base]!; });
  return r;
}

function slice(x: Raw, begin: readonly number[], size: readonly number[], step: readonly number[]): Raw {
  const rank = x.shape.length;
  if (begin.length !== rank || size.length !== rank || step.length !== rank) {
    throw new Error(`Slice: begin [${begin.join(', ')}], size [${size.join(', ')}] and step [${step.join(', ')}] ` +
      `must each list every dim of input ${fmt(x.shape)}`);
  }
  for (let d = 0; d < rank; d++) {
    const b = begin[d]!, n = size[d]!, s = step[d]!;
    // An empty slice reads nothing, so only a non-empty one must stay inside the dim.
    const ok = Number.isInteger(s) && s >= 1 && n >= 0 && b >= 0 && (n === 0 || b + (n - 1) * s < x.shape[d]!);
    if (!ok) {
      throw new Error(`Slice: begin ${b}, size ${n}, step ${s} do not fit dim ${d} of input ${fmt(x.shape)}`);
    }
  }
  // A slice is a strided view: offsets step by step[d] * stride[d], starting at sum(begin[d] * stride[d]).
  const s = stridesOf(x.shape);
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d]! * s[d]!;
  const strides = s.map((sd, d) => sd * step[d]!);
  if (rank === 0 || step[rank - 1] !== 1) return gather(x, size, strides, base);
  // Unit step in the last dim: whole rows are contiguous in both tensors.
  const r = out(size, x.dtype);
  const o = arr(r), a = arr(x);
  const len = size[rank - 1]!;
  forEachRow(size, strides, (row, off) => { o.set(a.subarray(base + off, base + off + len), row * len); });
  return r;
}

function pad(x: Raw, pads: readonly (readonly [number, number])[], value: number): Raw {
  const rank = x.shape.length;
  if (pads.length !== rank || pads.some(([b, a]) => !(b >= 0 && a >= 0))) {
    throw new Error(`Pad: pads ${JSON.stringify(pads)} must give non-negative [before, after] for every dim of input ${fmt(x.shape)}`);
  }
  const outShape = x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
  const r = out(outShape, x.dtype);
  const o = arr(r), a = arr(x);
  if (value !== 0) o.fill(value);
  // Copy x into the interior row by row: the output offset of a row follows the output's strides.
  const os = stridesOf(outShape);
  let base = 0;
  for (let d = 0; d < rank; d++) base += pads[d]![0] * os[d]!;
  const len = rank === 0 ? 1 : x.shape[rank - 1]!;
  forEachRow(x.shape, os, (row, off) => { o.set(a.subarray(row * len, (row + 1) * len), base + off); });
  return r;
}

function concat(xs: readonly Raw[], axis: number): Raw {
  if (xs.length === 0) throw new Error('Concat: needs at least one tensor');
  const first = xs[0]!;
  const rank = first.shape.length;
  if (!(Number.isInteger(axis) && axis >= 0 && axis < rank)) {
    throw new Error(`Concat: axis ${axis} is out of range for tensors of rank ${rank}`);
  }
  let total = 0;
  for (const [k, x] of xs.entries()) {
    const fits = x.shape.length === rank && x.shape.every((d, i) => i === axis || d === first.shape[i]);
    if (!fits || x.dtype !== first.dtype) {
      throw new Error(`Concat: tensor ${k} of shape ${fmt(x.shape)} (${x.dtype}) does not match tensor 0 of shape ` +
        `${fmt(first.shape)} (${first.dtype}) outside axis ${axis}`);
    }
    total += x.shape[axis]!;
  }
  const outShape = first.shape.map((d, i) => (i === axis ? total : d));
  const r = out(outShape, first.dtype);
  const o = arr(r);
  // Each input contributes one contiguous block of shape[axis] * inner elements per outer index.
  const outer = numel(first.shape.slice(0, axis));
  const inner = numel(first.shape.slice(axis + 1));
  const outRow = total * inner;
  let at = 0;
  for (const x of xs) {
    const a = arr(x);
    const block = x.shape[axis]! * inner;
    for (let p = 0; p < outer; p++) o.set(a.subarray(p * block, (p + 1) * block), p * outRow + at);
    at += block;
  }
  return r;
}

function oneHot(indices: Raw, numClasses: number, dtype: Raw['dtype'], ignoreIndex?: number): Raw {
  if (indices.dtype !== 'int32' && indices.dtype !== 'int64') {
    throw new Error(`OneHot: indices must be int32 or int64, got ${indices.dtype} of shape ${fmt(indices.shape)}`);
  }
  if (!isFloat(dtype)) throw new Error(`OneHot: output dtype must be a float type, got ${dtype}`);
  if (!(Number.isInteger(numClasses) && numClasses >= 0)) throw new Error(`OneHot: numClasses must be a non-negative integer, got ${numClasses}`);
  const idx = arr(indices);
  const r = out([...indices.shape, numClasses], dtype);
  const o = arr(r);
  for (let i = 0; i < idx.length; i++) {
    const c = idx[i]!;
    if (c === ignoreIndex) continue;
    if (!(c >= 0 && c < numClasses)) {
      throw new Error(`OneHot: index ${c} at flat position ${i} of indices ${fmt(indices.shape)} is outside [0, ${numClasses})`);
    }
    o[i * numClasses + c] = 1;
  }
  return r;
}

export const movementKernels: Pick<Kernels, 'Transpose' | 'BroadcastTo' | 'Slice' | 'Pad' | 'Concat' | 'OneHot'> = {
  Transpose: (x, perm) => {
    const s = stridesOf(x.shape);
    return gather(x, perm.map((p) => x.shape[p]!), perm.map((p) => s[p]!));
  },
  BroadcastTo: (x, shape) => gather(x, shape, broadcastStrides(x.shape, shape)),
  Slice: slice,
  Pad: pad,
  Concat: concat,
  OneHot: oneHot,
};
