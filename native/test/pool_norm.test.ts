// The 'cpu' backend's batch norm kernels against the 'ts' backend. Each cpu kernel runs in float32;
// the reference is the ts kernel in float64 on the same (float32-rounded) data; sums must lie
// within RTOL · (the same kernel on |inputs|), a forward-error bound that cancellation cannot
// break. (Pooling's kernels are checked on every backend: packages/autograd/test/contract_pool.test.ts.)
import { describe, expect, it } from 'vitest';
import { backends, batchNorm, getBackend, manualSeed, randn, tsBackend, type Raw } from '@nodegrad/autograd';
import { checkParity } from '@nodegrad/autograd/testing';
import '@nodegrad/native'; // registers the 'cpu' backend

const cpu = backends().find((b) => b.name === 'cpu');
const suite = cpu?.available ? describe : describe.skip;
const why = cpu?.available ? '' : ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`;
const RTOL = 1e-5;

let seed = 11;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const k = () => getBackend('cpu').kernels;
const t = tsBackend.kernels;

/** The same float32 data on 'cpu', as float64 on 'ts', and its |values| in float64 (for bounds). */
interface Operand { cpu: Raw; ref: Raw; abs: Raw }
function operand(shape: readonly number[], f: (i: number) => number = rand): Operand {
  const f32 = Float32Array.from({ length: size(shape) }, (_, i) => f(i));
  return {
    cpu: getBackend('cpu').fromArray(f32, shape, 'float32'),
    ref: { buf: Float64Array.from(f32), shape, dtype: 'float64' },
    abs: { buf: Float64Array.from(f32, Math.abs), shape, dtype: 'float64' },
  };
}
const host = (r: Raw): number[] => Array.from(getBackend('cpu').readSync(r));

/** Within RTOL · bound (a Raw of per-element bounds, or one number for all); exact when bound is 0. */
function expectClose(got: Raw, ref: Raw, bound: Raw | number, what = ''): void {
  expect(got.shape, what).toEqual(ref.shape);
  expect(got.dtype, what).toBe('float32');
  const g = host(got), r = ref.buf as Float64Array;
  for (let i = 0; i < g.length; i++) {
    const b = typeof bound === 'number' ? bound : (bound.buf as Float64Array)[i]!;
    const err = Math.abs(g[i]! - r[i]!);
    if (!(err <= RTOL * b + 1e-30) && !(Number.isNaN(r[i]!) && Number.isNaN(g[i]!)) && g[i] !== r[i]) {
      throw new Error(`${what} element ${i}: got ${g[i]}, expected ${r[i]} (error ${err}, bound ${b})`);
    }
  }
}

suite(`cpu backend: batch norm kernels vs ts${why}`, () => {
  const EPS = 1e-5;
  /** Channel vectors on both sides, or null on both. */
  const chan = (C: number, on: boolean, f: () => number = rand) => (on ? operand([C], f) : null);
  const side = (o: Operand | null, s: 'cpu' | 'ref') => (o ? o[s] : null);
  // [N, C, *]: 4-D, 3-D, 2-D [N, C], N of 1, C of 1, an offset mean, and sizes for the OpenMP path.
  const CASES: [number[], number][] = [
    [[4, 3, 2, 3], 0], [[1, 2, 5], 0], [[3, 1, 2, 2], 0], [[5, 4], 0], [[2, 3], 0], [[7, 1], 0],
    [[2, 3, 4, 4], 5], [[8, 16, 17, 17], 0], [[64, 40], 1], [[100, 600], 0],
  ];
  // Every combination of weight and bias being given.
  const AFFINE: [boolean, boolean][] = [[true, true], [false, false], [true, false], [false, true]];

  it.each(CASES)('BatchNormStats, BatchNormElemt (batch and running statistics), BatchNormInvstd, BatchNormBackwardReduce and BatchNormBackwardElemt, weight/bias given or not: %j', (shape, offset) => {
    const C = shape[1]!, M = size(shape) / C;
    const x = operand(shape, () => 2 * rand() + offset), dy = operand(shape);
    const st = k().BatchNormStats(x.cpu, EPS), stRef = t.BatchNormStats(x.ref, EPS);
    expectClose(st.mean, stRef.mean, 1 + Math.abs(offset), 'mean');
    expectClose(st.invstd, stRef.invstd, 0.1 * Math.max(...(stRef.invstd.buf as Float64Array)), 'invstd');
    // Both sides go on from the reference statistics rounded to float32, so each kernel is checked on its own.
    const mean = operand([C], (i) => (stRef.mean.buf as Float64Array)[i]!);
    const invstd = operand([C], (i) => (stRef.invstd.buf as Float64Array)[i]!);
    const rm = operand([C]), rv = operand([C], () => 0.5 + Math.abs(rand()));
    const rInv = k().BatchNormInvstd(rv.cpu, EPS), rInvRef = t.BatchNormInvstd(rv.ref, EPS);
    expectClose(rInv, rInvRef, Math.max(...(rInvRef.buf as Float64Array)), 'invstd of the running variance');
    const runInv = operand([C], (i) => (rInvRef.buf as Float64Array)[i]!);
    for (const [hasW, hasB] of AFFINE) {
      const what = `weight ${hasW}, bias ${hasB}`;
      const w = chan(C, hasW), b = chan(C, hasB);
      for (const [m, is, stats] of [[mean, invstd, 'batch'], [rm, runInv, 'running']] as const) {
        const got = k().BatchNormElemt(x.cpu, side(w, 'cpu'), side(b, 'cpu'), m.cpu, is.cpu);
        const ref = t.BatchNormElemt(x.ref, side(w, 'ref'), side(b, 'ref'), m.ref, is.ref);
        // y = x * scale + shift in float32: the error scales with |x * scale| + |shift|, which grows with the offset.
        const big = stats === 'batch' ? 1 : Math.max(...(is.ref.buf as Float64Array)) * (1 + Math.abs(offset));
        expectClose(got, ref, 2 * (1 + Math.abs(offset)) * big, `y (${what}, ${stats} statistics)`);
      }
      const red = k().BatchNormBackwardReduce(dy.cpu, x.cpu, mean.cpu, invstd.cpu);
      const redRef = t.BatchNormBackwardReduce(dy.ref, x.ref, mean.ref, invstd.ref);
      expectClose(red.sumDy, redRef.sumDy, M, `sumDy (${what})`);
      expectClose(red.sumDyXmu, redRef.sumDyXmu, 3 * M * (1 + Math.abs(offset)), `sumDyXmu (${what})`);
      expectClose(red.dweight, redRef.dweight, 3 * M, `dweight (${what})`);
      expectClose(red.dbias, redRef.dbias, M, `dbias (${what})`);
      const sDy = operand([C], (i) => (redRef.sumDy.buf as Float64Array)[i]!);
      const sDyXmu = operand([C], (i) => (redRef.sumDyXmu.buf as Float64Array)[i]!);
      const dx = k().BatchNormBackwardElemt(dy.cpu, x.cpu, mean.cpu, invstd.cpu, side(w, 'cpu'), sDy.cpu, sDyXmu.cpu, M);
      const dxRef = t.BatchNormBackwardElemt(dy.ref, x.ref, mean.ref, invstd.ref, side(w, 'ref'), sDy.ref, sDyXmu.ref, M);
      expectClose(dx, dxRef, 2, `dx (${what})`);
    }
  });

  it('BatchNormUpdateRunning: running statistics and the counter in place, as on ts', () => {
    for (const [C, count, factor] of [[3, 10, 0.1], [40, 2, 1], [5, 1000, 0.25]] as const) {
      const mean = operand([C]), invstd = operand([C], () => 0.5 + Math.abs(rand()));
      const rm = operand([C]), rv = operand([C], () => 0.5 + Math.abs(rand()));
      const counter = getBackend('cpu').fromArray(Float64Array.of(41), [], 'int64');
      const p = { eps: EPS, count, factor };
      k().BatchNormUpdateRunning(rm.cpu, rv.cpu, counter, mean.cpu, invstd.cpu, p);
      t.BatchNormUpdateRunning(rm.ref, rv.ref, null, mean.ref, invstd.ref, p);
      expectClose(rm.cpu, rm.ref, 1, `running mean (C ${C})`);
      expectClose(rv.cpu, rv.ref, 8, `running variance (C ${C})`);
      expect(host(counter)).toEqual([42]);
    }
  });

  it('accumulates float32 statistics in float64', () => {
    // In float32, 1e8 + 1 rounds back to 1e8, so a float32 running sum would lose all the ones.
    const x = operand([1, 1, 1001], (i) => (i === 0 ? 1e8 : 1));
    const r = k().BatchNormStats(x.cpu, EPS);
    expect(Math.abs(host(r.mean)[0]! / ((1e8 + 1000) / 1001) - 1)).toBeLessThan(1e-7);
    const ref = t.BatchNormStats(x.ref, EPS);
    expect(Math.abs(host(r.invstd)[0]! / (ref.invstd.buf as Float64Array)[0]! - 1)).toBeLessThan(1e-6);
  });

  it('through batchNorm, training and eval, forward and backward agree with ts (checkParity)', () => {
    manualSeed(9);
    const x = randn([4, 3, 5, 5], { requiresGrad: true });
    const w = randn([3], { requiresGrad: true }), b = randn([3], { requiresGrad: true });
    const rm = randn([3]), rv = randn([3]).abs().add(0.5);
    expect(checkParity((v, ww, bb) => batchNorm(v, null, null, ww, bb, { training: true }), [x, w, b], { backends: ['ts', 'cpu'] })).toBe(true);
    expect(checkParity((v) => batchNorm(v, null, null, null, null, { training: true }), [randn([6, 5], { requiresGrad: true })],
      { backends: ['ts', 'cpu'] })).toBe(true);
    // Eval's gradient is composed from ops (no backward kernel); dweight and dbias need the Sum
    // kernel (the reduce family), so here only x asks for a gradient.
    const [wc, bc] = [w.detach(), b.detach()];
    expect(checkParity((v, ww, bb, m, s) => batchNorm(v, m, s, ww, bb), [x, wc, bc, rm, rv], { backends: ['ts', 'cpu'] })).toBe(true);
  });

  it('rejects bad shapes, counts, counters and float64, naming the kernel', () => {
    const x = operand([2, 3, 2]).cpu, v = operand([3]).cpu;
    expect(() => k().BatchNormElemt(x, operand([4]).cpu, null, v, v))
      .toThrow(/BatchNormElemt: weight of shape \[4\].*\[3\].*\[2, 3, 2\]/);
    expect(() => k().BatchNormStats(operand([3]).cpu, EPS)).toThrow(/BatchNormStats: .*\[N, C, \*\]/);
    expect(() => k().BatchNormBackwardReduce(operand([2, 3, 3]).cpu, x, v, v)).toThrow(/BatchNormBackwardReduce: dy \[2, 3, 3\]/);
    expect(() => k().BatchNormBackwardElemt(x, x, v, v, null, v, v, 0)).toThrow(/BatchNormBackwardElemt: count must be a positive integer/);
    expect(() => k().BatchNormUpdateRunning(v, v, null, v, operand([2]).cpu, { eps: EPS, count: 4, factor: 0.1 }))
      .toThrow(/BatchNormUpdateRunning: invstd of shape \[2\]/);
    expect(() => k().BatchNormUpdateRunning(v, v, null, v, v, { eps: EPS, count: 1, factor: 0.1 })).toThrow(/count must be > 1/);
    expect(() => k().BatchNormUpdateRunning(v, v, v, v, v, { eps: EPS, count: 4, factor: 0.1 }))
      .toThrow(/counter must be a one-element int64 tensor/);
    const f64 = getBackend('cpu').fromArray(new Float64Array(12), [2, 3, 2], 'float64');
    expect(() => k().BatchNormStats(f64, EPS)).toThrow(/BatchNormStats.*float32/);
  });
});
