/**
 * bfloat16 convolutions on 'cpu' where oneDNN 2.6's AMX primitives went wrong, found by a sweep of
 * 'cpu' against 'ts' (native/src/cpu/conv_widened.h, onednn.h's Step::zeroScratch):
 * - the weight gradient's taps that see only padding (a 3x3, stride 2 kernel on a 1x1 or 2x2
 *   image, as a ResNet stage's first conv at the smallest inputs) read scratchpad memory the
 *   primitive never wrote: NaN and 1e21 where the gradient is 0;
 * - the forward of a kernel whose extent is below its stride (3x1 with stride 4, 2x2 with stride
 *   3): a few percent of outputs wrong, varying from call to call with 2 threads;
 * - the weight gradient of a dilated kernel with 33 or 40 input channels: wrong every time.
 * Each is checked against the float64 'ts' kernel on the same bfloat16 values, within a bfloat16
 * step (products exact in float32, sums in float32, one rounding), on several calls in a row, after
 * convolutions that leave the memory pool's blocks holding data, x plain (an image) or made by a
 * convolution (channels last, where the CPU has AVX512_BF16 or AMX), with 2 threads (the tests'
 * default is 1; the forward's errors need 2).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Conv2DParams, Raw } from '@nodegrad/autograd';
import { getNumThreads, setNumThreads } from '@nodegrad/native';
import { cpu, expectClose, normals, put, read, skipReason, ts } from './half_util.js';

const suite = skipReason ? describe.skip : describe;

type K = Record<string, (...a: unknown[]) => Raw>;
const kernels = (b: ReturnType<typeof cpu>) => b.kernels as unknown as K;
const at = (stride: number, padding: number, dilation = 1): Conv2DParams =>
  ({ stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation], groups: 1 });
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** A bfloat16 activation on 'cpu': plain, or made by a 1x1 convolution (a conv's layout). */
function activation(shape: number[], seed: number, plain: boolean): Raw {
  if (plain) return put(cpu(), normals(size(shape), seed), shape, 'bfloat16');
  const [n, c, h, w] = shape as [number, number, number, number];
  const x = put(cpu(), normals(n * 4 * h * w, seed), [n, 4, h, w], 'bfloat16');
  return kernels(cpu()).Conv2D!(x, put(cpu(), normals(c * 4, seed + 1, 0.5), [c, 4, 1, 1], 'bfloat16'), at(1, 0));
}

/** The same values on 'ts' in float64. */
const onTs = (r: Raw) => put(ts(), read(cpu(), r), r.shape, 'float64');

/** Convolutions whose freed blocks go back to the pool holding data (scratchpads included). */
function dirtyThePool(): void {
  const x = activation([4, 32, 24, 24], 3, false), w = put(cpu(), normals(32 * 32 * 9, 4, 0.2), [32, 32, 3, 3], 'bfloat16');
  const y = kernels(cpu()).Conv2D!(x, w, at(1, 1));
  kernels(cpu()).Conv2DBackpropFilter!(x, y, [32, 32, 3, 3], at(1, 1));
}

/** got within a bfloat16 step of want (scaled by want's largest), and exactly 0 where want is. */
function expectStep(got: number[], want: number[], what: string): void {
  const scale = Math.max(...want.map(Math.abs));
  expectClose(got, want, { atol: 1e-4 * scale, rtol: 2 ** -7 }, what);
  expect(got.filter((_, i) => want[i] === 0), `${what}: exact zeros`).toEqual(want.filter((v) => v === 0));
}

suite(`cpu: bfloat16 convolutions oneDNN 2.6's AMX primitives computed wrongly${skipReason}`, () => {
  // Set before this file's first primitive (vitest runs each file in a process of its own), and
  // not set back: the count cannot change once primitives exist.
  beforeAll(() => { if (getNumThreads() !== 2) setNumThreads(2); });

  for (const plain of [true, false]) {
    const xKind = plain ? 'x plain' : 'x made by a convolution';
    for (const hw of [1, 2]) {
      it(`weight gradient of a 3x3, stride 2, padding 1 kernel on ${hw}x${hw} (taps that see only padding), ${xKind}`, () => {
        const p = at(2, 1), wShape = [16, 8, 3, 3];
        for (let call = 0; call < 3; call++) {
          dirtyThePool();
          const x = activation([2, 8, hw, hw], 10 + call, plain), dy = activation([2, 16, 1, 1], 20 + call, plain);
          const want = read(ts(), kernels(ts()).Conv2DBackpropFilter!(onTs(x), onTs(dy), wShape, p));
          for (const dtype of ['bfloat16', 'float32'] as const) {
            const got = read(cpu(), kernels(cpu()).Conv2DBackpropFilter!(x, dy, wShape, p, dtype));
            expectStep(got, want, `call ${call}, dw in ${dtype}`);
          }
        }
      });
    }

    // 33x33 images: outputs over 7x7, which the matmul path would take from a channels-last x.
    for (const [k, stride, h] of [[[3, 1], 4, 33], [[2, 2], 3, 33]] as const) {
      it(`forward of a ${k[0]}x${k[1]} kernel with stride ${stride} (its extent below the stride), ${xKind}`, () => {
        for (const c of [16, 32]) {
          const x = activation([5, c, h, h], 30 + c, plain);
          const w = put(cpu(), normals(16 * c * k[0] * k[1], 40 + c, 0.3), [16, c, k[0], k[1]], 'bfloat16');
          const p = at(stride, 0);
          const want = read(ts(), kernels(ts()).Conv2D!(onTs(x), onTs(w), p));
          for (let call = 0; call < 4; call++) {
            dirtyThePool();
            expectStep(read(cpu(), kernels(cpu()).Conv2D!(x, w, p)), want, `${c} channels, call ${call}`);
          }
        }
      });
    }

    it(`weight gradient of a dilated kernel with 33 and 40 input channels, ${xKind}`, () => {
      for (const [c, k] of [[33, 1], [40, 1], [33, 3], [16, 3]] as const) {
        const p = at(1, 0, 2), oh = 9 - 2 * (k - 1), wShape = [31, c, k, k];
        const x = activation([2, c, 9, 9], 50 + c, plain), dy = activation([2, 31, oh, oh], 60 + c, plain);
        const want = read(ts(), kernels(ts()).Conv2DBackpropFilter!(onTs(x), onTs(dy), wShape, p));
        expectStep(read(cpu(), kernels(cpu()).Conv2DBackpropFilter!(x, dy, wShape, p)), want, `${c} channels, ${k}x${k}`);
      }
    });
  }
});
