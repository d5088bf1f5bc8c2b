/**
 * A bfloat16 convolution whose operands are held channels last (what oneDNN's AMX kernels leave),
 * where the 'cpu' backend computes it as matmuls (native/src/cpu/conv_gemm.h) because they are
 * the faster, and else with oneDNN's primitives: the weight gradient as one matmul over gathered
 * input taps; the forward as one matmul over gathered taps, and the input gradient as one matmul
 * whose products each input position sums (an unpadded 1x1 convolution's scattered into the
 * strided positions). Each geometry's Conv2DBackpropFilter, Conv2DBackpropInput and Conv2D is
 * checked against the float64 'ts' kernel on the same bfloat16 values: the products are exact in
 * float32, the sums accumulate in float32, and the result is rounded once, so it lies within a
 * bfloat16 step (2^-8) of the exact sum plus a float32 accumulation error far below it.
 */
import { readFileSync } from 'node:fs';
import { expect, it, describe } from 'vitest';
import { conv2d, fromTypedArray, noGrad, type Conv2DParams, type Raw } from '@nodegrad/autograd';
import { nativeLayout } from '@nodegrad/native';
import { cpu, expectClose, normals, put, read, skipReason, ts } from './half_util.js';

const suite = skipReason ? describe.skip : describe;
const amx = (() => {
  try {
    return /\bamx_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
})();

type K = Record<string, (...a: unknown[]) => Raw>;
const kernels = (b: ReturnType<typeof cpu>) => b.kernels as unknown as K;
const params = (stride: number, padding: number, dilation = 1): Conv2DParams =>
  ({ stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation], groups: 1 });

/** A bfloat16 [n, c, h, w] activation on 'cpu' made by a 1x1 convolution, so it has a conv's layout. */
function activation(n: number, c: number, h: number, w: number, seed: number): Raw {
  const seedIn = put(cpu(), normals(n * 4 * h * w, seed), [n, 4, h, w], 'bfloat16');
  const proj = put(cpu(), normals(c * 4, seed + 1, 0.5), [c, 4, 1, 1], 'bfloat16');
  return kernels(cpu()).Conv2D!(seedIn, proj, params(1, 0));
}

type Case = { name: string; n: number; c: number; h: number; w: number; o: number; k: [number, number]; p: Conv2DParams };

function outSize(c: Case): [number, number] {
  const { stride: s, padding: q, dilation: d } = c.p;
  return [Math.floor((c.h + 2 * q[0] - d[0] * (c.k[0] - 1) - 1) / s[0]) + 1, Math.floor((c.w + 2 * q[1] - d[1] * (c.k[1] - 1) - 1) / s[1]) + 1];
}

// All but the last two take the matmul (conv_gemm.cc's rule: 1x1 with C * O > 64 * 64, strided on
// a 16x16 output or smaller, stride 1 on an 8x8 output or smaller); the last two, oneDNN's primitive.
const CASES: Case[] = [
  { name: '3x3, padding 1, on 4x4', n: 2, c: 32, h: 4, w: 4, o: 48, k: [3, 3], p: params(1, 1) },
  { name: '3x3, padding 1, on 7x7', n: 2, c: 32, h: 7, w: 7, o: 48, k: [3, 3], p: params(1, 1) },
  { name: '3x3, padding 1, on 8x8', n: 2, c: 32, h: 8, w: 8, o: 48, k: [3, 3], p: params(1, 1) },
  { name: '3x3, stride 2, padding 1', n: 3, c: 24, h: 10, w: 11, o: 32, k: [3, 3], p: params(2, 1) },
  { name: '1x1 (x itself is the matrix)', n: 2, c: 64, h: 6, w: 6, o: 96, k: [1, 1], p: params(1, 0) },
  { name: '1x1, stride 2', n: 2, c: 64, h: 7, w: 7, o: 96, k: [1, 1], p: params(2, 0) },
  { name: '3x3, dilation 2, padding 2, on 4x4', n: 1, c: 32, h: 4, w: 4, o: 32, k: [3, 3], p: params(1, 2, 2) },
  { name: '3x1, no padding', n: 2, c: 32, h: 6, w: 4, o: 32, k: [3, 1], p: params(1, 0) },
  { name: "3x3 on 9x8 (oneDNN's primitive)", n: 2, c: 32, h: 9, w: 8, o: 48, k: [3, 3], p: params(1, 1) },
  { name: "3x3, stride 2, 34x33 -> 17x17 (oneDNN's primitive)", n: 1, c: 24, h: 34, w: 33, o: 40, k: [3, 3], p: params(2, 1) },
];

suite(`cpu: bfloat16 weight gradient over channels-last activations${skipReason}`, () => {
  for (const c of CASES) {
    it(`${c.name}: Conv2DBackpropFilter matches the float64 reference within a bfloat16 step`, () => {
      const [oh, ow] = outSize(c);
      const x = activation(c.n, c.c, c.h, c.w, 3), dy = activation(c.n, c.o, oh, ow, 5);
      if (amx) expect([nativeLayout(x), nativeLayout(dy)]).toEqual(['nhwc', 'nhwc']);
      const wShape = [c.o, c.c, ...c.k];
      const got = read(cpu(), kernels(cpu()).Conv2DBackpropFilter!(x, dy, wShape, c.p));
      const want = read(ts(), kernels(ts()).Conv2DBackpropFilter!(
        put(ts(), read(cpu(), x), x.shape, 'float64'), put(ts(), read(cpu(), dy), dy.shape, 'float64'), wShape, c.p));
      const scale = Math.max(...want.map(Math.abs));
      expectClose(got, want, { atol: 1e-4 * scale, rtol: 2 ** -8 }, c.name);
      // An autocast weight's gradient in float32: the matmul's float32 sums as they are (the primitive's
      // rounded to bfloat16 first), so within the same step of the reference.
      const wide = kernels(cpu()).Conv2DBackpropFilter!(x, dy, wShape, c.p, 'float32');
      expect(wide.dtype).toBe('float32');
      expectClose(read(cpu(), wide), want, { atol: 1e-4 * scale, rtol: 2 ** -8 }, `${c.name}, float32 dw`);
    });
  }

  it('Conv2DBackpropFilter takes float32 or x\'s own dtype for dw, and names anything else', () => {
    const x = activation(2, 32, 4, 4, 3), dy = activation(2, 48, 4, 4, 5);
    expect(() => kernels(cpu()).Conv2DBackpropFilter!(x, dy, [48, 32, 3, 3], params(1, 1), 'float64'))
      .toThrow("Conv2DBackpropFilter: dtype must be x's (bfloat16) or float32 for a half x, got float64");
    expect(kernels(cpu()).Conv2DBackpropFilter!(x, dy, [48, 32, 3, 3], params(1, 1), 'bfloat16').dtype).toBe('bfloat16');
  });
});

const at = (stride: [number, number], padding: [number, number], dilation: [number, number] = [1, 1]): Conv2DParams =>
  ({ stride, padding, dilation, groups: 1 });

// Which take the matmul (conv_gemm.cc): an unpadded 1x1 kernel's input gradient always, its forward
// when strided or on a 7x7 output or smaller; any larger kernel's forward and input gradient on a
// 7x7 output or smaller. Strides that leave input rows and columns no output reads (whose
// gradient is 0) included.
const GEMM_CASES: Case[] = [
  { name: '1x1 on 7x7', n: 2, c: 48, h: 7, w: 7, o: 80, k: [1, 1], p: params(1, 0) },
  { name: '1x1, stride 2 on 7x7 (the odd rows and columns unread)', n: 2, c: 40, h: 7, w: 7, o: 64, k: [1, 1], p: params(2, 0) },
  { name: '1x1, stride 2 on 8x6 (the last input row unread)', n: 3, c: 24, h: 8, w: 6, o: 32, k: [1, 1], p: params(2, 0) },
  { name: '1x1, strides 3 and 2 on 8x9', n: 2, c: 32, h: 8, w: 9, o: 24, k: [1, 1], p: at([3, 2], [0, 0]) },
  { name: "1x1 on 9x9 (the forward oneDNN's primitive)", n: 2, c: 32, h: 9, w: 9, o: 48, k: [1, 1], p: params(1, 0) },
  { name: "1x1, padding 1 (oneDNN's primitives)", n: 2, c: 32, h: 5, w: 5, o: 48, k: [1, 1], p: params(1, 1) },
  { name: '3x3, padding 1, on 4x4', n: 3, c: 40, h: 4, w: 4, o: 56, k: [3, 3], p: params(1, 1) },
  { name: '3x3, stride 2, padding 1, 9x8 -> 5x4', n: 2, c: 32, h: 9, w: 8, o: 48, k: [3, 3], p: params(2, 1) },
  { name: '3x3, dilation 2, padding 2, on 5x5', n: 2, c: 32, h: 5, w: 5, o: 24, k: [3, 3], p: params(1, 2, 2) },
  { name: '3x1, padding 1 and 0, on 6x4', n: 2, c: 32, h: 6, w: 4, o: 40, k: [3, 1], p: at([1, 1], [1, 0]) },
  { name: "3x3, padding 1, on 8x8 (oneDNN's primitives)", n: 2, c: 32, h: 8, w: 8, o: 48, k: [3, 3], p: params(1, 1) },
];

suite(`cpu: bfloat16 convolution and input gradient of channels-last activations${skipReason}`, () => {
  for (const c of GEMM_CASES) {
    const wShape = [c.o, c.c, ...c.k], xShape = [c.n, c.c, c.h, c.w];
    const weight = () => put(cpu(), normals(wShape.reduce((a, b) => a * b, 1), 9, 0.5), wShape, 'bfloat16');
    const wTs = (w: Raw) => put(ts(), read(cpu(), w), wShape, 'float64');

    it(`${c.name}: Conv2D matches the float64 reference within a bfloat16 step`, () => {
      const x = activation(c.n, c.c, c.h, c.w, 11), w = weight();
      if (amx) expect(nativeLayout(x)).toBe('nhwc');
      const y = kernels(cpu()).Conv2D!(x, w, c.p);
      const want = read(ts(), kernels(ts()).Conv2D!(put(ts(), read(cpu(), x), x.shape, 'float64'), wTs(w), c.p));
      const scale = Math.max(...want.map(Math.abs));
      expectClose(read(cpu(), y), want, { atol: 1e-4 * scale, rtol: 2 ** -8 }, c.name);
    });

    it(`${c.name}: Conv2DBackpropInput matches the float64 reference within a bfloat16 step`, () => {
      const [oh, ow] = outSize(c);
      const dy = activation(c.n, c.o, oh, ow, 7), w = weight();
      if (amx) expect(nativeLayout(dy)).toBe('nhwc');
      const got = read(cpu(), kernels(cpu()).Conv2DBackpropInput!(dy, w, xShape, c.p));
      const want = read(ts(), kernels(ts()).Conv2DBackpropInput!(put(ts(), read(cpu(), dy), dy.shape, 'float64'), wTs(w), xShape, c.p));
      const scale = Math.max(...want.map(Math.abs));
      expectClose(got, want, { atol: 1e-4 * scale, rtol: 2 ** -8 }, c.name);
    });
  }

  it('a weight written in place between two convolutions is not served from its stale reordered copy', () => {
    const x = noGrad(() => conv2d(
      fromTypedArray(normals(2 * 4 * 4 * 4, 3), [2, 4, 4, 4], { device: 'cpu' }).to('bfloat16'),
      fromTypedArray(normals(32 * 4, 4, 0.5), [32, 4, 1, 1], { device: 'cpu' }).to('bfloat16')));
    const w = fromTypedArray(normals(24 * 32 * 9, 5, 0.5), [24, 32, 3, 3], { device: 'cpu' }).to('bfloat16');
    const opts = { padding: 1 };
    const before = noGrad(() => conv2d(x, w, null, opts)).toTypedArray();
    noGrad(() => w.mul_(2));  // exact in bfloat16: every product, sum and rounding doubles
    const after = noGrad(() => conv2d(x, w, null, opts)).toTypedArray();
    expect(Array.from(after)).toEqual(Array.from(before, (v) => 2 * v));
  });
});
