/** Reduction kernels. The tensor is viewed as [outer, reduced..., inner] runs via index mapping. */
import type { Kernels, Raw } from '../../backend.js';
import { numel, stridesOf } from '../../shape.js';
import { arr, out } from './util.js';

/**
 * Visits every element with the flat index of the output element it reduces into
 * (reduced dims kept with size 1).
 */
function reduceIndex(x: Raw, axes: readonly number[]): { outShape: number[]; map: Int32Array } {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const os = stridesOf(outShape);
  const n = numel(x.shape);
  const map = new Int32Array(n);
  const rank = x.shape.length;
  const idx = new Array<number>(rank).fill(0);
  let o = 0;
  for (let i = 0; i < n; i++) {
    map[i] = o;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      if (!axes.includes(d)) o += os[d]!;
      if (idx[d]! < x.shape[d]!) break;
      if (!axes.includes(d)) o -= os[d]! * x.shape[d]!;
      idx[d] = 0;
    }
  }
  return { outShape, map };
}

function reduce(init: number, f: (acc: number, v: number) => number) {
  return (x: Raw, axes: readonly number[]): Raw => {
    const { outShape, map } = reduceIndex(x, axes);
    const r = out(outShape, x.dtype);
    const o = arr(r);
    o.fill(init);
    const a = arr(x);
    for (let i = 0; i < a.length; i++) o[map[i]!] = f(o[map[i]!]!, a[i]!);
    return r;
  };
}

function argReduce(better: (v: number, best: number) => boolean) {
  return (x: Raw, axis: number): Raw => {
    const outer = numel(x.shape.slice(0, axis));
    const len = x.shape[axis]!;
    const inner = numel(x.shape.slice(axis + 1));
    const r = out(x.shape.map((d, i) => (i === axis ? 1 : d)), 'int64');
    const o = arr(r);
    const a = arr(x);
    for (let p = 0; p < outer; p++) {
      for (let q = 0; q < inner; q++) {
        let best = a[p * len * inner + q]!, at = 0;
        for (let k = 1; k < len && best === best; k++) {
          const v = a[(p * len + k) * inner + q]!;
          if (better(v, best)) { best = v; at = k; }
        }
        o[p * inner + q] = at;
      }
    }
    return r;
  };
}

/** log(sum(exp(x - m))) + m over axes, m the max (0 where it is infinite, as torch.logsumexp). */
function logSumExp(x: Raw, axes: readonly number[]): Raw {
  const { outShape, map } = reduceIndex(x, axes);
  const a = arr(x);
  const m = new Float64Array(numel(outShape)).fill(-Infinity);
  for (let i = 0; i < a.length; i++) m[map[i]!] = pickMax(m[map[i]!]!, a[i]!);
  for (let o = 0; o < m.length; o++) if (Math.abs(m[o]!) === Infinity) m[o] = 0; // inf - inf would be NaN
  const s = new Float64Array(m.length);
  for (let i = 0; i < a.length; i++) s[map[i]!]! += Math.exp(a[i]! - m[map[i]!]!);
  const r = out(outShape, x.dtype);
  const o = arr(r);
  for (let k = 0; k < o.length; k++) o[k] = Math.log(s[k]!) + m[k]!;
  return r;
}

/** The vector norm of order ord (2, 1, +-inf or any p > 0) over axes, accumulated in float64. */
function norm(x: Raw, ord: number, axes: readonly number[]): Raw {
  const { outShape, map } = reduceIndex(x, axes);
  const a = arr(x);
  const extreme = Math.abs(ord) === Infinity;
  const acc = new Float64Array(numel(outShape)).fill(extreme && ord < 0 ? Infinity : 0);
  for (let i = 0; i < a.length; i++) {
    const o = map[i]!, r = acc[o]!, v = Math.abs(a[i]!);
    if (r !== r) continue; // NaN already won
    if (v !== v) acc[o] = v;
    else if (extreme) acc[o] = ord > 0 ? Math.max(r, v) : Math.min(r, v);
    else acc[o] = r + (ord === 2 ? v * v : ord === 1 ? v : v ** ord);
  }
  const r = out(outShape, x.dtype);
  const o = arr(r);
  for (let k = 0; k < o.length; k++) o[k] = extreme || ord === 1 ? acc[k]! : ord === 2 ? Math.sqrt(acc[k]!) : acc[k]! ** (1 / ord);
  return r;
}

/** Running sums along axis, from its end when reverse; in float64, each output stored as the dtype stores it. */
function cumsum(x: Raw, axis: number, reverse: boolean): Raw {
  const outer = numel(x.shape.slice(0, axis));
  const len = x.shape[axis]!;
  const inner = numel(x.shape.slice(axis + 1));
  const r = out(x.shape, x.dtype);
  const o = arr(r);
  const a = arr(x);
  for (let p = 0; p < outer; p++) {
    for (let q = 0; q < inner; q++) {
      let acc = 0;
      for (let j = 0; j < len; j++) {
        const i = (p * len + (reverse ? len - 1 - j : j)) * inner + q;
        acc += a[i]!;
        o[i] = acc;
      }
    }
  }
  return r;
}

// NaN wins a max or min, as in PyTorch.
const pickMax = (acc: number, v: number) => (v > acc || v !== v ? v : acc);
const pickMin = (acc: number, v: number) => (v < acc || v !== v ? v : acc);

export const reduceKernels: Pick<Kernels, 'Sum' | 'Max' | 'Min' | 'ArgMax' | 'ArgMin' | 'CumSum' | 'LogSumExp' | 'Norm'> = {
  CumSum: cumsum,
  LogSumExp: logSumExp,
  Norm: norm,
  Sum: reduce(0, (acc, v) => acc + v),
  Max: reduce(-Infinity, (acc, v) => (acc !== acc ? acc : pickMax(acc, v))),
  Min: reduce(Infinity, (acc, v) => (acc !== acc ? acc : pickMin(acc, v))),
  ArgMax: argReduce((v, best) => v > best || v !== v),
  ArgMin: argReduce((v, best) => v < best || v !== v),
};
