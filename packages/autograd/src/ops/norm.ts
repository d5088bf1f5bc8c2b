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
import { opmathType, type DType } from '../dtype.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, mul, sub } from './arith.js';
import { channelView, checkChannelDTypes, checkChannels } from './nn_util.js';
import { updateRunning } from './norm_parts.js';
import { mean as meanOf, sum } from './reduce.js';
import { reshape } from './shape.js';
import { relu, reluBackward, rsqrt } from './unary.js';
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
  /** batchNormFused's ReLU, after the residual add. */
  relu: boolean;
}

interface BNState {
  training: boolean;
  eps: number;
  invstd: Tensor;
  paramType: DType;
  relu: boolean;
  hasResidual: boolean;
  /** Which of weight, bias, output were saved after x and mean, in that order. */
  savedW: boolean;
  savedB: boolean;
}

const batchNormOp = defineOp({
  name: 'batchNorm',
  forward(ctx: Ctx<BNState>, x: Tensor, weight: Tensor | null, bias: Tensor | null, residual: Tensor | null, s: Stats) {
    const k = kernels(x);
    ctx.training = s.training;
    ctx.eps = s.eps;
    ctx.paramType = (weight ?? bias)?.dtype ?? x.dtype;
    ctx.relu = s.relu;
    ctx.hasResidual = residual !== null;
    let mean: Tensor, invstd: Tensor;
    if (s.training) {
      const st = k.BatchNormStats(x, s.eps);
      [mean, invstd] = [wrap(st.mean, x), wrap(st.invstd, x)];
      if (s.runningMean && s.runningVar) {
        updateRunning(s.runningMean, s.runningVar, s.counter, mean, invstd, s.eps, x.size / x.shape[1]!, s.factor);
      }
    } else {
      // The running mean itself is saved: a later in-place write to it (a training forward's
      // update, a load) makes this backward throw. PyTorch's running-stat update bumps no version,
      // so its backward then runs on the new statistics; a stale gradient is worse than an error.
      // invstd is a fresh vector.
      mean = s.runningMean!;
      invstd = wrap(k.BatchNormInvstd(s.runningVar!, s.eps), x);
    }
    ctx.invstd = ctx.keep(invstd);
    const y = wrap(k.BatchNormElemt(x, weight, bias, mean, invstd, residual, s.relu), x);
    // The ReLU's mask: recomputed from x, weight and bias by the training backward's kernels, read
    // from the output everywhere else.
    ctx.savedW = weight !== null;
    ctx.savedB = s.relu && bias !== null;
    ctx.save(x, mean, ...(weight ? [weight] : []), ...(ctx.savedB ? [bias!] : []), ...(s.relu ? [y] : []));
    return y;
  },
  backward(ctx, dy) {
    const saved = ctx.saved;
    const [x, mean] = saved as [Tensor, Tensor];
    let at = 2;
    const w = ctx.savedW ? saved[at++]! : undefined;
    const b = ctx.savedB ? saved[at++]! : null;
    const y = ctx.relu ? saved[at]! : null;
    const invstd = ctx.invstd;
    const needs = ctx.needsInputGrad;
    const axes = statAxes(x.ndim);
    const fast = ctx.training && !isGradEnabled();
    // Without a residual the training kernels mask dy themselves; a residual takes the masked dy
    // as its gradient, so it is formed once.
    const maskInKernels = ctx.relu && fast && !ctx.hasResidual;
    const g = ctx.relu && !maskInKernels ? reluBackward(dy!, y!) : dy!;
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (fast) {
      const k = kernels(x);
      const count = x.size / x.shape[1]!;
      const r = k.BatchNormBackwardReduce(g, x, mean, invstd, maskInKernels, w ?? null, b);
      if (needs[0]) {
        dx = wrap(k.BatchNormBackwardElemt(g, x, mean, invstd, w ?? null, r.sumDy, r.sumDyXmu, count, maskInKernels, b), x);
      }
      [dw, db] = [wrap(r.dweight, x), wrap(r.dbias, x)];
    } else {
      // A half input's gradients are computed in float32 (as the kernels and PyTorch do): dx rounded
      // once, the parameters' gradients float32 sums of float32 products.
      const ct = opmathType(x.dtype);
      const [gc, xc] = [g.to(ct), x.to(ct)];
      if (ctx.training) {
        [dx, dw, db] = trainingGradComposite(gc, xc, w ? w.to(ct) : null, ctx.eps);
      } else {
        // Eval: y = (x - mean) * invstd * w + b with constant statistics, an affine map of x.
        const is = channelView(invstd.to(ct), x.ndim);
        dx = needs[0] ? mul(gc, w ? mul(is, channelView(w.to(ct), x.ndim)) : is) : null;
        dw = needs[1] ? sum(mul(gc, mul(sub(xc, channelView(mean.to(ct), x.ndim)), is)), axes) : null;
        db = needs[2] ? sum(gc, axes) : null;
      }
      dx = dx?.to(x.dtype) ?? null;
    }
    // Per-channel sums are float32 for a half input: the gradients take the parameters' type.
    [dw, db] = [dw?.to(ctx.paramType) ?? null, db?.to(ctx.paramType) ?? null];
    return [needs[0] ? dx : null, needs[1] ? dw : null, needs[2] ? db : null, needs[3] ? g : null, null];
  },
  jvp(ctx, [tx, tw, tb, tr], out, x, weight, _bias, _residual, s) {
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
    const terms = [dxhat && (weight ? mul(dxhat, ch(weight)) : dxhat), tw && mul(xhat, ch(tw)), tb && ch(tb), tr]
      .filter((t): t is Tensor => t !== null);
    if (!terms.length) return null;
    const t = terms.reduce((a, b) => add(a, b)).to(out.dtype);
    // relu passes the tangent where its output is positive, as its backward the gradient.
    return ctx.relu ? reluBackward(t, out) : t;
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

function checkArgs(op: string, x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null,
  bias: Tensor | null, training: boolean): void {
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
  return normalize('batchNorm', x, runningMean, runningVar, weight ?? null, bias ?? null, opts, null, false);
}

export interface BatchNormFusedOptions extends BatchNormOptions {
  /** Added to the normalized x before the ReLU: a residual block's identity (x's shape). */
  residual?: Tensor | null;
  /** Ends with max(0, ·). */
  relu?: boolean;
}

/**
 * relu?(batchNorm(x, ...) + residual?) with the residual add and the ReLU in batch norm's own
 * pass (cuDNN's BN_ADD_ACTIVATION): the values are batchNorm's, then add's and relu's, as computed
 * one after the other, except that the sum is rounded once instead of twice. In training, the
 * backward recomputes the ReLU's mask from x inside batch norm's backward passes when there is no
 * residual, so the ReLU costs no pass of its own either way. A residual of another dtype or shape
 * than x is added and the ReLU applied as separate ops.
 * @example batchNormFused(conv(x), rm, rv, w, b, { training: true, residual: identity, relu: true })
 */
export function batchNormFused(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  weight?: Tensor | null, bias?: Tensor | null, opts: BatchNormFusedOptions = {}): Tensor {
  const { residual = null, relu: withRelu = false, ...bnOpts } = opts;
  const op = 'batchNormFused';
  if (residual !== null) {
    checkTensor(op, 'residual', residual);
    if (residual.device !== x.device) {
      throw new Error(`${op}: 'input' is on device ${x.device} but 'residual' is on ${residual.device}`);
    }
    if (residual.dtype !== x.dtype || residual.shape.join() !== x.shape.join()) {
      const y = add(normalize(op, x, runningMean, runningVar, weight ?? null, bias ?? null, bnOpts, null, false), residual);
      return withRelu ? relu(y) : y;
    }
  }
  return normalize(op, x, runningMean, runningVar, weight ?? null, bias ?? null, bnOpts, residual, withRelu);
}

function normalize(op: string, x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, w: Tensor | null,
  b: Tensor | null, opts: BatchNormOptions, residual: Tensor | null, withRelu: boolean): Tensor {
  const { training = false, momentum = 0.1, eps = 1e-5, numBatchesTracked = null } = opts;
  checkArgs(op, x, runningMean, runningVar, w, b, training);
  if (!(eps >= 0)) throw new Error(`${op}: eps must be non-negative, got ${eps}`);
  // As PyTorch: a batch of equal values would divide by sqrt(0).
  if (training && eps === 0) throw new Error(`${op}: eps must be positive during training, got 0`);
  if (momentum !== null && !(momentum >= 0 && momentum <= 1)) {
    throw new Error(`${op}: momentum must be in [0, 1] or null, got ${momentum}`);
  }
  if (training && momentum === null && runningMean && !numBatchesTracked) {
    throw new Error(`${op}: momentum null (a cumulative moving average) needs the numBatchesTracked counter`);
  }
  if (numBatchesTracked != null) {
    checkTensor(op, 'numBatchesTracked', numBatchesTracked);
    if (numBatchesTracked.size !== 1 || numBatchesTracked.dtype !== 'int64' || numBatchesTracked.device !== x.device) {
      throw new Error(`${op}: numBatchesTracked must be a one-element int64 tensor on ${x.device}, got ` +
        `${numBatchesTracked.dtype} ${fmt(numBatchesTracked.shape)} on ${numBatchesTracked.device}`);
    }
    if (training && runningMean == null) {
      throw new Error(`${op}: numBatchesTracked counts updates of the running statistics; ` +
        'pass runningMean and runningVar with it, or no counter');
    }
  }
  const counter = training ? numBatchesTracked : null;
  // As nn.BatchNorm: the counter advances on every training call; it sets the factor only when
  // momentum is null, and then its value is read back (once per call; nn layers keep the count on
  // the host and pass 1 / count as momentum instead).
  const factor = !training ? 0 : momentum ?? (counter ? 1 / (counter.item() + 1) : 0);
  return batchNormOp(x, w, b, residual, { training, eps, runningMean, runningVar, counter, factor, relu: withRelu });
}
