/**
 * The batch norm kernels on every backend against the 'ts' kernels in float64 on the same
 * (float32-rounded) data: sums within RTOL · a bound of the same size as the terms summed
 * (contract_cases.ts), each part fed the reference's own statistics so that it is checked on its
 * own; statistics accumulated in float64; batchNorm through the op layer; and how the kernels
 * refuse bad input.
 */
import { describe, expect, it } from 'vitest';
import { batchNorm, getBackend, manualSeed, randn, tsBackend, type Raw } from '@nodegrad/autograd';
import { checkParity, describeBackends } from '@nodegrad/autograd/testing';
import { kernelParity, lcg, type Operand } from './contract_cases.js';

const t = tsBackend.kernels;
const EPS = 1e-5;
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f64 = (r: Raw) => r.buf as Float64Array;

// [N, C, *]: 4-D, 3-D, 2-D [N, C], N of 1, C of 1, an offset mean, and sizes for a parallel path.
const CASES: [number[], number][] = [
  [[4, 3, 2, 3], 0], [[1, 2, 5], 0], [[3, 1, 2, 2], 0], [[5, 4], 0], [[2, 3], 0], [[7, 1], 0],
  [[2, 3, 4, 4], 5], [[8, 16, 17, 17], 0], [[64, 40], 1], [[100, 600], 0],
];
// Every combination of weight and bias being given.
const AFFINE: [boolean, boolean][] = [[true, true], [false, false], [true, false], [false, true]];

describeBackends(describe, 'batch norm kernels vs the ts kernels in float64', (device) => {
  const { kernels: k, operand, expectClose, host } = kernelParity(device);
  const rand = lcg(11);
  const op = (shape: readonly number[], f: (i: number) => number = rand) => operand(shape, f);
  /** Channel vectors on both sides, or null on both. */
  const chan = (C: number, on: boolean) => (on ? op([C]) : null);
  const side = (o: Operand | null, s: 'dev' | 'ref') => (o ? o[s] : null);

  it.each(CASES)('BatchNormStats, BatchNormElemt (batch and running statistics), BatchNormInvstd, BatchNormBackwardReduce and BatchNormBackwardElemt, weight/bias given or not: %j', (shape, offset) => {
    const C = shape[1]!, M = size(shape) / C;
    const x = op(shape, () => 2 * rand() + offset), dy = op(shape);
    const st = k().BatchNormStats(x.dev, EPS), stRef = t.BatchNormStats(x.ref, EPS);
    expectClose(st.mean, stRef.mean, 1 + Math.abs(offset), 'mean');
    expectClose(st.invstd, stRef.invstd, 0.1 * Math.max(...f64(stRef.invstd)), 'invstd');
    // Both sides go on from the reference statistics rounded to float32, so each kernel is checked on its own.
    const mean = op([C], (i) => f64(stRef.mean)[i]!);
    const invstd = op([C], (i) => f64(stRef.invstd)[i]!);
    const rm = op([C]), rv = op([C], () => 0.5 + Math.abs(rand()));
    const rInvRef = t.BatchNormInvstd(rv.ref, EPS);
    expectClose(k().BatchNormInvstd(rv.dev, EPS), rInvRef, Math.max(...f64(rInvRef)), 'invstd of the running variance');
    const runInv = op([C], (i) => f64(rInvRef)[i]!);
    for (const [hasW, hasB] of AFFINE) {
      const what = `weight ${hasW}, bias ${hasB}`;
      const w = chan(C, hasW), b = chan(C, hasB);
      for (const [m, is, stats] of [[mean, invstd, 'batch'], [rm, runInv, 'running']] as const) {
        const got = k().BatchNormElemt(x.dev, side(w, 'dev'), side(b, 'dev'), m.dev, is.dev);
        const ref = t.BatchNormElemt(x.ref, side(w, 'ref'), side(b, 'ref'), m.ref, is.ref);
        // y = x * scale + shift in float32: the error scales with |x * scale| + |shift|, which grows with the offset.
        const big = stats === 'batch' ? 1 : Math.max(...f64(is.ref)) * (1 + Math.abs(offset));
        expectClose(got, ref, 2 * (1 + Math.abs(offset)) * big, `y (${what}, ${stats} statistics)`);
      }
      const red = k().BatchNormBackwardReduce(dy.dev, x.dev, mean.dev, invstd.dev);
      const redRef = t.BatchNormBackwardReduce(dy.ref, x.ref, mean.ref, invstd.ref);
      expectClose(red.sumDy, redRef.sumDy, M, `sumDy (${what})`);
      expectClose(red.sumDyXmu, redRef.sumDyXmu, 3 * M * (1 + Math.abs(offset)), `sumDyXmu (${what})`);
      expectClose(red.dweight, redRef.dweight, 3 * M, `dweight (${what})`);
      expectClose(red.dbias, redRef.dbias, M, `dbias (${what})`);
      const sDy = op([C], (i) => f64(redRef.sumDy)[i]!);
      const sDyXmu = op([C], (i) => f64(redRef.sumDyXmu)[i]!);
      const dx = k().BatchNormBackwardElemt(dy.dev, x.dev, mean.dev, invstd.dev, side(w, 'dev'), sDy.dev, sDyXmu.dev, M);
      const dxRef = t.BatchNormBackwardElemt(dy.ref, x.ref, mean.ref, invstd.ref, side(w, 'ref'), sDy.ref, sDyXmu.ref, M);
      expectClose(dx, dxRef, 2, `dx (${what})`);
    }
  });

  it('BatchNormUpdateRunning: running statistics and the counter in place, as on ts', () => {
    for (const [C, count, factor] of [[3, 10, 0.1], [40, 2, 1], [5, 1000, 0.25]] as const) {
      const mean = op([C]), invstd = op([C], () => 0.5 + Math.abs(rand()));
      const rm = op([C]), rv = op([C], () => 0.5 + Math.abs(rand()));
      const counter = getBackend(device).fromArray(Float64Array.of(41), [], 'int64');
      const p = { eps: EPS, count, factor };
      k().BatchNormUpdateRunning(rm.dev, rv.dev, counter, mean.dev, invstd.dev, p);
      t.BatchNormUpdateRunning(rm.ref, rv.ref, null, mean.ref, invstd.ref, p);
      expectClose(rm.dev, rm.ref, 1, `running mean (C ${C})`);
      expectClose(rv.dev, rv.ref, 8, `running variance (C ${C})`);
      expect(host(counter)).toEqual([42]);
    }
  });

  it('accumulates float32 statistics in float64', () => {
    // In float32, 1e8 + 1 rounds back to 1e8, so a float32 running sum would lose all the ones.
    const x = op([1, 1, 1001], (i) => (i === 0 ? 1e8 : 1));
    const r = k().BatchNormStats(x.dev, EPS);
    expect(Math.abs(host(r.mean)[0]! / ((1e8 + 1000) / 1001) - 1)).toBeLessThan(1e-7);
    const ref = t.BatchNormStats(x.ref, EPS);
    expect(Math.abs(host(r.invstd)[0]! / f64(ref.invstd)[0]! - 1)).toBeLessThan(1e-6);
  });

  it('through batchNorm, training and eval, forward and backward agree with ts (checkParity)', () => {
    manualSeed(9);
    const backends = ['ts', device];
    const x = randn([4, 3, 5, 5], { requiresGrad: true });
    const w = randn([3], { requiresGrad: true }), b = randn([3], { requiresGrad: true });
    const rm = randn([3]), rv = randn([3]).abs().add(0.5);
    expect(checkParity((v, ww, bb) => batchNorm(v, null, null, ww, bb, { training: true }), [x, w, b], { backends })).toBe(true);
    expect(checkParity((v) => batchNorm(v, null, null, null, null, { training: true }), [randn([6, 5], { requiresGrad: true })],
      { backends })).toBe(true);
    // Eval's gradient is composed from ops (no backward kernel); dweight and dbias need the Sum
    // kernel (the reduce family), so here only x asks for a gradient.
    const [wc, bc] = [w.detach(), b.detach()];
    expect(checkParity((v, ww, bb, m, s) => batchNorm(v, m, s, ww, bb), [x, wc, bc, rm, rv], { backends })).toBe(true);
  });

  it('rejects bad shapes, counts, counters and float64, naming the kernel', () => {
    const x = op([2, 3, 2]).dev, v = op([3]).dev;
    expect(() => k().BatchNormElemt(x, op([4]).dev, null, v, v))
      .toThrow(/BatchNormElemt: weight of shape \[4\].*\[3\].*\[2, 3, 2\]/);
    expect(() => k().BatchNormStats(op([3]).dev, EPS)).toThrow(/BatchNormStats: .*\[N, C, \*\]/);
    expect(() => k().BatchNormBackwardReduce(op([2, 3, 3]).dev, x, v, v)).toThrow(/BatchNormBackwardReduce: dy \[2, 3, 3\]/);
    expect(() => k().BatchNormBackwardElemt(x, x, v, v, null, v, v, 0)).toThrow(/BatchNormBackwardElemt: count must be a positive integer/);
    expect(() => k().BatchNormUpdateRunning(v, v, null, v, op([2]).dev, { eps: EPS, count: 4, factor: 0.1 }))
      .toThrow(/BatchNormUpdateRunning: invstd of shape \[2\]/);
    expect(() => k().BatchNormUpdateRunning(v, v, null, v, v, { eps: EPS, count: 1, factor: 0.1 })).toThrow(/count must be > 1/);
    expect(() => k().BatchNormUpdateRunning(v, v, v, v, v, { eps: EPS, count: 4, factor: 0.1 }))
      .toThrow(/counter must be a one-element int64 tensor/);
    const x64 = getBackend(device).fromArray(new Float64Array(12), [2, 3, 2], 'float64');
    expect(() => k().BatchNormStats(x64, EPS)).toThrow(/BatchNormStats.*float32/);
  });
}, {
  skip: { ts: 'the reference backend' },
  needs: [['BatchNormStats', 'float32'], ['BatchNormElemt', 'float32'], ['BatchNormInvstd', 'float32'],
    ['BatchNormBackwardReduce', 'float32'], ['BatchNormBackwardElemt', 'float32'], ['BatchNormUpdateRunning', 'float32']],
});
