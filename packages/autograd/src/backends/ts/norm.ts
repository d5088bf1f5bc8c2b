/**
 * Batch norm over dim 1 of an [N, C, *] tensor. Each channel is N contiguous runs of
 * prod(*) elements; per-channel sums are accumulated in float64 whatever the tensor's dtype.
 */
import type { BatchNormParams, Kernels, Raw } from '../../backend.js';
import { fmt, numel, type Shape } from '../../shape.js';
import { farr, out } from './util.js';

interface Layout { N: number; C: number; S: number }

function layoutOf(op: string, x: Raw): Layout {
  if (x.shape.length < 2) throw new Error(`${op}: expected input of shape [N, C, *], got ${fmt(x.shape)}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new Error(`${op}: input must be float32 or float64, got ${x.dtype}`);
  return { N: x.shape[0]!, C: x.shape[1]!, S: numel(x.shape.slice(2)) };
}

/** Per-channel values as float64 (`fill` where the optional tensor is absent), after checking shape and dtype. */
function perChannel(op: string, name: string, t: Raw | null, x: Raw, C: number, fill: number): Float64Array {
  const v = new Float64Array(C);
  if (!t) return v.fill(fill);
  if (t.shape.length !== 1 || t.shape[0] !== C || t.dtype !== x.dtype) {
    throw new Error(`${op}: ${name} of shape ${fmt(t.shape)} (${t.dtype}) must be [${C}] (${x.dtype}) for input ${fmt(x.shape)}`);
  }
  v.set(farr(t));
  return v;
}

function channelVector(values: Float64Array, dtype: Raw['dtype']): Raw {
  const r = out([values.length] as Shape, dtype);
  farr(r).set(values);
  return r;
}

function batchNormForward(x: Raw, weight: Raw | null, bias: Raw | null, runMean: Raw | null, runVar: Raw | null,
  p: BatchNormParams): { y: Raw; mean: Raw; invstd: Raw } {
  const op = 'BatchNormForward';
  const { N, C, S } = layoutOf(op, x);
  const w = perChannel(op, 'weight', weight, x, C, 1);
  const b = perChannel(op, 'bias', bias, x, C, 0);
  const a = farr(x);
  const mean = new Float64Array(C), invstd = new Float64Array(C);
  if (p.training) {
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
      invstd[c] = 1 / Math.sqrt(q / M + p.eps);
    }
  } else {
    if (!runMean || !runVar) {
      throw new Error(`${op}: eval mode needs running_mean and running_var, for input ${fmt(x.shape)}`);
    }
    mean.set(perChannel(op, 'running_mean', runMean, x, C, 0));
    const v = perChannel(op, 'running_var', runVar, x, C, 1);
    for (let c = 0; c < C; c++) invstd[c] = 1 / Math.sqrt(v[c]! + p.eps);
  }
  // y = (x - mean) * invstd * w + b, folded per channel into y = x * scale + shift (as PyTorch's CPU kernel).
  const y = out(x.shape, x.dtype);
  const o = farr(y);
  for (let c = 0; c < C; c++) {
    const scale = invstd[c]! * w[c]!, shift = b[c]! - mean[c]! * scale;
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * S;
      for (let i = 0; i < S; i++) o[off + i] = a[off + i]! * scale + shift;
    }
  }
  return { y, mean: channelVector(mean, x.dtype), invstd: channelVector(invstd, x.dtype) };
}

/**
 * Training-mode gradient: with xhat = (x - mean) * invstd and M elements per channel,
 * dbias = sum dy, dweight = sum dy * xhat, dx = w * invstd / M * (M dy - dbias - xhat * dweight).
 */
function batchNormBackward(dy: Raw, x: Raw, weight: Raw | null, mean: Raw, invstd: Raw): { dx: Raw; dweight: Raw; dbias: Raw } {
  const op = 'BatchNormBackward';
  const { N, C, S } = layoutOf(op, x);
  if (dy.shape.length !== x.shape.length || dy.shape.some((d, i) => d !== x.shape[i]) || dy.dtype !== x.dtype) {
    throw new Error(`${op}: dy ${fmt(dy.shape)} (${dy.dtype}) must match input ${fmt(x.shape)} (${x.dtype})`);
  }
  const w = perChannel(op, 'weight', weight, x, C, 1);
  const mu = perChannel(op, 'mean', mean, x, C, 0);
  const is = perChannel(op, 'invstd', invstd, x, C, 1);
  const g = farr(dy), a = farr(x);
  const dx = out(x.shape, x.dtype);
  const d = farr(dx);
  const dw = new Float64Array(C), db = new Float64Array(C);
  const M = N * S;
  for (let c = 0; c < C; c++) {
    const m = mu[c]!;
    let sumDy = 0, sumDyXmu = 0;
    for (let n = 0; n < N; n++) {
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) { const gi = g[o + i]!; sumDy += gi; sumDyXmu += gi * (a[o + i]! - m); }
    }
    db[c] = sumDy;
    dw[c] = sumDyXmu * is[c]!;
    // Expanded: dx = (dy - sumDy / M - (x - mean) * invstd^2 * sumDyXmu / M) * invstd * w.
    const k = (sumDyXmu * is[c]! * is[c]!) / M, gm = sumDy / M, f = is[c]! * w[c]!;
    for (let n = 0; n < N; n++) {
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) d[o + i] = (g[o + i]! - gm - (a[o + i]! - m) * k) * f;
    }
  }
  return { dx, dweight: channelVector(dw, x.dtype), dbias: channelVector(db, x.dtype) };
}

export const normKernels: Pick<Kernels, 'BatchNormForward' | 'BatchNormBackward'> = {
  BatchNormForward: batchNormForward,
  BatchNormBackward: batchNormBackward,
};
