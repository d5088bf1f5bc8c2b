/**
 * A strided bfloat16 convolution's input gradient over a channels-last dy, which the 'cpu' backend
 * computes as one stride-1 forward convolution per phase of the input (native/src/cpu/conv_phases.h);
 * and the weight gradient of a strided one over few input channels (an image stem), computed with
 * the phases as channels (space to depth), checked the same way below.
 * each phase's rows and columns receive only the taps congruent to them modulo the stride. Checked
 * against the float64 'ts' kernel on the same bfloat16 values, within a bfloat16 step: products
 * exact in float32, sums in float32, one rounding. The geometries cover phases of one and of
 * several taps, phases of different sizes (odd inputs), phases that receive no tap (their gradient
 * is 0), strides that differ per dimension, and geometries the path declines (a phase would need
 * negative padding), which oneDNN's primitive computes.
 */
import { expect, it, describe } from 'vitest';
import { nativeLayout } from '@nodegrad/native';
import type { Conv2DParams, Raw } from '@nodegrad/autograd';
import { cpu, expectClose, normals, put, read, skipReason, ts } from './half_util.js';

const suite = skipReason ? describe.skip : describe;

type K = Record<string, (...a: unknown[]) => Raw>;
const kernels = (b: ReturnType<typeof cpu>) => b.kernels as unknown as K;
const at = (stride: [number, number], padding: [number, number]): Conv2DParams =>
  ({ stride, padding, dilation: [1, 1], groups: 1 });

/** A bfloat16 [n, c, h, w] activation on 'cpu' made by a 1x1 convolution, so it has a conv's layout. */
function activation(n: number, c: number, h: number, w: number, seed: number): Raw {
  const seedIn = put(cpu(), normals(n * 4 * h * w, seed), [n, 4, h, w], 'bfloat16');
  const proj = put(cpu(), normals(c * 4, seed + 1, 0.5), [c, 4, 1, 1], 'bfloat16');
  return kernels(cpu()).Conv2D!(seedIn, proj, at([1, 1], [0, 0]));
}

type Case = { name: string; n: number; c: number; h: number; w: number; o: number; k: [number, number]; p: Conv2DParams };

const outSize = (c: Case): [number, number] => [0, 1].map((i) =>
  Math.floor((([c.h, c.w][i]!) + 2 * c.p.padding[i]! - c.k[i]!) / c.p.stride[i]!) + 1) as [number, number];

// Every output is larger than 7x7: on smaller ones the matmul path takes the input gradient
// (native/src/cpu/conv_gemm.h), tested in conv_nhwc_gemm.test.ts.
const CASES: Case[] = [
  { name: '3x3, stride 2, padding 1, 16x16 -> 8x8 (phases of 1, 2 and 4 taps)', n: 2, c: 32, h: 16, w: 16, o: 48, k: [3, 3], p: at([2, 2], [1, 1]) },
  { name: '3x3, stride 2, padding 1, 17x15 -> 9x8 (phases of unequal sizes)', n: 2, c: 24, h: 17, w: 15, o: 40, k: [3, 3], p: at([2, 2], [1, 1]) },
  { name: '3x3, stride 2, no padding, 20x20 -> 9x9 (the last row and column unread)', n: 2, c: 32, h: 20, w: 20, o: 32, k: [3, 3], p: at([2, 2], [0, 0]) },
  { name: '5x5, stride 2, padding 2, 16x16 -> 8x8', n: 2, c: 24, h: 16, w: 16, o: 32, k: [5, 5], p: at([2, 2], [2, 2]) },
  { name: '2x2, stride 2, 16x16 -> 8x8 (every phase one tap)', n: 2, c: 32, h: 16, w: 16, o: 32, k: [2, 2], p: at([2, 2], [0, 0]) },
  { name: '2x2, stride 3, 24x24 -> 8x8 (a phase of no tap: its gradient is 0)', n: 2, c: 24, h: 24, w: 24, o: 32, k: [2, 2], p: at([3, 3], [0, 0]) },
  { name: '3x3, strides 2 and 1, padding 1, 16x8 -> 8x8', n: 2, c: 32, h: 16, w: 8, o: 40, k: [3, 3], p: at([2, 1], [1, 1]) },
  { name: '3x1, stride 2, padding 1 and 0, 17x16 -> 9x8', n: 2, c: 32, h: 17, w: 16, o: 24, k: [3, 1], p: at([2, 2], [1, 0]) },
  { name: '7x7, stride 2, padding 3, 16x16 -> 8x8 (a stem)', n: 1, c: 24, h: 16, w: 16, o: 32, k: [7, 7], p: at([2, 2], [3, 3]) },
  { name: "3x3, stride 2, padding 2, 16x16 -> 9x9 (a phase would need negative padding: oneDNN's primitive)", n: 2, c: 32, h: 16, w: 16, o: 32, k: [3, 3], p: at([2, 2], [2, 2]) },
];

suite(`cpu: bfloat16 input gradient of strided convolutions by phases${skipReason}`, () => {
  for (const c of CASES) {
    it(`${c.name}: Conv2DBackpropInput matches the float64 reference within a bfloat16 step`, () => {
      const wShape = [c.o, c.c, ...c.k], xShape = [c.n, c.c, c.h, c.w];
      const [oh, ow] = outSize(c);
      const dy = activation(c.n, c.o, oh, ow, 7);
      const w = put(cpu(), normals(wShape.reduce((a, b) => a * b, 1), 9, 0.5), wShape, 'bfloat16');
      const dx = kernels(cpu()).Conv2DBackpropInput!(dy, w, xShape, c.p);
      expect(dx.shape).toEqual(xShape);
      if (nativeLayout(dy) === 'nhwc') expect(nativeLayout(dx)).toBe('nhwc');
      const want = read(ts(), kernels(ts()).Conv2DBackpropInput!(
        put(ts(), read(cpu(), dy), dy.shape, 'float64'), put(ts(), read(cpu(), w), wShape, 'float64'), xShape, c.p));
      const scale = Math.max(...want.map(Math.abs));
      const got = read(cpu(), dx);
      expectClose(got, want, { atol: 1e-4 * scale, rtol: 2 ** -8 }, c.name);
      // Positions no tap reaches (of random sums, the only exact zeros) hold exactly 0.
      expect(got.filter((_, i) => want[i] === 0)).toEqual(want.filter((v) => v === 0));
    });
  }
});

// At most 4 input channels and a stride over 1 (the space-to-depth rule), x plain (an image) or
// made by a convolution; kernels the stride divides and kernels it does not (whose blocks add taps
// that are dropped), and strides that differ per dimension. Outputs over 16x16, where the matmul
// path (tried first) does not take a channels-last x.
const STEMS: Case[] = [
  { name: "7x7, stride 2, padding 3, 3 channels (ResNet's stem), 36x34 -> 18x17", n: 2, c: 3, h: 36, w: 34, o: 32, k: [7, 7], p: at([2, 2], [3, 3]) },
  { name: '4x4, stride 2, no padding, 3 channels, 37x36 -> 17x17', n: 2, c: 3, h: 37, w: 36, o: 32, k: [4, 4], p: at([2, 2], [0, 0]) },
  { name: '3x3, stride 2, padding 1, 1 channel, 35x35 -> 18x18', n: 2, c: 1, h: 35, w: 35, o: 32, k: [3, 3], p: at([2, 2], [1, 1]) },
  { name: '5x3, strides 2 and 3, padding 2 and 1, 4 channels, 35x50 -> 18x17', n: 2, c: 4, h: 35, w: 50, o: 48, k: [5, 3], p: at([2, 3], [2, 1]) },
  { name: '3x3, stride 3, no padding, 2 channels, 51x51 -> 17x17', n: 2, c: 2, h: 51, w: 51, o: 32, k: [3, 3], p: at([3, 3], [0, 0]) },
  { name: '3x3, strides 2 and 3, padding 1, 2 channels, one column (taps that fall in the right padding)', n: 2, c: 2, h: 600, w: 1, o: 32, k: [3, 3], p: at([2, 3], [1, 1]) },
];

suite(`cpu: bfloat16 weight gradient of strided convolutions over few channels, by space to depth${skipReason}`, () => {
  for (const c of STEMS) {
    for (const source of ['plain', 'a convolution'] as const) {
      it(`${c.name}, x ${source}: Conv2DBackpropFilter matches the float64 reference within a bfloat16 step`, () => {
        const wShape = [c.o, c.c, ...c.k], xShape = [c.n, c.c, c.h, c.w];
        const [oh, ow] = outSize(c);
        const x = source === 'plain'
          ? put(cpu(), normals(xShape.reduce((a, b) => a * b, 1), 3), xShape, 'bfloat16') : activation(c.n, c.c, c.h, c.w, 3);
        const dy = activation(c.n, c.o, oh, ow, 5);
        if (source === 'plain') expect(nativeLayout(x)).toBe('nchw');
        const want = read(ts(), kernels(ts()).Conv2DBackpropFilter!(
          put(ts(), read(cpu(), x), xShape, 'float64'), put(ts(), read(cpu(), dy), dy.shape, 'float64'), wShape, c.p));
        const scale = Math.max(...want.map(Math.abs));
        for (const dtype of ['bfloat16', 'float32'] as const) {
          const dw = kernels(cpu()).Conv2DBackpropFilter!(x, dy, wShape, c.p, dtype);
          expect([dw.dtype, dw.shape]).toEqual([dtype, wShape]);
          expectClose(read(cpu(), dw), want, { atol: 1e-4 * scale, rtol: 2 ** -8 }, `${c.name}, ${dtype} dw`);
        }
      });
    }
  }
});
