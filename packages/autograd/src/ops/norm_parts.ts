/**
 * The parts batchNorm is made of, as PyTorch exposes them (torch.batch_norm_stats,
 * batch_norm_elemt, batch_norm_backward_reduce, batch_norm_backward_elemt,
 * batch_norm_gather_stats_with_counts), for code that must act between them: SyncBatchNorm
 * all-gathers each rank's (mean, invstd, count) after the statistics and all-reduces (sumDy,
 * sumDyXmu) after the backward reduction (torch/nn/modules/_functions.py). None records a
 * gradient: they are the forward and backward of the caller's own defineFunction.
 *
 * @example
 * const { mean, invstd } = batchNormStats(x, 1e-5);   // per rank, then all-gather
 * const g = batchNormGatherStats(means, invstds, counts, 1e-5);
 * const y = batchNormElemt(x, weight, bias, g.mean, g.invstd);
 */
import type { Raw } from '../backend.js';
import { isGradEnabled } from '../grad_mode.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, mul, sub } from './arith.js';
import { checkChannelDTypes, checkChannels } from './nn_util.js';
import { sum } from './reduce.js';
import { reshape } from './shape.js';
import { rsqrt } from './unary.js';
import { checkFloat, checkSame, checkTensor, kernels, wrap } from './util.js';

type Named = Record<string, Tensor | null>;

/**
 * Tensors, float, one device, none recording a gradient; x [N, C, *], `like` of x's shape and
 * dtype, and [C] vectors of x's dtype or, for a half x, float32 (the statistics' type).
 */
function checkParts(op: string, x: Tensor, like: Named, channels: Named): void {
  const all: Named = { ...like, ...channels };
  for (const [name, t] of Object.entries(all)) if (t !== null) checkTensor(op, name, t);
  checkFloat(op, 'x', x);
  checkSame(op, { x, ...like });
  checkChannelDTypes(op, x, channels);
  if (x.ndim < 2) throw new Error(`${op}: expected x of shape [N, C, *], got ${fmt(x.shape)}`);
  for (const [name, t] of Object.entries(like)) {
    if (t && t.shape.join() !== x.shape.join()) throw new Error(`${op}: ${name} ${fmt(t.shape)} must match x ${fmt(x.shape)}`);
  }
  for (const [name, t] of Object.entries(channels)) checkChannels(op, name, t, x.shape[1]!, x);
  if (isGradEnabled()) {
    const [name] = Object.entries({ x, ...all }).find(([, t]) => t?.requiresGrad) ?? [];
    if (name) {
      throw new Error(`${op}: '${name}' requires grad and gradients are being recorded; the batch-norm parts record ` +
        'no gradient: call them inside a defineFunction (its forward and backward run without recording) or noGrad()');
    }
  }
}

function checkCount(op: string, count: number, min: number): void {
  if (!(Number.isInteger(count) && count >= min)) {
    throw new Error(`${op}: count must be an integer >= ${min} (elements per channel over every rank), got ${count}`);
  }
}

/** Per channel over every dim but 1: the mean and invstd = 1/sqrt(biased variance + eps). */
export function batchNormStats(x: Tensor, eps = 1e-5): { mean: Tensor; invstd: Tensor } {
  checkParts('batchNormStats', x, {}, {});
  const r = kernels(x).BatchNormStats(x, eps);
  return { mean: wrap(r.mean, x), invstd: wrap(r.invstd, x) };
}

/** y = (x - mean) * invstd * weight + bias per channel; weight and bias may be null. */
export function batchNormElemt(x: Tensor, weight: Tensor | null, bias: Tensor | null, mean: Tensor, invstd: Tensor): Tensor {
  checkParts('batchNormElemt', x, {}, { weight, bias, mean, invstd });
  return wrap(kernels(x).BatchNormElemt(x, weight, bias, mean, invstd), x);
}

/** Per channel: sumDy = sum dy, sumDyXmu = sum dy * (x - mean), and this rank's dweight and dbias. */
export function batchNormBackwardReduce(dy: Tensor, x: Tensor, mean: Tensor, invstd: Tensor):
  { sumDy: Tensor; sumDyXmu: Tensor; dweight: Tensor; dbias: Tensor } {
  checkParts('batchNormBackwardReduce', x, { dy }, { mean, invstd });
  const r = kernels(x).BatchNormBackwardReduce(dy, x, mean, invstd);
  return { sumDy: wrap(r.sumDy, x), sumDyXmu: wrap(r.sumDyXmu, x), dweight: wrap(r.dweight, x), dbias: wrap(r.dbias, x) };
}

/**
 * dx from the sums reduced over every rank, with `count` elements per channel over every rank:
 * dx = (dy - sumDy / count - (x - mean) * invstd^2 * sumDyXmu / count) * invstd * weight.
 */
export function batchNormBackwardElemt(dy: Tensor, x: Tensor, mean: Tensor, invstd: Tensor, weight: Tensor | null,
  sumDy: Tensor, sumDyXmu: Tensor, count: number): Tensor {
  const op = 'batchNormBackwardElemt';
  checkParts(op, x, { dy }, { mean, invstd, weight, sumDy, sumDyXmu });
  checkCount(op, count, 1);
  return wrap(kernels(x).BatchNormBackwardElemt(dy, x, mean, invstd, weight, sumDy, sumDyXmu, count), x);
}

/**
 * Combines per-rank statistics, rows of means and invstds [R, C] with counts [R] (elements per
 * channel on each rank), into the global mean and invstd, as batch_norm_gather_stats_with_counts:
 * mean = sum n_r mean_r / n, var = sum n_r (var_r + (mean_r - mean)^2) / n (Chan et al.'s pairwise
 * combination, exact), var_r recovered as 1/invstd_r^2 - eps. Composed of ops, on any backend.
 */
export function batchNormGatherStats(means: Tensor, invstds: Tensor, counts: Tensor, eps = 1e-5): { mean: Tensor; invstd: Tensor } {
  const op = 'batchNormGatherStats';
  for (const [name, t] of Object.entries({ means, invstds, counts })) checkTensor(op, name, t);
  checkFloat(op, 'means', means);
  checkSame(op, { means, invstds, counts });
  if (means.ndim !== 2 || invstds.shape.join() !== means.shape.join() || counts.ndim !== 1 || counts.size !== means.shape[0]) {
    throw new Error(`${op}: means and invstds must be [R, C] and counts [R], got ${fmt(means.shape)}, ${fmt(invstds.shape)}, ${fmt(counts.shape)}`);
  }
  const w = reshape(div(counts, sum(counts)), [counts.size, 1]);
  const mean = sum(mul(w, means), [0]);
  const d = sub(means, mean);
  const rankVar = sub(div(1, mul(invstds, invstds)), eps);
  const v = sum(mul(w, add(rankVar, mul(d, d))), [0]);
  return { mean, invstd: rsqrt(add(v, eps)) };
}

/** What batchNormUpdateRunning_ takes besides the tensors. */
export interface BatchNormUpdateOptions {
  /** Elements per channel behind the statistics, over every rank (> 1). */
  count: number;
  /** The batch's weight in the running average (default 0.1, as nn.BatchNorm). */
  momentum?: number;
  eps?: number;
  /** A one-element int64 counter (num_batches_tracked) to advance by one on the device. */
  numBatchesTracked?: Tensor | null;
}

/** @internal The update itself, arguments checked: one kernel, every written tensor's version bumped. */
export function updateRunning(runningMean: Tensor, runningVar: Tensor, counter: Tensor | null, mean: Raw, invstd: Raw,
  eps: number, count: number, factor: number): void {
  kernels(runningMean).BatchNormUpdateRunning(runningMean, runningVar, counter, mean, invstd, { eps, count, factor });
  for (const t of [runningMean, runningVar, counter]) t?.markWritten();
}

/**
 * In place, one kernel: running = (1 - momentum) running + momentum batch, with the batch variance
 * made unbiased by count / (count - 1), as nn.BatchNorm and SyncBatchNorm update theirs.
 */
export function batchNormUpdateRunning_(runningMean: Tensor, runningVar: Tensor, mean: Tensor, invstd: Tensor,
  opts: BatchNormUpdateOptions): void {
  const op = 'batchNormUpdateRunning_';
  const { count, momentum = 0.1, eps = 1e-5, numBatchesTracked = null } = opts;
  const vectors = { runningMean, runningVar, mean, invstd };
  for (const [name, t] of Object.entries(vectors)) checkTensor(op, name, t);
  checkFloat(op, 'runningMean', runningMean);
  checkSame(op, { runningMean, runningVar });
  // Statistics of a half input are float32 (batchNormStats'): they may update half running buffers.
  for (const [name, t] of Object.entries({ mean, invstd })) {
    if (t.device !== runningMean.device || (t.dtype !== runningMean.dtype && t.dtype !== 'float32')) checkSame(op, { runningMean, [name]: t });
  }
  for (const [name, t] of Object.entries(vectors)) {
    if (t.ndim !== 1 || t.size !== runningMean.size) {
      throw new Error(`${op}: ${name} of shape ${fmt(t.shape)} must be a vector like runningMean ${fmt(runningMean.shape)}`);
    }
  }
  checkCount(op, count, 2);
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`${op}: momentum must be in [0, 1], got ${momentum}`);
  if (numBatchesTracked) {
    checkTensor(op, 'numBatchesTracked', numBatchesTracked);
    if (numBatchesTracked.dtype !== 'int64' || numBatchesTracked.size !== 1 || numBatchesTracked.device !== runningMean.device) {
      throw new Error(`${op}: numBatchesTracked must be a one-element int64 tensor on ${runningMean.device}, got ` +
        `${numBatchesTracked.dtype} ${fmt(numBatchesTracked.shape)} on ${numBatchesTracked.device}`);
    }
  }
  updateRunning(runningMean, runningVar, numBatchesTracked, mean, invstd, eps, count, momentum);
}
