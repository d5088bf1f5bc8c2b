/**
 * The batch-norm parts (batchNormStats, batchNormElemt, batchNormBackwardReduce,
 * batchNormBackwardElemt, batchNormUpdateRunning_, batchNormGatherStats): each on every native
 * backend against the 'ts' float64 reference, on plain inputs and on a convolution's output (kept
 * in the blocked layout on 'cpu'); then composed as SyncBatchNorm composes them, over two simulated
 * ranks holding unequal parts of a batch, against one batchNorm over the whole batch.
 */
import { describe, expect, it } from 'vitest';
import {
  batchNorm, batchNormBackwardElemt, batchNormBackwardReduce, batchNormElemt, batchNormGatherStats, batchNormStats,
  batchNormUpdateRunning_, cat, conv2d, defineFunction, fromTypedArray, grad, manualSeed, narrow, randn, stack, sum,
  tensor, zeros, type Ctx, type Tensor,
} from '@nodegrad/autograd';
import { checkParity, describeBackends } from '@nodegrad/autograd/testing';
import { paritySuite, type Case, HALF_TYPES } from './ops_backends_cases.js';

const constant = (...shape: number[]) => ({ shape, grad: false });
const positive = (...shape: number[]) => ({ shape, pos: true, grad: false });
const M = (x: Tensor) => x.size / x.shape[1]!;
const EPS = 1e-5;

/** The parts on x: statistics, y, the backward sums and dx, as one list of outputs. */
function allParts(x: Tensor, w: Tensor | null, b: Tensor | null, dy: Tensor): Tensor[] {
  const { mean, invstd } = batchNormStats(x, EPS);
  const y = batchNormElemt(x, w, b, mean, invstd);
  const r = batchNormBackwardReduce(dy, x, mean, invstd);
  const dx = batchNormBackwardElemt(dy, x, mean, invstd, w, r.sumDy, r.sumDyXmu, M(x));
  return [mean, invstd, y, r.sumDy, r.sumDyXmu, r.dweight, r.dbias, dx];
}

const cases: Case[] = [
  { name: 'batchNormStats', inputs: [constant(4, 3, 5, 5)], fn: (x) => Object.values(batchNormStats(x!, EPS)) },
  { name: 'batchNormStats on [N, C] with an offset', inputs: [{ shape: [64, 7], data: Array.from({ length: 448 }, (_, i) => 3 + Math.sin(i)) }],
    fn: (x) => Object.values(batchNormStats(x!, 1e-3)) },
  { name: 'batchNormElemt, given statistics', inputs: [constant(3, 4, 6), constant(4), constant(4), constant(4), positive(4)],
    fn: (x, w, b, m, s) => batchNormElemt(x!, w!, b!, m!, s!) },
  { name: 'batchNormElemt without weight and bias', inputs: [constant(2, 3, 3, 3), constant(3), positive(3)],
    fn: (x, m, s) => batchNormElemt(x!, null, null, m!, s!) },
  { name: 'batchNormBackwardReduce', inputs: [constant(4, 3, 5, 5), constant(4, 3, 5, 5), constant(3), positive(3)],
    fn: (dy, x, m, s) => Object.values(batchNormBackwardReduce(dy!, x!, m!, s!)) },
  { name: 'batchNormBackwardElemt, count over two ranks', inputs: [constant(3, 2, 4), constant(3, 2, 4), constant(2), positive(2),
    constant(2), constant(2), constant(2)],
    fn: (dy, x, m, s, w, sDy, sDyXmu) => batchNormBackwardElemt(dy!, x!, m!, s!, w!, sDy!, sDyXmu!, 2 * M(x!) + 5) },
  { name: 'batchNormUpdateRunning_ with a counter', inputs: [constant(5), positive(5), constant(5), positive(5)],
    fn: (rm, rv, m, s) => {
      const counter = tensor(4, { dtype: 'int64', device: rm!.device });
      batchNormUpdateRunning_(rm!, rv!, m!, s!, { count: 12, momentum: 0.3, numBatchesTracked: counter });
      return [rm!, rv!, counter];
    } },
  { name: 'batchNormGatherStats of three ranks', inputs: [constant(3, 4), positive(3, 4)],
    fn: (m, s) => Object.values(batchNormGatherStats(m!, s!, tensor([6, 2, 9], { dtype: m!.dtype, device: m!.device }), EPS)) },
];
// A convolution's output (blocked on 'cpu'): every part reads it and y and dx keep its layout.
const onConvCases: Case[] = [
  { name: 'every part on a convolution output, with weight and bias', inputs: [constant(2, 3, 7, 7), constant(16, 3, 3, 3),
    constant(16), constant(16), constant(2, 3, 7, 7)],
    fn: (a, k, w, b, a2) => allParts(conv2d(a!, k!, null, { padding: 1 }), w!, b!, conv2d(a2!, k!, null, { padding: 1 })) },
  { name: 'every part on a convolution output with 10 channels (padded blocks), dy plain', inputs: [constant(2, 3, 6, 6),
    constant(10, 3, 3, 3), constant(2, 10, 4, 4)],
    fn: (a, k, dy) => allParts(conv2d(a!, k!), null, null, dy!) },
];
paritySuite('ops parity: the batch-norm parts', cases);
paritySuite('ops parity: the batch-norm parts on convolution outputs', onConvCases, [['Conv2D', 'float32']]);
for (const h of HALF_TYPES) {
  paritySuite(`ops parity [${h}]: the batch-norm parts`, cases, [['BatchNormStats', h]], h);
  paritySuite(`ops parity [${h}]: the batch-norm parts on convolution outputs`, onConvCases, [['Conv2D', h], ['BatchNormStats', h]], h);
}

/**
 * SyncBatchNorm's forward and backward (torch/nn/modules/_functions.py) over simulated ranks,
 * each holding a slice of the batch along dim 0: an all-gather becomes a stack, an all-reduce a sum.
 */
interface SyncOpts { sizes: number[]; runningMean: Tensor; runningVar: Tensor; momentum: number }
type SyncState = { parts: Tensor[]; mean: Tensor; invstd: Tensor; total: number };
const twoRankBatchNorm = defineFunction({
  name: 'twoRankBatchNorm',
  forward(ctx: Ctx<SyncState>, x: Tensor, weight: Tensor, bias: Tensor, o: SyncOpts) {
    let at = 0;
    const parts = o.sizes.map((n) => { const p = narrow(x, 0, at, n); at += n; return p; });
    const local = parts.map((p) => batchNormStats(p, EPS));
    const counts = parts.map(M);
    const total = counts.reduce((a, b) => a + b, 0);
    const { mean, invstd } = batchNormGatherStats(stack(local.map((s) => s.mean)), stack(local.map((s) => s.invstd)),
      tensor(counts, { dtype: x.dtype, device: x.device }), EPS);
    batchNormUpdateRunning_(o.runningMean, o.runningVar, mean, invstd, { count: total, momentum: o.momentum, eps: EPS });
    ctx.save(weight);
    Object.assign(ctx, { parts: parts.map((p) => ctx.keep(p)), mean: ctx.keep(mean), invstd: ctx.keep(invstd), total });
    return cat(parts.map((p) => batchNormElemt(p, weight, bias, mean, invstd)), 0);
  },
  backward(ctx, g) {
    const [weight] = ctx.saved as [Tensor];
    const { parts, mean, invstd, total } = ctx;
    let at = 0;
    const gs = parts.map((p) => { const r = narrow(g!, 0, at, p.shape[0]!); at += p.shape[0]!; return r; });
    const reduced = parts.map((p, i) => batchNormBackwardReduce(gs[i]!, p, mean, invstd));
    const allReduce = (k: 'sumDy' | 'sumDyXmu' | 'dweight' | 'dbias') => sum(stack(reduced.map((r) => r[k])), [0]);
    const [sumDy, sumDyXmu] = [allReduce('sumDy'), allReduce('sumDyXmu')];
    const dx = cat(parts.map((p, i) => batchNormBackwardElemt(gs[i]!, p, mean, invstd, weight, sumDy, sumDyXmu, total)), 0);
    return [dx, allReduce('dweight'), allReduce('dbias'), null];
  },
});

const maxDiff = (a: Tensor, b: Tensor) => {
  const [x, y] = [Array.from(a.toTypedArray()), b.toTypedArray()];
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
};

describe('two simulated ranks composed as SyncBatchNorm equal one batchNorm over the whole batch (ts, float64)', () => {
  for (const [shape, sizes] of [[[5, 3, 4, 4], [2, 3]], [[7, 4], [6, 1]], [[6, 2, 5], [1, 5]]] as [number[], number[]][]) {
    it(`${JSON.stringify(shape)} split ${sizes.join(' + ')}: y, dx, dweight, dbias and the running statistics`, () => {
      manualSeed(21);
      const C = shape[1]!;
      const opts = { dtype: 'float64' as const, requiresGrad: true };
      const x = randn(shape, opts).mul(1.5).add(0.7).detach().requiresGrad_(), w = randn([C], opts), b = randn([C], opts);
      const dy = randn(shape, { dtype: 'float64' });
      const [rm1, rv1, rm2, rv2] = [zeros([C], { dtype: 'float64' }), randn([C], { dtype: 'float64' }).abs(), zeros([C], { dtype: 'float64' }), zeros([C], { dtype: 'float64' })];
      rv2.copy_(rv1);
      const ySync = twoRankBatchNorm(x, w, b, { sizes, runningMean: rm1, runningVar: rv1, momentum: 0.2 });
      const yOne = batchNorm(x, rm2, rv2, w, b, { training: true, momentum: 0.2 });
      const gSync = grad(ySync, [x, w, b], { gradOutputs: [dy] });
      const gOne = grad(yOne, [x, w, b], { gradOutputs: [dy] });
      expect(maxDiff(ySync, yOne)).toBeLessThan(1e-12);
      gSync.forEach((g, i) => expect(maxDiff(g!, gOne[i]!), `gradient ${i}`).toBeLessThan(1e-12));
      expect(maxDiff(rm1, rm2)).toBeLessThan(1e-14);
      expect(maxDiff(rv1, rv2)).toBeLessThan(1e-12);
    });
  }
});

describeBackends(describe, 'two simulated ranks composed as SyncBatchNorm, against ts float64', (device) => {
  it('forward, gradients of x, weight and bias, and the running statistics (checkParity)', () => {
    manualSeed(22);
    const data = (shape: number[]) => randn(shape, { dtype: 'float64' }).toTypedArray();
    const x = fromTypedArray(Float32Array.from(data([5, 6, 3, 3])), [5, 6, 3, 3], { requiresGrad: true });
    const w = fromTypedArray(Float32Array.from(data([6])), [6], { requiresGrad: true });
    const b = fromTypedArray(Float32Array.from(data([6])), [6], { requiresGrad: true });
    const rm = fromTypedArray(new Float32Array(6), [6]), rv = fromTypedArray(new Float32Array(6).fill(1), [6]);
    expect(checkParity((xx, ww, bb, m, v) => [twoRankBatchNorm(xx!, ww!, bb!, { sizes: [3, 2], runningMean: m!, runningVar: v!, momentum: 0.1 }), m!, v!],
      [x, w, b, rm, rv], { backends: ['ts', device] })).toBe(true);
  });
});

describe('the batch-norm parts refuse what they cannot do', () => {
  it('names the part and the argument', () => {
    const x = randn([2, 3, 4], { dtype: 'float64' }), v = randn([3], { dtype: 'float64' });
    expect(() => batchNormStats(randn([3], { dtype: 'float64' }))).toThrow(/batchNormStats: expected x of shape \[N, C, \*\], got \[3\]/);
    expect(() => batchNormElemt(x, randn([4], { dtype: 'float64' }), null, v, v)).toThrow(/batchNormElemt: weight of shape \[4\] must have shape \[3\]/);
    expect(() => batchNormBackwardReduce(randn([2, 3, 5], { dtype: 'float64' }), x, v, v)).toThrow(/batchNormBackwardReduce: dy \[2, 3, 5\] must match x \[2, 3, 4\]/);
    expect(() => batchNormBackwardElemt(x, x, v, v, null, v, v, 0)).toThrow(/batchNormBackwardElemt: count must be an integer >= 1/);
    expect(() => batchNormUpdateRunning_(v, v, v, randn([2], { dtype: 'float64' }), { count: 4 }))
      .toThrow(/batchNormUpdateRunning_: invstd of shape \[2\] must be a vector like runningMean \[3\]/);
    expect(() => batchNormUpdateRunning_(v, v, v, v, { count: 1 })).toThrow(/count must be an integer >= 2/);
    expect(() => batchNormGatherStats(v, v, v)).toThrow(/batchNormGatherStats: means and invstds must be \[R, C\]/);
    // Recording a gradient through a part would silently give none: refused.
    expect(() => batchNormStats(randn([2, 3], { dtype: 'float64', requiresGrad: true }))).toThrow(/batchNormStats: 'x' requires grad/);
  });
});
