/**
 * bfloat16 and float16 on the 'cpu' backend for the accumulating kernel families, against the
 * 'ts' reference in the same dtype: matmul and conv (bfloat16: oneDNN's bf16 primitives), pooling,
 * batch norm (float32 statistics for half input, per-channel operands float32 or half), softmax,
 * within the type's tolerance (TOL: bfloat16 atol 1e-2 rtol 1.6e-2, float16 atol 1e-3 rtol 2e-3),
 * and the optimizer steps, bit-identical; pooling, softmax, batch norm and the optimizer steps on
 * 'cuda-emu' too (the 'cuda' kernels compiled for the host), and on 'cuda:0' in the GPU kit. Then
 * ops forward and backward through checkParity, and bfloat16 conv, matmul and batch norm against
 * the float64 value of the same inputs.
 */
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, avgPool2d, backends, batchNorm, conv2d, conv2dFused, exp, fromTypedArray, logSoftmax, matmul, maxPool2d,
  mean, mul, softmax, sum, tanh, type Conv2DParams, type DType, type HalfDType, type Pool2DParams, type Raw, type Tensor,
} from '@nodegrad/autograd';
import { checkParity } from '@nodegrad/autograd/testing';
import {
  cpu, expectClose, expectIdentical, expectKernel, HALVES, DEVICES_UNDER_TEST, helpersFor, normals, pair, read, runBoth, skipReason, TOL, ts,
  type Pair, type Tol,
} from './half_util.js';

const suite = skipReason ? describe.skip : describe;
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** Normal inputs of `shape` on both backends, from a seed. */
const rand = (shape: number[], dtype: DType, seed: number, scale = 1): Pair =>
  pair(normals(size(shape), seed, scale), shape, dtype);
/** The float32 statistics batch norm makes for half input: the same double sums on both sides. */
const STATS: Tol = { atol: 1e-5, rtol: 1e-5 };
const CONV: Conv2DParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };

suite(`cpu bfloat16 matmul and convolution on oneDNN's bf16 primitives${skipReason}`, () => {
  const dt = 'bfloat16';
  it('BatchMatMul with each transpose, and an empty inner dim', () => {
    const a = rand([3, 17, 33], dt, 1), b = rand([3, 33, 9], dt, 2), at = rand([3, 33, 17], dt, 3), bt = rand([3, 9, 33], dt, 4);
    expectKernel('BatchMatMul', (on) => [on(a), on(b), false, false], TOL[dt]);
    expectKernel('BatchMatMul', (on) => [on(at), on(bt), true, true], TOL[dt]);
    expectKernel('BatchMatMul', (on) => [on(a), on(bt), false, true], TOL[dt]);
    expectKernel('BatchMatMul', (on) => [on(rand([2, 4, 0], dt, 5)), on(rand([2, 0, 3], dt, 6)), false, false]);
  });

  it('Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter: padded, strided and dilated, grouped', () => {
    const cases: { x: number[]; w: number[]; p: Conv2DParams }[] = [
      { x: [2, 8, 9, 9], w: [16, 8, 3, 3], p: CONV },
      { x: [2, 6, 11, 10], w: [4, 3, 3, 2], p: { stride: [2, 1], padding: [1, 0], dilation: [2, 1], groups: 2 } },
      { x: [1, 3, 7, 7], w: [5, 3, 1, 1], p: { ...CONV, padding: [0, 0] } },
    ];
    cases.forEach((c, i) => {
      const x = rand(c.x, dt, 10 + i), w = rand(c.w, dt, 20 + i, 0.3);
      const y = runBoth('Conv2D', (on) => [on(x), on(w), c.p]);
      const yShape = (y.ts as Raw).shape as number[];
      const dy = rand(yShape, dt, 30 + i);
      expectKernel('Conv2D', (on) => [on(x), on(w), c.p], TOL[dt]);
      expectKernel('Conv2DBackpropInput', (on) => [on(dy), on(w), c.x, c.p], TOL[dt]);
      expectKernel('Conv2DBackpropFilter', (on) => [on(x), on(dy), c.w, c.p], TOL[dt]);
    });
  });

  it('Conv2DFused (bias in bfloat16 or float32, residual, relu) as the composite of Conv2D, Add and Relu', () => {
    const x = rand([2, 8, 6, 6], dt, 40), w = rand([8, 8, 3, 3], dt, 41, 0.3), r = rand([2, 8, 6, 6], dt, 42);
    for (const biasType of ['bfloat16', 'float32'] as const) {
      const b = rand([8], biasType, 43);
      const got = cpu().kernels.Conv2DFused!(x.cpu, w.cpu, b.cpu, r.cpu, { ...CONV, relu: true });
      expect([got.dtype, got.shape]).toEqual([dt, [2, 8, 6, 6]]);
      // The reference in float32 on 'ts' (the bf16 inputs are exact in it), rounded nowhere before the end.
      const k = ts().kernels, f = (t: Raw) => k.Cast(t, 'float32');
      const bias = { ...f(b.ts), shape: [1, 8, 1, 1] };
      const want = k.Relu(k.Add(k.Add(k.Conv2D(f(x.ts), f(w.ts), CONV), bias), f(r.ts)));
      expectClose(read(cpu(), got), read(ts(), want), TOL[dt], `Conv2DFused, ${biasType} bias`);
    }
  });
});

const POOL: Pool2DParams = { kernel: [3, 2], stride: [2, 2], padding: [1, 1], dilation: [1, 1], ceilMode: true,
  countIncludePad: false };

// On 'cpu' and 'cuda-emu' (half_util.ts DEVICES_UNDER_TEST), and on 'cuda:0' in the GPU kit.
const gpu = backends().find((b) => b.name === 'cuda:0');
const devices: [string, string][] = [...DEVICES_UNDER_TEST, ['cuda:0', gpu?.available ? '' : ` (skipped: ${gpu?.reason ?? "'cuda:0' not registered"})`]];
for (const [device, why] of devices) {
  const dut = helpersFor(device);
  const describeOn = why ? describe.skip : describe;
  const rnd = (shape: number[], dtype: DType, seed: number, scale = 1): Pair => dut.pair(normals(size(shape), seed, scale), shape, dtype);
  describeOn(`half pooling, softmax, batch norm and optimizer steps on '${device}'${why}`, () => {
    for (const dt of HALVES) {
      it(`${dt}: the pooling kernels (max ones bit-identical)`, () => {
        const x = rnd([2, 3, 9, 8], dt, 50), xs = [2, 3, 9, 8];
        const y = runBoth('MaxPool2D', (on) => [on(x), POOL], dut.dev());
        const ys = (y.ts as Raw).shape as number[];
        const dy = rnd(ys, dt, 51);
        dut.expectKernel('MaxPool2D', (on) => [on(x), POOL]);
        dut.expectKernel('MaxPool2DWithIndices', (on) => [on(x), POOL]);
        const idx = dut.pair(read(ts(), ts().kernels.MaxPool2DWithIndices(x.ts, POOL).indices), ys, 'int64');
        dut.expectKernel('MaxPool2DGather', (on) => [on(x), on(idx)]);
        dut.expectKernel('MaxPool2DScatter', (on) => [on(dy), on(idx), xs], TOL[dt]);
        dut.expectKernel('MaxPool2DBackward', (on) => [on(dy), on(x), on(dut.pair(read(ts(), y.ts as Raw), ys, dt)), POOL], TOL[dt]);
        dut.expectKernel('AvgPool2D', (on) => [on(x), POOL], TOL[dt]);
        dut.expectKernel('AvgPool2D', (on) => [on(x), { ...POOL, ceilMode: false, countIncludePad: true }], TOL[dt]);
        dut.expectKernel('AvgPool2DBackward', (on) => [on(dy), xs, POOL], TOL[dt]);
        dut.expectKernel('AdaptiveAvgPool2D', (on) => [on(x), [4, 3]], TOL[dt]);
        dut.expectKernel('AdaptiveAvgPool2DBackward', (on) => [on(rnd([2, 3, 4, 3], dt, 52)), xs], TOL[dt]);
      });

      it(`${dt}: Softmax and LogSoftmax along each axis`, () => {
        const x = rnd([4, 33, 5], dt, 60, 3);
        for (const axis of [0, 1, 2]) {
          dut.expectKernel('Softmax', (on) => [on(x), axis], TOL[dt]);
          dut.expectKernel('LogSoftmax', (on) => [on(x), axis], TOL[dt]);
        }
      });

      for (const chType of [dt, 'float32'] as const) {
        it(`${dt}: the six batch-norm kernels with ${chType} per-channel operands`, () => {
          const x = rnd([4, 5, 6, 3], dt, 70, 2), dy = rnd([4, 5, 6, 3], dt, 71);
          dut.expectKernel('BatchNormStats', (on) => [on(x), 1e-5], STATS);
          const { mean: m, invstd: s } = ts().kernels.BatchNormStats(x.ts, 1e-5);
          expect([m.dtype, s.dtype]).toEqual(['float32', 'float32']);
          const mean = dut.pair(read(ts(), m), [5], chType), invstd = dut.pair(read(ts(), s), [5], chType);
          const w = rnd([5], chType, 72), b = rnd([5], chType, 73);
          dut.expectKernel('BatchNormElemt', (on) => [on(x), on(w), on(b), on(mean), on(invstd)], TOL[dt]);
          dut.expectKernel('BatchNormElemt', (on) => [on(x), null, null, on(mean), on(invstd)], TOL[dt]);
          dut.expectKernel('BatchNormInvstd', (on) => [on(dut.pair([0.5, 1, 2, 4, 0.25], [5], chType)), 1e-3], STATS);
          dut.expectKernel('BatchNormBackwardReduce', (on) => [on(dy), on(x), on(mean), on(invstd)], STATS);
          const r = ts().kernels.BatchNormBackwardReduce(dy.ts, x.ts, mean.ts, invstd.ts);
          const sumDy = dut.pair(read(ts(), r.sumDy), [5], chType), sumDyXmu = dut.pair(read(ts(), r.sumDyXmu), [5], chType);
          dut.expectKernel('BatchNormBackwardElemt', (on) => [on(dy), on(x), on(mean), on(invstd), on(w), on(sumDy), on(sumDyXmu), 72],
            TOL[dt]);
          // The running update in place: half running statistics beside float32 (or half) batch ones.
          const rm = rnd([5], dt, 74), rv = dut.pair([1, 2, 0.5, 3, 0.75], [5], dt), counter = dut.pair([3], [1], 'int64');
          runBoth('BatchNormUpdateRunning', (on) => [on(rm), on(rv), on(counter), on(mean), on(invstd),
            { eps: 1e-5, count: 72, factor: 0.1 }], dut.dev());
          for (const [name, t] of [['runMean', rm], ['runVar', rv]] as const) {
            expect(t.cpu.dtype).toBe(dt);
            expectClose(read(dut.dev(), t.cpu), read(ts(), t.ts), TOL[dt], `BatchNormUpdateRunning ${name}`);
          }
          expect(read(dut.dev(), counter.cpu)).toEqual([4]);
        });
      }

      // The half path's definition (cpu/norm_kernels.cc), however a device reads half operands: the
      // float32 kernels on the widened x, dy and residual, y and dx rounded once. Bit for bit.
      it(`${dt}: batch norm with a residual and a fused ReLU is the float32 kernels' result, rounded once`, () => {
        const dev = dut.dev(), k = dev.kernels;
        const f = (t: Raw) => k.Cast(t, 'float32'), h = (t: Raw) => k.Cast(t, dt);
        const same = (got: Raw, want: Raw, what: string) => {
          expect([got.dtype, got.shape], what).toEqual([want.dtype, want.shape]);
          expectIdentical(read(dev, got), read(dev, want), what);
        };
        const shape = [4, 5, 8, 8]; // 256 elements a channel: the device's sums split them into chunks
        const x = rnd(shape, dt, 80, 2).cpu, dy = rnd(shape, dt, 81).cpu, r = rnd(shape, dt, 82).cpu;
        const w = rnd([5], 'float32', 83).cpu, b = rnd([5], 'float32', 84).cpu;
        const s = k.BatchNormStats(x, 1e-5), s32 = k.BatchNormStats(f(x), 1e-5);
        same(s.mean, s32.mean, 'BatchNormStats.mean');
        same(s.invstd, s32.invstd, 'BatchNormStats.invstd');
        for (const relu of [false, true]) {
          same(k.BatchNormElemt(x, w, b, s.mean, s.invstd, r, relu), h(k.BatchNormElemt(f(x), w, b, s.mean, s.invstd, f(r), relu)),
            `BatchNormElemt, relu ${relu}`);
          const red = k.BatchNormBackwardReduce(dy, x, s.mean, s.invstd, relu, w, b);
          const red32 = k.BatchNormBackwardReduce(f(dy), f(x), s.mean, s.invstd, relu, w, b);
          for (const key of ['sumDy', 'sumDyXmu', 'dweight', 'dbias'] as const) same(red[key], red32[key], `BatchNormBackwardReduce.${key}, relu ${relu}`);
          same(k.BatchNormBackwardElemt(dy, x, s.mean, s.invstd, w, red.sumDy, red.sumDyXmu, 72, relu, b),
            h(k.BatchNormBackwardElemt(f(dy), f(x), s.mean, s.invstd, w, red.sumDy, red.sumDyXmu, 72, relu, b)),
            `BatchNormBackwardElemt, relu ${relu}`);
        }
      });

      it(`${dt}: SGDStep and AdamStep update params and state bit-identically (float32 math, rounded once)`, () => {
        const shapes = [[7, 5], [130], [3, 2, 2]];
        const make = (seed: number, scale = 1) => shapes.map((s, i) => rnd(s, dt, seed + i, scale));
        const ps = make(80), gs = make(90, 0.1), bufs = make(100, 0.05), m = make(110, 0.05), v = make(120, 0.01);
        const vmax = shapes.map((s) => dut.pair(new Float32Array(size(s)).fill(0.02), s, dt));
        const side = (on: (p: Pair) => Raw, l: Pair[]) => l.map(on);
        const before = read(dut.dev(), ps[0]!.cpu);
        for (const firstStep of [true, false]) {
          runBoth('SGDStep', (on) => [side(on, ps), side(on, gs), side(on, bufs),
            { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 1e-2, nesterov: true, maximize: false, firstStep }], dut.dev());
        }
        for (const [step, decoupled] of [[1, false], [2, true], [3, false]] as const) {
          runBoth('AdamStep', (on) => [side(on, ps), side(on, gs), side(on, m), side(on, v), side(on, vmax),
            { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled, amsgrad: true, maximize: step === 2, step }], dut.dev());
        }
        for (const [name, l] of [['params', ps], ['momentum', bufs], ['expAvg', m], ['expAvgSq', v], ['maxExpAvgSq', vmax]] as const) {
          l.forEach((t, i) => expectIdentical(read(dut.dev(), t.cpu), read(ts(), t.ts), `${name}[${i}]`));
        }
        expect(read(dut.dev(), ps[0]!.cpu)).not.toEqual(before);
      });
    }
  });
}

/** A leaf of `shape` in dtype on 'ts', rounded from normals, requiring grad. */
function leaf(shape: number[], dtype: HalfDType | 'float32', seed: number, scale = 1): Tensor {
  return fromTypedArray(normals(size(shape), seed, scale), shape, { dtype, device: 'ts', requiresGrad: true });
}

suite(`cpu half ops forward and backward against 'ts' (checkParity)${skipReason}`, () => {
  const opts = (dt: HalfDType) => ({ backends: ['ts', 'cpu'], ...TOL[dt] });
  for (const dt of HALVES) {
    it(`${dt}: elementwise, reductions, softmax and pooling`, () => {
      const x = leaf([2, 3, 8, 7], dt, 200), y = leaf([2, 3, 8, 7], dt, 201);
      expect(checkParity((a, b) => tanh(mul(exp(mul(a, 0.5)), b)), [x, y], opts(dt))).toBe(true);
      expect(checkParity((a) => [sum(a, [1, 3]), mean(a)], [x], opts(dt))).toBe(true);
      expect(checkParity((a) => [softmax(a, 1), logSoftmax(a, 3)], [x], opts(dt))).toBe(true);
      expect(checkParity((a) => [maxPool2d(a, 3, { stride: 2, padding: 1 }), avgPool2d(a, 2), adaptiveAvgPool2d(a, [3, 2])],
        [x], opts(dt))).toBe(true);
    });

    it(`${dt}: batch norm in training, half input with ${dt} and float32 parameters`, () => {
      const x = leaf([4, 3, 5, 5], dt, 210, 2), w = leaf([3], dt, 211), b = leaf([3], dt, 212);
      expect(checkParity((a, ww, bb) => batchNorm(a, null, null, ww, bb, { training: true }), [x, w, b], opts(dt))).toBe(true);
      // float32 parameters beside half input, as under autocast: their gradients are float32.
      const w32 = leaf([3], 'float32', 211), b32 = leaf([3], 'float32', 212);
      expect(checkParity((a, ww, bb) => batchNorm(a, null, null, ww, bb, { training: true }), [x, w32, b32], opts(dt)))
        .toBe(true);
    });
  }

  it('bfloat16: matmul, conv2d with bias, and conv2dFused', () => {
    const dt = 'bfloat16';
    expect(checkParity((a, b) => matmul(a, b), [leaf([5, 24], dt, 220), leaf([24, 6], dt, 221)], opts(dt))).toBe(true);
    const x = leaf([2, 4, 7, 7], dt, 222), w = leaf([6, 4, 3, 3], dt, 223, 0.3), b = leaf([6], dt, 224);
    expect(checkParity((a, ww, bb) => conv2d(a, ww, bb, { padding: 1, stride: 2 }), [x, w, b], opts(dt))).toBe(true);
    const nograd = [x, w, b].map((t) => t.detach());
    expect(checkParity((a, ww, bb) => conv2dFused(a, ww, bb, { padding: 1, relu: true }), nograd, opts(dt))).toBe(true);
  });
});

suite(`cpu bfloat16 against the float64 value of the same inputs${skipReason}`, () => {
  const dt = 'bfloat16';
  /** The 'cpu' bf16 result and the 'ts' float64 one, on bf16-rounded inputs. */
  const vs64 = (fn: (...t: Tensor[]) => Tensor, inputs: Tensor[]): [number[], number[]] => {
    const on = (device: string, dtype: 'bfloat16' | 'float64') =>
      Array.from(fn(...inputs.map((t) => t.to(device).to(dtype))).toTypedArray());
    return [on('cpu', dt), on('ts', 'float64')];
  };
  it('conv2d, matmul and batch norm are within bfloat16 tolerance of the true value', () => {
    const x = leaf([2, 16, 8, 8], dt, 300).detach(), w = leaf([8, 16, 3, 3], dt, 301, 0.1).detach();
    const [c, c64] = vs64((a, b) => conv2d(a, b, null, { padding: 1 }), [x, w]);
    expectClose(c, c64, TOL[dt], 'conv2d');
    const a = leaf([16, 64], dt, 302).detach(), b = leaf([64, 12], dt, 303, 0.2).detach();
    const [m, m64] = vs64(matmul, [a, b]);
    expectClose(m, m64, TOL[dt], 'matmul');
    const [n, n64] = vs64((t) => batchNorm(t, null, null, null, null, { training: true }), [leaf([8, 4, 6, 6], dt, 304, 3).detach()]);
    expectClose(n, n64, TOL[dt], 'batchNorm');
    // The test can fail: float32 inputs rounded only to bfloat16's 8 bits would not pass at float32's tolerance.
    expect(c.some((v, i) => Math.abs(v - c64[i]!) > 1e-5 + 1e-4 * Math.abs(c64[i]!))).toBe(true);
  });
});
