/**
 * Losses as PyTorch's functional ones: nllLoss, crossEntropy (class indices or probabilities,
 * class weights, ignoreIndex, label smoothing), mseLoss, and oneHot. Each is composed from
 * logSoftmax, a one-hot selection (constant: targets carry no gradient) and mul/sum, so each is
 * differentiable to any order without a gradient rule of its own.
 */
import { fmt, broadcastShapes, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { div, mul, neg, add, sub } from './arith.js';
import { tensor } from './creation.js';
import { channelView, checkChannels, checkReduction, reduce, type Reduction } from './nn_util.js';
import { sum } from './reduce.js';
import { eq, where } from './compare.js';
import { permute, reshape, unsqueeze } from './shape.js';
import { logSoftmax } from './softmax.js';
import type { Raw } from '../backend.js';
import { autocastInputs } from '../autocast.js';
import { checkFloat, checkSame, checkTensor, kernels, wrap } from './util.js';

export interface NllLossOptions {
  /** A rescaling weight per class, shape [C]. */
  weight?: Tensor | null;
  /** Targets equal to this contribute nothing, to the loss or to the mean's divisor. */
  ignoreIndex?: number;
  reduction?: Reduction;
}

export interface CrossEntropyOptions extends NllLossOptions {
  /** In [0, 1]: mixes the target with the uniform distribution over classes. */
  labelSmoothing?: number;
}

/** Class indices as a tensor, or as a (nested) array of integers. */
/** A loss's input and class weights as autocast's float32 policy has them (unchanged outside autocast). */
function float32UnderAutocast<O extends { weight?: Tensor | null }>(input: Tensor, opts: O): [Tensor, O] {
  const [x, w] = autocastInputs('float32', input, opts.weight);
  return [x, w === opts.weight ? opts : { ...opts, weight: w }];
}

export type LossTarget = Tensor | readonly number[] | readonly (readonly number[])[];

function isIndexDType(t: Tensor): boolean {
  return t.dtype === 'int32' || t.dtype === 'int64';
}

function asTensor(op: string, target: LossTarget, like: Tensor): Tensor {
  if (target instanceof Tensor) return target;
  if (!Array.isArray(target)) throw new Error(`${op}: target must be a Tensor or an array of class indices, got ${typeof target}`);
  return tensor(target as number[], { dtype: 'int64', device: like.device });
}

/**
 * Class-index targets as a constant one-hot selection [N, C, *S] in the input's dtype, with zero
 * rows where the target is ignored. The OneHot kernel checks the targets where they live (no
 * read-back): one outside [0, C) that is not ignoreIndex is an error.
 */
function selection(op: string, input: Tensor, target: Tensor, ignoreIndex: number): Tensor {
  const C = input.shape[1]!;
  const want = [input.shape[0]!, ...input.shape.slice(2)];
  if (!isIndexDType(target)) {
    throw new Error(`${op}: class-index target must be int32 or int64, got ${target.dtype} of shape ${fmt(target.shape)} ` +
      `(a float target is read as class probabilities and must have the input's shape ${fmt(input.shape)})`);
  }
  if (!sameShape(target.shape, want)) {
    throw new Error(`${op}: expected target of shape ${fmt(want)} for input of shape ${fmt(input.shape)}, ` +
      `got target of shape ${fmt(target.shape)}`);
  }
  if (target.device !== input.device) {
    throw new Error(`${op}: target is on device ${target.device} but input is on ${input.device}`);
  }
  let sel: Tensor;
  try {
    sel = wrap(kernels(input).OneHot(target, C, input.dtype, ignoreIndex), input); // [N, *S, C]
  } catch (e) {
    throw new Error(`${op}: a target is out of bounds for ${C} classes (input of shape ${fmt(input.shape)}, ` +
      `ignoreIndex ${ignoreIndex}): ${(e as Error).message}`);
  }
  return input.ndim > 2 ? permute(sel, [0, input.ndim - 1, ...want.slice(1).map((_, i) => i + 1)]) : sel;
}

interface Parsed {
  input: Tensor;
  weight: Tensor | null;
  reduction: Reduction;
  /** Undo the batch of one an unbatched [C] input was given. */
  unbatch: (loss: Tensor) => Tensor;
}

/** Common checks; an unbatched [C] input becomes [1, C] (and its index target [1]). */
function parse(op: string, input: Tensor, opts: NllLossOptions): Parsed {
  checkTensor(op, 'input', input);
  checkFloat(op, 'input', input);
  const weight = opts.weight ?? null;
  if (weight) checkTensor(op, 'weight', weight);
  checkSame(op, { input, weight });
  if (input.ndim === 0) throw new Error(`${op}: input must have a class dim, got a 0-d tensor`);
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  const unbatched = input.ndim === 1;
  const x = unbatched ? unsqueeze(input, 0) : input;
  checkChannels(op, 'weight', weight, x.shape[1]!, input);
  const unbatch = (loss: Tensor) => (unbatched && reduction === 'none' ? reshape(loss, []) : loss);
  return { input: x, weight, reduction, unbatch };
}

/** -sum(logp * sel * w) over classes, reduced; the mean divides by the selected weights' total. */
function nllCore(logp: Tensor, sel: Tensor, weight: Tensor | null, reduction: Reduction): Tensor {
  const coef = weight ? mul(sel, channelView(weight, logp.ndim)) : sel;
  const perElement = neg(sum(mul(logp, coef), 1));
  if (reduction === 'none') return perElement;
  const total = sum(perElement);
  return reduction === 'sum' ? total : meanOver(total, sum(coef), sel);
}

/**
 * total / weightSum, as PyTorch's mean over targets: NaN when every target is ignored, with a
 * zero gradient then (0/0 would make it NaN: the divisor is 1 there, and the result NaN).
 */
function meanOver(total: Tensor, weightSum: Tensor, sel: Tensor): Tensor {
  const none = eq(sum(sel), 0);
  return where(none, NaN, div(total, where(none, 1, weightSum)));
}

/** An unbatched input's 0-d index target becomes [1], matching its batch of one. */
function batchTarget(t: Tensor, input: Tensor): Tensor {
  return input.ndim === 1 && t.ndim === 0 ? reshape(t, [1]) : t;
}

/**
 * The negative log-likelihood of class-index targets given log-probabilities [N, C, d1, ...]
 * (or [C]), as F.nll_loss: the mean divides by the summed weights of the non-ignored targets.
 */
export function nllLoss(logp: Tensor, target: LossTarget, opts: NllLossOptions = {}): Tensor {
  const op = 'nllLoss';
  checkTensor(op, 'input', logp);
  [logp, opts] = float32UnderAutocast(logp, opts);
  const p = parse(op, logp, opts);
  const t = batchTarget(asTensor(op, target, logp), logp);
  const sel = selection(op, p.input, t, opts.ignoreIndex ?? -100);
  return p.unbatch(nllCore(p.input, sel, p.weight, p.reduction));
}

/**
 * Cross entropy of logits [N, C, d1, ...] (or [C]) against class indices [N, d1, ...] or class
 * probabilities of the input's shape, as F.cross_entropy, label smoothing included:
 * (1 - eps) * nll + eps / C * smooth, where smooth = -sum_c w_c log p_c per position.
 * @example crossEntropy(logits, [3, 0, 1], { labelSmoothing: 0.1 })
 */
export function crossEntropy(input: Tensor, target: LossTarget, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  checkTensor(op, 'input', input);
  [input, opts] = float32UnderAutocast(input, opts);
  if (target instanceof Tensor) [target] = autocastInputs('float32', target);
  const p = parse(op, input, opts);
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new Error(`${op}: labelSmoothing must be between 0.0 and 1.0, got ${eps}`);
  const C = p.input.shape[1]!;
  const t = asTensor(op, target, input);
  const logp = logSoftmax(p.input, 1);
  const wView = p.weight ? channelView(p.weight, logp.ndim) : null;

  if (!isIndexDType(t)) {
    // Class probabilities: -sum_c w_c q_c log p_c, the mean over every position (not over weights).
    checkSame(op, { input, target: t });
    if (!sameShape(t.shape, input.shape)) {
      throw new Error(`${op}: class-probability target of shape ${fmt(t.shape)} must have the input's shape ` +
        `${fmt(input.shape)} (class indices must be int32 or int64)`);
    }
    const q0 = input.ndim === 1 ? unsqueeze(t, 0) : t;
    const q = eps > 0 ? add(mul(q0, 1 - eps), eps / C) : q0;
    const perElement = neg(sum(mul(logp, wView ? mul(q, wView) : q), 1));
    return p.unbatch(reduce(perElement, p.reduction));
  }

  const sel = selection(op, p.input, batchTarget(t, input), opts.ignoreIndex ?? -100);
  const nll = nllCore(logp, sel, p.weight, p.reduction);
  if (eps === 0) return p.unbatch(nll);
  // 1 at counted positions, 0 at ignored ones: each row of the selection sums to one or zero.
  const mask = sum(sel, 1);
  // PyTorch's smoothing term: -sum_c w_c log p_c at each counted position; the mean divides by
  // the same total of target weights as the nll term.
  const smoothEl = mul(neg(sum(wView ? mul(logp, wView) : logp, 1)), mask);
  let smooth: Tensor;
  if (p.reduction === 'none') smooth = smoothEl;
  else if (p.reduction === 'sum') smooth = sum(smoothEl);
  else smooth = meanOver(sum(smoothEl), sum(wView ? mul(sel, wView) : sel), sel);
  return p.unbatch(add(mul(nll, 1 - eps), mul(smooth, eps / C)));
}

/** Mean (or sum, or elementwise) squared error, broadcasting as PyTorch. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const op = 'mseLoss';
  checkTensor(op, 'input', input);
  checkTensor(op, 'target', target);
  [input, target] = autocastInputs('float32', input, target);
  checkFloat(op, 'input', input);
  checkSame(op, { input, target });
  broadcastShapes(op, input.shape, target.shape, ['input', 'target']);
  const d = sub(input, target);
  return reduce(mul(d, d), checkReduction(op, opts.reduction ?? 'mean'));
}

/**
 * One-hot encoding of class indices as int64 with a trailing dim of numClasses, as F.one_hot;
 * numClasses -1 infers max + 1. Use `.to('float32')` for a float mask.
 */
export function oneHot(indices: Tensor, numClasses = -1): Tensor {
  const op = 'oneHot';
  checkTensor(op, 'indices', indices);
  if (!isIndexDType(indices)) {
    throw new Error(`${op}: indices must be an int32 or int64 tensor, got ${indices.dtype} of shape ${fmt(indices.shape)}`);
  }
  if (numClasses === -1) {
    // Inferring the class count needs the largest index on the host, as in PyTorch.
    if (indices.size === 0) throw new Error(`${op}: cannot infer numClasses from an empty tensor (shape ${fmt(indices.shape)})`);
    let lo = Infinity, hi = -Infinity;
    for (const x of indices.dataSync()) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    if (lo < 0) throw new Error(`${op}: class values must be non-negative, got ${lo}`);
    numClasses = hi + 1;
  }
  if (!Number.isInteger(numClasses) || numClasses < 0) {
    throw new Error(`${op}: numClasses must be a non-negative integer or -1, got ${numClasses}`);
  }
  const k = kernels(indices);
  let hot: Raw;
  try {
    hot = k.OneHot(indices, numClasses, 'float64');
  } catch (e) {
    throw new Error(`${op}: class values must be in [0, numClasses = ${numClasses}) (indices of shape ` +
      `${fmt(indices.shape)}): ${(e as Error).message}`);
  }
  return wrap(k.Cast(hot, 'int64'), indices);
}
