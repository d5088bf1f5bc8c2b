/**
 * batchNorm as F.batch_norm over dim 1 of an [N, C, *] tensor. Forward is the BatchNormForward
 * kernel. The training-mode gradient is the BatchNormBackward kernel when the backward is not
 * itself recorded; under createGraph the same gradient is composed from differentiable ops so
 * that second derivatives (gradient penalties through a BN layer) work.
 */
import { defineOp, type Ctx } from '../function.js';
import { isGradEnabled, noGrad } from '../grad_mode.js';
import { allocArray } from '../dtype.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, mul, sub } from './arith.js';
import { channelView, checkChannels } from './nn_util.js';
import { mean as meanOf, sum } from './reduce.js';
import { reshape } from './shape.js';
import { rsqrt } from './unary.js';
import { checkFloat, checkSame, checkTensor, kernels, wrap } from './util.js';

export interface BatchNormOptions {
  /** Normalize with batch statistics and update the running ones (default false, as F.batch_norm). */
  training?: boolean;
  /** Weight of the new batch in the running statistics; null for a cumulative moving average. */
  momentum?: number | null;
  eps?: number;
  /**
   * The layer's batch counter (a one-element int64 tensor), incremented in place by each training
   * call; with momentum null the running statistics average over all batches counted so far.
   */
  numBatchesTracked?: Tensor | null;
}

/** Every dim but the channel dim: the axes the statistics reduce over. */
function statAxes(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}

/** What the forward needs besides the differentiable inputs; the running buffers carry no gradient. */
interface Stats {
  training: boolean;
  eps: number;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  /** Training only: the running-average factor (momentum, or 1/count for a cumulative average). */
  factor: number;
}

const batchNormOp = defineOp({
  name: 'batchNorm',
  forward(ctx: Ctx<{ training: boolean; eps: number; mean: Tensor; invstd: Tensor }>, x: Tensor, weight: Tensor | null, bias: Tensor | null, s: Stats) {
    const k = kernels(x);
    const r = s.training
      ? k.BatchNormForward(x, weight, bias, null, null, { training: true, eps: s.eps })
      : k.BatchNormForward(x, weight, bias, s.runningMean, s.runningVar, { training: false, eps: s.eps });
    ctx.save(...(weight ? [x, weight] : [x]));
    ctx.training = s.training;
    ctx.eps = s.eps;
    // Fresh tensors: the statistics y was normalized with, whatever later happens to the buffers.
    ctx.mean = ctx.keep(wrap(r.mean, x));
    ctx.invstd = ctx.keep(wrap(r.invstd, x));
    if (s.training && s.runningMean && s.runningVar) updateRunning(x, ctx.mean, ctx.invstd, s);
    return wrap(r.y, x);
  },
  backward(ctx, g) {
    const [x, w] = ctx.saved as [Tensor, Tensor | undefined];
    const needs = ctx.needsInputGrad;
    const axes = statAxes(x.ndim);
    let dx: Tensor | null, dw: Tensor | null, db: Tensor | null;
    if (ctx.training && !isGradEnabled()) {
      const r = kernels(x).BatchNormBackward(g!, x, w ?? null, ctx.mean, ctx.invstd);
      [dx, dw, db] = [wrap(r.dx, x), wrap(r.dweight, x), wrap(r.dbias, x)];
    } else if (ctx.training) {
      [dx, dw, db] = trainingGradComposite(g!, x, w ?? null, ctx.eps);
    } else {
      // Eval: y = (x - mean) * invstd * w + b with constant statistics, an affine map of x.
      const invstd = channelView(ctx.invstd, x.ndim);
      dx = needs[0] ? mul(g!, w ? mul(invstd, channelView(w, x.ndim)) : invstd) : null;
      dw = needs[1] ? sum(mul(g!, mul(sub(x, channelView(ctx.mean, x.ndim)), invstd)), axes) : null;
      db = needs[2] ? sum(g!, axes) : null;
    }
    return [needs[0] ? dx : null, needs[1] ? dw : null, needs[2] ? db : null, null];
  },
});

/**
 * running = (1 - f) running + f batch, written in place. The kernel saved 1/sqrt(var + eps) of
 * the biased variance; the running variance is the unbiased one, var * M / (M - 1).
 */
function updateRunning(x: Tensor, mean: Tensor, invstd: Tensor, s: Stats): void {
  const M = x.size / x.shape[1]!;
  const f = s.factor;
  const batchVar = mul(sub(div(1, mul(invstd, invstd)), s.eps), M / (M - 1));
  writeInPlace(s.runningMean!, add(mul(s.runningMean!, 1 - f), mul(mean, f)));
  writeInPlace(s.runningVar!, add(mul(s.runningVar!, 1 - f), mul(batchVar, f)));
}

/**
 * The training-mode gradient from differentiable ops, recomputing the statistics from x so that
 * their dependence on x is differentiated too. With M values per channel:
 *   db = sum dy, dw = sum dy * xhat, dx = w * invstd / M * (M dy - db - xhat * dw).
 */
function trainingGradComposite(g: Tensor, x: Tensor, w: Tensor | null, eps: number): [Tensor, Tensor, Tensor] {
  const axes = statAxes(x.ndim);
  const M = x.size / x.shape[1]!;
  const centered = sub(x, meanOf(x, axes, true));
  const invstd = rsqrt(add(meanOf(mul(centered, centered), axes, true), eps));
  const xhat = mul(centered, invstd);
  const db = sum(g, axes, true);
  const dw = sum(mul(g, xhat), axes, true);
  const scale = w ? mul(invstd, channelView(w, x.ndim)) : invstd;
  const dx = mul(div(scale, M), sub(sub(mul(g, M), db), mul(xhat, dw)));
  return [dx, reshape(dw, [x.shape[1]!]), reshape(db, [x.shape[1]!])];
}

/** Writes `value` into `buf`'s storage, as an in-place op on a buffer that carries no gradient. */
function writeInPlace(buf: Tensor, value: Tensor): void {
  buf.backend.copyInto(buf, value);
  buf.storage.version++;
}

/** Increments a one-element counter in place and returns its new value. */
function bumpCounter(counter: Tensor): number {
  const n = counter.item() + 1;
  const data = allocArray(counter.dtype, 1);
  data[0] = n;
  writeInPlace(counter, wrap(counter.backend.fromArray(data, counter.shape, counter.dtype), counter));
  return n;
}

function checkArgs(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null,
  bias: Tensor | null, training: boolean): void {
  const op = 'batchNorm';
  checkTensor(op, 'input', x);
  checkFloat(op, 'input', x);
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t != null) checkTensor(op, name, t);
  }
  checkSame(op, { input: x, runningMean, runningVar, weight, bias });
  if (x.ndim < 2) throw new Error(`${op}: expected an input of shape [N, C, *] with at least 2 dims, got ${fmt(x.shape)}`);
  const C = x.shape[1]!;
  checkChannels(op, 'runningMean', runningMean, C, x);
  checkChannels(op, 'runningVar', runningVar, C, x);
  checkChannels(op, 'weight', weight, C, x);
  checkChannels(op, 'bias', bias, C, x);
  if ((runningMean == null) !== (runningVar == null)) {
    throw new Error(`${op}: give both runningMean and runningVar, or neither`);
  }
  if (!training && runningMean == null) {
    throw new Error(`${op}: evaluation mode (training: false) needs runningMean and runningVar; ` +
      'pass training: true to normalize with batch statistics');
  }
  if (training && x.size / C <= 1) {
    throw new Error(`${op}: Expected more than 1 value per channel when training, got input of shape ${fmt(x.shape)}`);
  }
}

/**
 * Batch normalization over dim 1, as F.batch_norm. Training normalizes with the batch mean and
 * biased variance and updates the running statistics in place with the unbiased variance:
 * running = (1 - momentum) * running + momentum * batch. Eval normalizes with the running ones.
 * @example batchNorm(x, runningMean, runningVar, weight, bias, { training: true })
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  weight?: Tensor | null, bias?: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  const { training = false, momentum = 0.1, eps = 1e-5, numBatchesTracked = null } = opts;
  const w = weight ?? null, b = bias ?? null;
  checkArgs(x, runningMean, runningVar, w, b, training);
  if (!(eps >= 0)) throw new Error(`batchNorm: eps must be non-negative, got ${eps}`);
  if (momentum !== null && !(momentum >= 0 && momentum <= 1)) {
    throw new Error(`batchNorm: momentum must be in [0, 1] or null, got ${momentum}`);
  }
  if (training && momentum === null && runningMean && !numBatchesTracked) {
    throw new Error('batchNorm: momentum null (a cumulative moving average) needs the numBatchesTracked counter');
  }
  if (numBatchesTracked != null) {
    checkTensor('batchNorm', 'numBatchesTracked', numBatchesTracked);
    if (numBatchesTracked.size !== 1) {
      throw new Error(`batchNorm: numBatchesTracked must have one element, got shape ${fmt(numBatchesTracked.shape)}`);
    }
  }
  let factor = 0;
  if (training && numBatchesTracked) {
    // As nn.BatchNorm: the counter advances on every training call; it sets the factor only
    // when momentum is null.
    const count = noGrad(() => bumpCounter(numBatchesTracked));
    factor = momentum ?? 1 / count;
  } else if (training) {
    factor = momentum ?? 0;
  }
  return batchNormOp(x, w, b, { training, eps, runningMean, runningVar, factor });
}
