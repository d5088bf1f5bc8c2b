/**
 * Batch norm over dim 1 of an [N, C, *] tensor, in the parts of PyTorch's CUDA path (see the
 * Kernels entries in backend.ts). Each channel is N contiguous runs of prod(*) elements;
 * per-channel sums are accumulated in float64 whatever the tensor's dtype. For a half x the
 * per-channel vectors it makes are float32 (PyTorch's accumulate type), and those it takes may be
 * float32 or x's dtype.
 */
import type { BatchNormUpdateParams, Kernels, Raw } from '../../backend.js';
import { isFloat, opmathType, type DType } from '../../dtype.js';
import { fmt, numel, type Shape } from '../../shape.js';
import { farr, out } from './util.js';

interface Layout { N: number; C: number; S: number }

function layoutOf(op: string, x: Raw): Layout {
  if (x.shape.length < 2) throw new Error(`${op}: expected input of shape [N, C, *], got ${fmt(x.shape)}`);
  if (!isFloat(x.dtype)) throw new Error(`${op}: input must be a float tensor, got ${x.dtype}`);
  return { N: x.shape[0]!, C: x.shape[1]!, S: numel(x.shape.slice(2)) };
}

/** Per-channel values as float64 (`fill` where the optional tensor is absent), after checking shape and dtype. */
function perChannel(op: string, name: string, t: Raw | null, x: Raw, C: number, fill: number): Float64Array {
  const v = new Float64Array(C);
  if (!t) return v.fill(fill);
  if (t.shape.length !== 1 || t.shape[0] !== C || !(t.dtype === x.dtype || t.dtype === statsDType(x.dtype))) {
    throw new Error(`${op}: ${name} of shape ${fmt(t.shape)} (${t.dtype}) must be [${C}] (${statsDType(x.dtype)}) for input ${fmt(x.shape)}`);
  }
  v.set(farr(t));
  return v;
}

/** The dtype of the per-channel statistics for input of dtype x: float32 for the half types. */
const statsDType = opmathType;

function channelVector(values: Float64Array, x: DType): Raw {
  const r = out([values.length] as Shape, statsDType(x));
  farr(r).set(values);
  return r;
}

function checkLike(op: string, name: string, t: Raw, x: Raw): void {
  if (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i]) || t.dtype !== x.dtype) {
    throw new Error(`${op}: ${name} ${fmt(t.shape)} (${t.dtype}) must match input ${fmt(x.shape)} (${x.dtype})`);
  }
}

function checkCount(op: string, count: number, x: Raw): void {
  if (!(Number.isInteger(count) && count >= 1)) {
    throw new Error(`${op}: count must be a positive integer (elements per channel over all ranks), got ${count} for input ${fmt(x.shape)}`);
  }
}

function batchNormStats(x: Raw, eps: number): { mean: Raw; invstd: Raw } {
  const { N, C, S } = layoutOf('BatchNormStats', x);
  const a = farr(x);
  const mean = new Float64Array(C), invstd = new Float64Array(C);
  // Two passes (mean, then squared deviations) for a variance free of cancellation; biased, as PyTorch normalizes.
  const M = N * S;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) {
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) s += a[o + i]!;
    }
    const m = s / M;
    let q = 0;
    for (let n = 0; n < N; n++) {
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) { const d = a[o + i]! - m; q += d * d; }
    }
    mean[c] = m;
    invstd[c] = 1 / Math.sqrt(q / M + eps);
  }
  return { mean: channelVector(mean, x.dtype), invstd: channelVector(invstd, x.dtype) };
}

/** Per channel, y = x * scale + shift with scale = invstd * w, shift = b - mean * scale (as PyTorch's CPU kernel). */
function affineOf(op: string, x: Raw, C: number, weight: Raw | null, bias: Raw | null, mean: Raw, invstd: Raw):
  { scale: Float64Array; shift: Float64Array } {
  const w = perChannel(op, 'weight', weight, x, C, 1), b = perChannel(op, 'bias', bias, x, C, 0);
  const mu = perChannel(op, 'mean', mean, x, C, 0), is = perChannel(op, 'invstd', invstd, x, C, 1);
  const scale = is.map((v, c) => v * w[c]!);
  return { scale, shift: b.map((v, c) => v - mu[c]! * scale[c]!) };
}

function batchNormElemt(x: Raw, weight: Raw | null, bias: Raw | null, mean: Raw, invstd: Raw,
  residual: Raw | null = null, relu = false): Raw {
  const op = 'BatchNormElemt';
  const { N, C, S } = layoutOf(op, x);
  const { scale, shift } = affineOf(op, x, C, weight, bias, mean, invstd);
  if (residual) checkLike(op, 'residual', residual, x);
  const a = farr(x), r = residual ? farr(residual) : null;
  // Then + residual and relu (v < 0 ? 0 : v, NaN passing, as the Relu kernel), rounded once on store.
  const y = out(x.shape, x.dtype);
  const o = farr(y);
  for (let c = 0; c < C; c++) {
    const k = scale[c]!, t = shift[c]!;
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * S;
      for (let i = 0; i < S; i++) {
        let v = a[off + i]! * k + t;
        if (r) v += r[off + i]!;
        o[off + i] = relu && v < 0 ? 0 : v;
      }
    }
  }
  return y;
}

/**
 * dy of relu(bn(x)) as the backward parts read it: 0 where the forward's x * scale + shift was
 * <= 0 (relu's backward from its output), recomputed from x; dy itself without relu.
 */
function maskedGrad(op: string, dy: Raw, x: Raw, C: number, S: number, mean: Raw, invstd: Raw, relu: boolean,
  weight: Raw | null, bias: Raw | null): ArrayLike<number> {
  const g = farr(dy);
  if (!relu) return g;
  const { scale, shift } = affineOf(op, x, C, weight, bias, mean, invstd);
  const a = farr(x);
  return Float64Array.from(g, (gi, i) => {
    const c = Math.floor(i / S) % C;
    return a[i]! * scale[c]! + shift[c]! <= 0 ? 0 : gi;
  });
}

function batchNormInvstd(v: Raw, eps: number): Raw {
  if (v.shape.length !== 1 || !isFloat(v.dtype)) {
    throw new Error(`BatchNormInvstd: var must be a float vector [C], got ${fmt(v.shape)} (${v.dtype})`);
  }
  return channelVector(Float64Array.from(farr(v), (s) => 1 / Math.sqrt(s + eps)), v.dtype);
}

function batchNormBackwardReduce(dy: Raw, x: Raw, mean: Raw, invstd: Raw, relu = false, weight: Raw | null = null,
  bias: Raw | null = null): { sumDy: Raw; sumDyXmu: Raw; dweight: Raw; dbias: Raw } {
  const op = 'BatchNormBackwardReduce';
  const { N, C, S } = layoutOf(op, x);
  checkLike(op, 'dy', dy, x);
  const mu = perChannel(op, 'mean', mean, x, C, 0), is = perChannel(op, 'invstd', invstd, x, C, 1);
  const g = maskedGrad(op, dy, x, C, S, mean, invstd, relu, weight, bias), a = farr(x);
  const sDy = new Float64Array(C), sDyXmu = new Float64Array(C), dw = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const m = mu[c]!;
    let s = 0, t = 0;
    for (let n = 0; n < N; n++) {
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) { const gi = g[o + i]!; s += gi; t += gi * (a[o + i]! - m); }
    }
    sDy[c] = s;
    sDyXmu[c] = t;
    dw[c] = t * is[c]!;
  }
  const v = (d: Float64Array) => channelVector(d, x.dtype);
  return { sumDy: v(sDy), sumDyXmu: v(sDyXmu), dweight: v(dw), dbias: v(sDy) };
}

function batchNormBackwardElemt(dy: Raw, x: Raw, mean: Raw, invstd: Raw, weight: Raw | null, sumDy: Raw,
  sumDyXmu: Raw, count: number, relu = false, bias: Raw | null = null): Raw {
  const op = 'BatchNormBackwardElemt';
  const { N, C, S } = layoutOf(op, x);
  checkLike(op, 'dy', dy, x);
  checkCount(op, count, x);
  const mu = perChannel(op, 'mean', mean, x, C, 0), is = perChannel(op, 'invstd', invstd, x, C, 1);
  const w = perChannel(op, 'weight', weight, x, C, 1);
  const sDy = perChannel(op, 'sumDy', sumDy, x, C, 0), sDyXmu = perChannel(op, 'sumDyXmu', sumDyXmu, x, C, 0);
  const g = maskedGrad(op, dy, x, C, S, mean, invstd, relu, weight, bias), a = farr(x);
  const dx = out(x.shape, x.dtype);
  const d = farr(dx);
  for (let c = 0; c < C; c++) {
    // dx = (dy - sumDy / count - (x - mean) * invstd^2 * sumDyXmu / count) * invstd * w.
    const m = mu[c]!, gm = sDy[c]! / count, k = (sDyXmu[c]! * is[c]! * is[c]!) / count, f = is[c]! * w[c]!;
    for (let n = 0; n < N; n++) {
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) d[o + i] = (g[o + i]! - gm - (a[o + i]! - m) * k) * f;
    }
  }
  return dx;
}

function batchNormUpdateRunning(runMean: Raw, runVar: Raw, counter: Raw | null, mean: Raw, invstd: Raw,
  p: BatchNormUpdateParams): void {
  const op = 'BatchNormUpdateRunning';
  const C = runMean.shape[0] ?? 0;
  for (const [name, t] of [['runMean', runMean], ['runVar', runVar], ['mean', mean], ['invstd', invstd]] as const) {
    const dtypeOk = t.dtype === runMean.dtype || (t === mean || t === invstd) && t.dtype === statsDType(runMean.dtype);
    if (t.shape.length !== 1 || t.shape[0] !== C || !dtypeOk || !isFloat(t.dtype)) {
      throw new Error(`${op}: ${name} of shape ${fmt(t.shape)} (${t.dtype}) must be a float vector like runMean ${fmt(runMean.shape)} (${runMean.dtype})`);
    }
  }
  if (!(Number.isInteger(p.count) && p.count > 1)) {
    throw new Error(`${op}: count must be an integer > 1 (the unbiased variance divides by count - 1), got ${p.count}`);
  }
  if (counter && (counter.dtype !== 'int64' || numel(counter.shape) !== 1)) {
    throw new Error(`${op}: counter must be a one-element int64 tensor, got ${fmt(counter.shape)} (${counter.dtype})`);
  }
  const rm = farr(runMean), rv = farr(runVar), mu = farr(mean), is = farr(invstd), f = p.factor;
  // The batch variance comes back from invstd = 1/sqrt(var + eps); the running one is unbiased.
  const unbias = p.count / (p.count - 1);
  for (let c = 0; c < C; c++) {
    rm[c] = (1 - f) * rm[c]! + f * mu[c]!;
    rv[c] = (1 - f) * rv[c]! + f * (1 / (is[c]! * is[c]!) - p.eps) * unbias;
  }
  if (counter) farr(counter)[0]! += 1;
}

export const normKernels: Pick<Kernels, 'BatchNormStats' | 'BatchNormElemt' | 'BatchNormInvstd' |
  'BatchNormBackwardReduce' | 'BatchNormBackwardElemt' | 'BatchNormUpdateRunning'> = {
  BatchNormStats: batchNormStats,
  BatchNormElemt: batchNormElemt,
  BatchNormInvstd: batchNormInvstd,
  BatchNormBackwardReduce: batchNormBackwardReduce,
  BatchNormBackwardElemt: batchNormBackwardElemt,
  BatchNormUpdateRunning: batchNormUpdateRunning,
};
