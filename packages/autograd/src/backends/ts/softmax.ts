/** Softmax and log-softmax along one axis, numerically stable: the row maximum is subtracted first. */
import type { Kernels, Raw } from '../../backend.js';
import { isFloat } from '../../dtype.js';
import { fmt, numel } from '../../shape.js';
import { farr, out } from './util.js';

/**
 * The tensor is viewed as [outer, len, inner]. Each of the `inner` interleaved rows is reduced
 * together, so every pass walks memory contiguously; max and sum are kept in float64 scratch.
 */
function softmaxAlong(op: string, x: Raw, axis: number, log: boolean): Raw {
  const rank = x.shape.length;
  if (!(Number.isInteger(axis) && axis >= 0 && axis < Math.max(rank, 1))) {
    throw new Error(`${op}: axis ${axis} is out of range for input ${fmt(x.shape)}`);
  }
  if (!isFloat(x.dtype)) throw new Error(`${op}: input must be a float tensor, got ${x.dtype}`);
  const outer = numel(x.shape.slice(0, axis));
  const len = rank === 0 ? 1 : x.shape[axis]!;
  const inner = numel(x.shape.slice(axis + 1));
  const a = farr(x);
  const r = out(x.shape, x.dtype);
  const o = farr(r);
  const mx = new Float64Array(inner), sum = new Float64Array(inner);
  for (let p = 0; p < outer; p++) {
    const base = p * len * inner;
    mx.fill(-Infinity);
    sum.fill(0);
    for (let k = 0; k < len; k++) {
      const row = base + k * inner;
      // NaN must propagate, so it wins over any number.
      for (let q = 0; q < inner; q++) { const v = a[row + q]!; if (v > mx[q]! || v !== v) mx[q] = v; }
    }
    // Softmax keeps each exp in the output and rescales it afterwards, so exp runs once per element.
    for (let k = 0; k < len; k++) {
      const row = base + k * inner;
      if (log) for (let q = 0; q < inner; q++) sum[q]! += Math.exp(a[row + q]! - mx[q]!);
      else for (let q = 0; q < inner; q++) { const e = Math.exp(a[row + q]! - mx[q]!); o[row + q] = e; sum[q]! += e; }
    }
    if (log) {
      // log softmax = x - max - log(sum exp(x - max)); fold the constant once per row.
      for (let q = 0; q < inner; q++) sum[q] = mx[q]! + Math.log(sum[q]!);
      for (let k = 0; k < len; k++) {
        const row = base + k * inner;
        for (let q = 0; q < inner; q++) o[row + q] = a[row + q]! - sum[q]!;
      }
    } else {
      for (let q = 0; q < inner; q++) sum[q] = 1 / sum[q]!;
      for (let k = 0; k < len; k++) {
        const row = base + k * inner;
        for (let q = 0; q < inner; q++) o[row + q]! *= sum[q]!;
      }
    }
  }
  return r;
}

export const softmaxKernels: Pick<Kernels, 'Softmax' | 'LogSoftmax'> = {
  Softmax: (x, axis) => softmaxAlong('Softmax', x, axis, false),
  LogSoftmax: (x, axis) => softmaxAlong('LogSoftmax', x, axis, true),
};
