/**
 * batchNorm as F.batch_norm over dim 1 of an [N, C, *] tensor, composed of the split batch-norm
 * kernels (backend.ts): training is BatchNormStats, BatchNormElemt and BatchNormUpdateRunning;
 * eval is BatchNormInvstd of the running variance and BatchNormElemt. The training-mode gradient
 * is BatchNormBackwardReduce then BatchNormBackwardElemt when the backward is not itself recorded;
 * under createGraph the same gradient is composed from differentiable ops so that second
 * derivatives (gradient penalties through a BN layer) work.
 */
import { defineOp, type Ctx } from '../function.js';
import { isGradEnabled } from '../grad_mode.js';
import type { DType } from '../dtype.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, mul, sub } from './arith.js';
import { channelView, checkChannelDTypes, checkChannels } from './nn_util.js';
import { updateRunning } from './norm_parts.js';
import { mean as meanOf, sum } from './reduce.js';
import { reshape } from './shape.js';
import { rsqrt } from './unary.js';
import { checkFloat, checkTensor, kernels, wrap } from './util.js';

export interface BatchNormOptions {
  /** Normalize with batch statistics and update the running ones (default false, as F.batch_norm). */
  training?: boolean;
  /**
   * Weight of the new batch in the running statistics; null for a cumulative moving average,
   * which reads the numBatchesTracked counter (a layer that knows its count passes 1 / count here
   * instead, as nn.BatchNorm computes its exponential_average_factor).
   */
  momentum?: number | null;
  eps?: number;
  /**
   * The layer's batch counter (a one-element int64 tensor), incremented in place on the device by
   * each training call that updates the running statistics.
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
  counter: Tensor | null;
  /** Training only: the running-average factor (momentum, or 1/count for a cumulative average). */
  factor: number;
}

const batchNormOp = defineOp({
  name: 'batchNorm',
  forward(ctx: Ctx<{ training: boolean; eps: number; invstd: Tensor; paramType: DType }>, x: Tensor, weight: Tensor | null,
    bias: Tensor | null, s: Stats) {
    const k = kernels(x);
    ctx.training = s.training;
    ctx.eps = s.eps;
    ctx.paramType = (weight ?? bias)?.dtype ?? x.dtype;
    let mean: Tensor, invstd: Tensor;
    if (s.training) {
      const st = k.BatchNormStats(x, s.eps);
      [mean, invstd] = [wrap(st.mean, x), wrap(st.invstd, x)];
      if (s.runningMean && s.runningVar) {
        updateRunning(s.runningMean, s.runningVar, s.counter, mean, invstd, s.eps, x.size / x.shape[1]!, s.factor);
      }
    } else {
      // The running mean itself is saved (a later in-place write to it makes backward throw, as in
      // PyTorch); invstd is a fresh vector.
      mean = s.runningMean!;
      invstd = wrap(k.BatchNormInvstd(s.runningVar!, s.eps), x);
    }
    ctx.save(x, mean, ...(weight ? [weight] : []));
    ctx.invstd = ctx.keep(invstd);
    return wrap(k.BatchNormElemt(x, weight, bias, mean, invstd), x);
  },
  backward(ctx, g) {
    const [x, mean, w] = ctx.saved as [Tensor, Tensor, Tensor | undefined];
    const invstd = ctx.invstd;
    const needs = ctx.needsInputGrad;
    const axes = statAxes(x.ndim);
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (ctx.training && !isGradEnabled()) {
      const k = kernels(x);
      const r = k.BatchNormBackwardReduce(g!, x, mean, invstd);
      if (needs[0]) dx = wrap(k.BatchNormBackwardElemt(g!, x, mean, invstd, w ?? null, r.sumDy, r.sumDyXmu, x.size / x.shape[1]!), x);
      [dw, db] = [wrap(r.dweight, x), wrap(r.dbias, x)];
    } else if (ctx.training) {
      [dx, dw, db] = trainingGradComposite(g!, x, w ? w.to(x.dtype) : null, ctx.eps);
    } else {
      // Eval: y = (x - mean) * invstd * w + b with constant statistics, an affine map of x.
      const is = channelView(invstd.to(x.dtype), x.ndim);
      dx = needs[0] ? mul(g!, w ? mul(is, channelView(w.to(x.dtype), x.ndim)) : is) : null;
      dw = needs[1] ? sum(mul(g!, mul(sub(x, channelView(mean.to(x.dtype), x.ndim)), is)), axes) : null;
      db = needs[2] ? sum(g!, axes) : null;
    }
    // Per-channel sums are float32 for a half input: the gradients take the parameters' type.
    [dw, db] = [dw?.to(ctx.paramType) ?? null, db?.to(ctx.paramType) ?? null];
    return [needs[0] ? dx : null, needs[1] ? dw : null, needs[2] ? db : null, null];
  },
  jvp(ctx, [tx, tw, tb], out, x, weight, _bias, s) {
    const axes = statAxes(x.ndim);
    const ch = (t: Tensor) => channelView(t.to(x.dtype), x.ndim);
    let xhat: Tensor, dxhat: Tensor | null = null;
    if (ctx.training) {
      // d xhat = invstd (dx - mean(dx) - xhat mean(dx xhat)): the batch statistics move with x.
      const centered = sub(x, meanOf(x, axes, true));
      const invstd = rsqrt(add(meanOf(mul(centered, centered), axes, true), ctx.eps));
      xhat = mul(centered, invstd);
      if (tx) dxhat = mul(invstd, sub(sub(tx, meanOf(tx, axes, true)), mul(xhat, meanOf(mul(tx, xhat), axes, true))));
    } else {
      const invstd = ch(ctx.invstd);
      xhat = mul(sub(x, ch(s.runningMean!)), invstd);
      if (tx) dxhat = mul(tx, invstd);
    }
    const terms = [dxhat && (weight ? mul(dxhat, ch(weight)) : dxhat), tw && mul(xhat, ch(tw)), tb && ch(tb)]
      .filter((t): t is Tensor => t !== null);
    return terms.length ? terms.reduce((a, b) => add(a, b)).to(out.dtype) : null;
  },
});

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

function checkArgs(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null,
  bias: Tensor | null, training: boolean): void {
  const op = 'batchNorm';
  checkTensor(op, 'input', x);
  checkFloat(op, 'input', x);
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t != null) checkTensor(op, name, t);
  }
  checkChannelDTypes(op, x, { runningMean, runningVar, weight, bias });
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
    if (numBatchesTracked.size !== 1 || numBatchesTracked.dtype !== 'int64' || numBatchesTracked.device !== x.device) {
      throw new Error(`batchNorm: numBatchesTracked must be a one-element int64 tensor on ${x.device}, got ` +
        `${numBatchesTracked.dtype} ${fmt(numBatchesTracked.shape)} on ${numBatchesTracked.device}`);
    }
    if (training && runningMean == null) {
      throw new Error('batchNorm: numBatchesTracked counts updates of the running statistics; ' +
        'pass runningMean and runningVar with it, or no counter');
    }
  }
  const counter = training ? numBatchesTracked : null;
  // As nn.BatchNorm: the counter advances on every training call; it sets the factor only when
  // momentum is null, and then its value is read back (once per call; nn layers keep the count on
  // the host and pass 1 / count as momentum instead).
  const factor = !training ? 0 : momentum ?? (counter ? 1 / (counter.item() + 1) : 0);
  return batchNormOp(x, w, b, { training, eps, runningMean, runningVar, counter, factor });
}
