/** Argument parsing shared by the neural-network ops: 2-D sizes, reductions, per-channel shapes. */
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { reshape } from './shape.js';
import { sum } from './reduce.js';
import { div } from './arith.js';
import { opmathType } from '../dtype.js';
import { checkSame } from './util.js';

/** A size given as one number for both spatial dims or as [height, width], as PyTorch's `_pair`. */
export type Size2 = number | readonly [number, number];

/** Normalizes a Size2 to [h, w], checking both are integers >= `min`. */
export function pair(op: string, name: string, v: Size2, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if ((typeof v !== 'number' && (!Array.isArray(v) || v.length !== 2)) ||
      !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

export type Reduction = 'none' | 'mean' | 'sum';

export function checkReduction(op: string, reduction: string): Reduction {
  if (reduction !== 'none' && reduction !== 'mean' && reduction !== 'sum') {
    throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got '${reduction}'`);
  }
  return reduction;
}

/** Applies 'sum' or 'mean' over all elements; 'none' returns the elementwise loss. */
export function reduce(loss: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return loss;
  const s = sum(loss);
  return reduction === 'sum' ? s : div(s, loss.size);
}

/** A per-channel vector [C] viewed as [1, C, 1, ...] to broadcast against an [N, C, *] tensor. */
export function channelView(v: Tensor, rank: number): Tensor {
  return reshape(v, [1, v.size, ...Array<number>(Math.max(rank - 2, 0)).fill(1)]);
}

/**
 * Per-channel vectors of a batch norm on x: on x's device, and of x's dtype or, for a half x,
 * float32 (PyTorch's mixed batch norm: the parameters and statistics of a float32 model under
 * autocast). Anything else fails as checkSame does.
 */
export function checkChannelDTypes(op: string, x: Tensor, named: Record<string, Tensor | null | undefined>): void {
  const stats = opmathType(x.dtype);
  for (const [name, t] of Object.entries(named)) {
    if (t && (t.device !== x.device || (t.dtype !== x.dtype && t.dtype !== stats))) checkSame(op, { [xName(op)]: x, [name]: t });
  }
}

/** What the batch-norm ops call their input in messages. */
const xName = (op: string) => (op === 'batchNorm' || op === 'batchNormFused' ? 'input' : 'x');

/** Checks that an optional per-channel tensor is 1-D with C elements. */
export function checkChannels(op: string, name: string, v: Tensor | null | undefined, C: number, like: Tensor): void {
  if (v && (v.ndim !== 1 || v.shape[0] !== C)) {
    throw new Error(`${op}: ${name} of shape ${fmt(v.shape)} must have shape [${C}], one value per channel of ` +
      `input of shape ${fmt(like.shape)}`);
  }
}
