/**
 * batchNorm: outputs and running statistics against a hand computation written here (biased
 * variance to normalize, unbiased for the running variance, momentum 0.1 and the cumulative
 * average), gradcheck in training and eval over 2-D, 3-D and 4-D inputs with and without an
 * affine transform, and gradgradcheck in training (the differentiable composite backward).
 */
import { describe, expect, it } from 'vitest';
import { batchNorm, batchNormFused, grad, manualSeed, randn, zeros, ones, type Tensor } from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const f64 = (shape: readonly number[], requiresGrad = true) => randn(shape, { dtype: 'float64', requiresGrad });

/** Per-channel mean, biased and unbiased variance of an [N, C, *] tensor, by plain loops. */
function channelStats(x: Tensor) {
  const [N, C] = x.shape as [number, number];
  const S = x.size / (N * C), M = N * S, a = x.toTypedArray();
  const at = (n: number, c: number, i: number) => a[(n * C + c) * S + i]!;
  const mean: number[] = [], biased: number[] = [], unbiased: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) s += at(n, c, i);
    const m = s / M;
    let q = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) q += (at(n, c, i) - m) ** 2;
    mean.push(m); biased.push(q / M); unbiased.push(q / (M - 1));
  }
  return { mean, biased, unbiased, S, C };
}

/** (x - mean) / sqrt(var + eps) * w + b per channel. */
function normalizeRef(x: Tensor, mean: number[], v: number[], w: number[] | null, b: number[] | null, eps: number): number[] {
  const { S, C } = channelStats(x);
  return Array.from(x.toTypedArray(), (val, k) => {
    const c = Math.floor(k / S) % C;
    return ((val - mean[c]!) / Math.sqrt(v[c]! + eps)) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
  });
}

function expectArrayClose(actual: ArrayLike<number>, expected: number[], tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(Math.abs(actual[i]! - e)).toBeLessThan(tol * (1 + Math.abs(e))));
}

const arr = (t: Tensor) => Array.from(t.toTypedArray());

describe('batchNorm forward and running statistics', () => {
  it('training normalizes with the biased batch variance and updates running stats with the unbiased one', () => {
    manualSeed(1);
    const w = f64([3], false), b = f64([3], false);
    const rm = f64([3], false), rv = ones([3], { dtype: 'float64' }).add(f64([3], false).square());
    let expMean = arr(rm), expVar = arr(rv);
    for (const shape of [[4, 3, 2, 2], [2, 3, 5, 1]]) {
      const x = f64(shape, false).mul(2).add(0.5);
      const st = channelStats(x);
      const y = batchNorm(x, rm, rv, w, b, { training: true });
      expectArrayClose(arr(y), normalizeRef(x, st.mean, st.biased, arr(w), arr(b), 1e-5));
      expMean = expMean.map((r, c) => 0.9 * r + 0.1 * st.mean[c]!);
      expVar = expVar.map((r, c) => 0.9 * r + 0.1 * st.unbiased[c]!);
      expectArrayClose(arr(rm), expMean);
      expectArrayClose(arr(rv), expVar);
    }
  });

  it('eval normalizes with the running statistics and leaves them alone', () => {
    manualSeed(2);
    const x = f64([3, 2, 4], false), w = f64([2], false), b = f64([2], false);
    const rm = f64([2], false), rv = f64([2], false).square().add(0.5);
    const before = [arr(rm), arr(rv), rm.version];
    const y = batchNorm(x, rm, rv, w, b, { training: false, eps: 1e-3 });
    expectArrayClose(arr(y), normalizeRef(x, arr(rm), arr(rv), arr(w), arr(b), 1e-3));
    expect([arr(rm), arr(rv), rm.version]).toEqual(before);
    // Without weight and bias: plain standardization.
    expectArrayClose(arr(batchNorm(x, rm, rv)), normalizeRef(x, arr(rm), arr(rv), null, null, 1e-5));
  });

  it('momentum null is the cumulative average over the batches counted by numBatchesTracked', () => {
    manualSeed(3);
    const rm = zeros([2], { dtype: 'float64' }), rv = ones([2], { dtype: 'float64' });
    const counter = zeros([], { dtype: 'int64' });
    const means: number[][] = [], vars: number[][] = [];
    for (let k = 0; k < 3; k++) {
      const x = f64([3, 2, 2], false).add(k);
      const st = channelStats(x);
      means.push(st.mean); vars.push(st.unbiased);
      batchNorm(x, rm, rv, null, null, { training: true, momentum: null, numBatchesTracked: counter });
    }
    const avg = (rows: number[][]) => rows[0]!.map((_, c) => rows.reduce((s, r) => s + r[c]!, 0) / rows.length);
    expectArrayClose(arr(rm), avg(means));
    expectArrayClose(arr(rv), avg(vars));
    expect(counter.dtype).toBe('int64');
    expect(counter.item()).toBe(3);
  });

  it('the counter advances with momentum 0.1 too; each update bumps the buffers\' version', () => {
    manualSeed(4);
    const rm = zeros([2], { dtype: 'float64' }), rv = ones([2], { dtype: 'float64' });
    const counter = zeros([1], { dtype: 'int64' });
    const x = f64([4, 2], false);
    const v0 = [rm.version, rv.version, counter.version];
    batchNorm(x, rm, rv, null, null, { training: true, numBatchesTracked: counter });
    expect(counter.item()).toBe(1);
    expect([rm.version, rv.version, counter.version]).toEqual(v0.map((v) => v + 1));
    const st = channelStats(x);
    expectArrayClose(arr(rm), st.mean.map((m) => 0.1 * m));
    batchNorm(x, rm, rv, null, null, { training: false, numBatchesTracked: counter });
    expect(counter.item()).toBe(1);
  });

  it('momentum 1 copies the batch statistics; no running stats means nothing to update', () => {
    manualSeed(5);
    const x = f64([5, 3], false);
    const rm = zeros([3], { dtype: 'float64' }), rv = zeros([3], { dtype: 'float64' });
    batchNorm(x, rm, rv, null, null, { training: true, momentum: 1 });
    const st = channelStats(x);
    expectArrayClose(arr(rm), st.mean);
    expectArrayClose(arr(rv), st.unbiased);
    const y = batchNorm(x, null, null, null, null, { training: true });
    expectArrayClose(arr(y), normalizeRef(x, st.mean, st.biased, null, null, 1e-5));
  });

  it('a float32 input is normalized to float32 accuracy', () => {
    manualSeed(6);
    const x = f64([4, 2, 3], false);
    const y = batchNorm(x.to('float32'), null, null, null, null, { training: true });
    expect(y.dtype).toBe('float32');
    const st = channelStats(x);
    expectArrayClose(arr(y), normalizeRef(x, st.mean, st.biased, null, null, 1e-5), 1e-5);
  });
});

describe('batchNorm gradients', () => {
  const shapes = [[5, 3], [3, 2, 4], [2, 2, 3, 2]];

  it.each(shapes)('gradcheck in training with weight and bias: %j', (...shape) => {
    manualSeed(10);
    const C = shape[1]!;
    const inputs = [f64(shape), f64([C]), f64([C])];
    expect(gradcheck((x, w, b) => batchNorm(x, null, null, w, b, { training: true }), inputs)).toBe(true);
  });

  it.each(shapes)('gradcheck in training without an affine transform: %j', (...shape) => {
    manualSeed(11);
    expect(gradcheck((x) => batchNorm(x, null, null, null, null, { training: true, eps: 1e-3 }), [f64(shape)])).toBe(true);
  });

  it('gradcheck in training with running stats present (they do not change the gradient)', () => {
    manualSeed(12);
    const rm = zeros([2], { dtype: 'float64' }), rv = ones([2], { dtype: 'float64' });
    expect(gradcheck((x, w) => batchNorm(x, rm, rv, w, null, { training: true }), [f64([3, 2, 2]), f64([2])])).toBe(true);
  });

  it.each(shapes)('gradcheck in eval: %j', (...shape) => {
    manualSeed(13);
    const C = shape[1]!;
    const rm = f64([C], false), rv = f64([C], false).square().add(0.3);
    expect(gradcheck((x, w, b) => batchNorm(x, rm, rv, w, b), [f64(shape), f64([C]), f64([C])])).toBe(true);
  });

  it('the composite backward (createGraph) equals the BatchNormBackwardReduce/BatchNormBackwardElemt kernels', () => {
    manualSeed(14);
    const x = f64([3, 2, 2, 2]), w = f64([2]), b = f64([2]);
    const y = batchNorm(x, null, null, w, b, { training: true });
    const dy = f64(y.shape, false);
    const fused = grad(y, [x, w, b], { gradOutputs: [dy], retainGraph: true });
    const composite = grad(y, [x, w, b], { gradOutputs: [dy], createGraph: true });
    expect(composite[0]!.requiresGrad).toBe(true);
    fused.forEach((g, i) => expectArrayClose(arr(g!), arr(composite[i]!), 1e-12));
  });

  it('gradgradcheck in training with weight and bias', () => {
    manualSeed(15);
    expect(gradgradcheck((x, w, b) => batchNorm(x, null, null, w, b, { training: true }),
      [f64([3, 2, 2]), f64([2]), f64([2])])).toBe(true);
  });

  it('gradgradcheck in training, 4-D without affine (fast mode), and in eval', () => {
    manualSeed(16);
    expect(gradgradcheck((x) => batchNorm(x, null, null, null, null, { training: true }),
      [f64([2, 3, 2, 3])], undefined, { fastMode: true })).toBe(true);
    const rm = f64([2], false), rv = f64([2], false).square().add(0.3);
    expect(gradgradcheck((x, w) => batchNorm(x, rm, rv, w, null).square(), [f64([2, 2, 2]), f64([2])])).toBe(true);
  });
});

describe('batchNormFused: relu?(batchNorm(x) + residual?)', () => {
  const composed = (x: Tensor, w: Tensor | null, b: Tensor | null, r: Tensor | null, relu: boolean,
    stats: { rm: Tensor | null; rv: Tensor | null; training: boolean }) => {
    let y = batchNorm(x, stats.rm, stats.rv, w, b, { training: stats.training });
    if (r) y = y.add(r);
    return relu ? y.relu() : y;
  };

  it.each([
    ['relu, training (the mask recomputed from x in the kernels)', false, true, true],
    ['residual and relu, training', true, true, true],
    ['residual without relu, training', true, false, true],
    ['residual and relu, eval', true, true, false],
  ] as const)('%s: the values and gradients of the ops composed', (_name, withResidual, relu, training) => {
    manualSeed(21);
    const x = f64([3, 4, 3, 2]), w = f64([4]), b = f64([4]), r = withResidual ? f64([3, 4, 3, 2]) : null;
    const stats = () => ({ rm: training ? null : f64([4], false).mul(0.1), rv: training ? null : ones([4], { dtype: 'float64' }), training });
    const s = stats();
    const y = batchNormFused(x, s.rm, s.rv, w, b, { training, residual: r, relu });
    const yc = composed(x, w, b, r, relu, s);
    expectArrayClose(arr(y), arr(yc), 1e-12);
    const dy = f64(y.shape, false);
    const inputs = [x, w, b, ...(r ? [r] : [])];
    const g1 = grad(y, inputs, { gradOutputs: [dy] });
    const g2 = grad(yc, inputs, { gradOutputs: [dy] });
    g1.forEach((g, i) => expectArrayClose(arr(g!), arr(g2[i]!), 1e-12));
    // Some elements must be cut by the ReLU, or the mask was not tested.
    if (relu) expect(arr(y).filter((v) => v === 0).length).toBeGreaterThan(4);
  });

  it('gradcheck in training, with and without a residual; gradgradcheck through the ReLU', () => {
    manualSeed(22);
    const f = (x: Tensor, w: Tensor, b: Tensor) => batchNormFused(x, null, null, w, b, { training: true, relu: true });
    expect(gradcheck(f, [f64([3, 2, 2, 2]), f64([2]), f64([2])])).toBe(true);
    const g = (x: Tensor, w: Tensor, b: Tensor, r: Tensor) =>
      batchNormFused(x, null, null, w, b, { training: true, residual: r, relu: true });
    expect(gradcheck(g, [f64([3, 2, 2]), f64([2]), f64([2]), f64([3, 2, 2])])).toBe(true);
    expect(gradgradcheck(f, [f64([3, 2, 2]), f64([2]), f64([2])])).toBe(true);
  });

  it('a residual that broadcasts, or of another dtype, is added as a separate op (add\'s rules)', () => {
    const x = randn([2, 3, 2]), r = randn([1, 3, 1]);
    const y = batchNormFused(x, null, null, null, null, { training: true, residual: r, relu: true });
    expect(y.shape).toEqual([2, 3, 2]);
    expectArrayClose(arr(y), arr(batchNorm(x, null, null, null, null, { training: true }).add(r).relu()), 1e-7);
    expect(() => batchNormFused(x, null, null, null, null, { training: true, residual: r.to('float64') }))
      .toThrow(/add: 'input' has dtype float32 but 'other' has dtype float64/);
  });

  it('names itself and the shapes in errors', () => {
    const x = randn([2, 3, 4]);
    expect(() => batchNormFused(x, null, null, randn([4]), null, { training: true }))
      .toThrow(/batchNormFused: weight of shape \[4\] must have shape \[3\]/);
  });
});
