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

  it.each(CASES)('BatchNormForward (train and eval) and BatchNormBackward, weight/bias given or not: %j', (shape, offset) => {
    const C = shape[1]!;
    for (const [hasW, hasB] of AFFINE) {
      const what = `weight ${hasW}, bias ${hasB}`;
      const x = operand(shape, () => 2 * rand() + offset), dy = operand(shape);
      const w = chan(C, hasW), b = chan(C, hasB);
      const rm = operand([C]), rv = operand([C], () => 0.5 + Math.abs(rand()));
      for (const training of [true, false]) {
        const p = { training, eps: EPS };
        const got = k().BatchNormForward(x.cpu, side(w, 'cpu'), side(b, 'cpu'), rm.cpu, rv.cpu, p);
        const ref = t.BatchNormForward(x.ref, side(w, 'ref'), side(b, 'ref'), rm.ref, rv.ref, p);
        // y = x * scale + shift in float32: the error scales with |x * scale| + |shift|, which grows with the offset.
        expectClose(got.y, ref.y, 2 * (1 + Math.abs(offset)), `y (${what}, training ${training})`);
        expectClose(got.mean, ref.mean, 1 + Math.abs(offset), `mean (${what})`);
        expectClose(got.invstd, ref.invstd, 0.1 * Math.max(...(ref.invstd.buf as Float64Array)), `invstd (${what})`);
      }
      const fw = t.BatchNormForward(x.ref, side(w, 'ref'), side(b, 'ref'), null, null, { training: true, eps: EPS });
      const mean = operand([C], (i) => (fw.mean.buf as Float64Array)[i]!);
      const invstd = operand([C], (i) => (fw.invstd.buf as Float64Array)[i]!);
      const got = k().BatchNormBackward(dy.cpu, x.cpu, side(w, 'cpu'), mean.cpu, invstd.cpu);
      const ref = t.BatchNormBackward(dy.ref, x.ref, side(w, 'ref'), mean.ref, invstd.ref);
      const M = size(shape) / C;
      expectClose(got.dx, ref.dx, 2, `dx (${what})`);
      expectClose(got.dweight, ref.dweight, 3 * M, `dweight (${what})`);
      expectClose(got.dbias, ref.dbias, M, `dbias (${what})`);
    }
  });

  it('accumulates float32 statistics in float64', () => {
    // In float32, 1e8 + 1 rounds back to 1e8, so a float32 running sum would lose all the ones.
    const x = operand([1, 1, 1001], (i) => (i === 0 ? 1e8 : 1));
    const r = k().BatchNormForward(x.cpu, null, null, null, null, { training: true, eps: EPS });
    expect(Math.abs(host(r.mean)[0]! / ((1e8 + 1000) / 1001) - 1)).toBeLessThan(1e-7);
    const ref = t.BatchNormForward(x.ref, null, null, null, null, { training: true, eps: EPS });
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
    // Eval's gradient is composed from ops (no BatchNormBackward); dweight and dbias need the Sum
    // kernel (the reduce family), so here only x asks for a gradient.
    const [wc, bc] = [w.detach(), b.detach()];
    expect(checkParity((v, ww, bb, m, s) => batchNorm(v, m, s, ww, bb), [x, wc, bc, rm, rv], { backends: ['ts', 'cpu'] })).toBe(true);
  });

  it('rejects bad shapes, missing running statistics in eval mode and float64, naming the kernel', () => {
    const x = operand([2, 3, 2]).cpu;
    expect(() => k().BatchNormForward(x, operand([4]).cpu, null, null, null, { training: true, eps: EPS }))
      .toThrow(/BatchNormForward: weight of shape \[4\].*\[3\].*\[2, 3, 2\]/);
    expect(() => k().BatchNormForward(x, null, null, null, null, { training: false, eps: EPS })).toThrow(/BatchNormForward: eval mode/);
    expect(() => k().BatchNormForward(operand([3]).cpu, null, null, null, null, { training: true, eps: EPS })).toThrow(/\[N, C, \*\]/);
    expect(() => k().BatchNormBackward(operand([2, 3, 3]).cpu, x, null, operand([3]).cpu, operand([3]).cpu))
      .toThrow(/BatchNormBackward: dy \[2, 3, 3\]/);
    const f64 = getBackend('cpu').fromArray(new Float64Array(12), [2, 3, 2], 'float64');
    expect(() => k().BatchNormForward(f64, null, null, null, null, { training: true, eps: EPS })).toThrow(/BatchNormForward.*float32/);
  });
});
