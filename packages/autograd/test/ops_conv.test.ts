/**
 * conv2d and its two backward ops: values against a naive loop written here, first derivatives by
 * gradcheck over stride, padding, dilation, groups (depthwise included), 1x1, bias or none and
 * non-square shapes, and second derivatives by gradgradcheck.
 */
import { describe, expect, it } from 'vitest';
import {
  conv2d, conv2dBackwardInput, conv2dBackwardWeight, defineOp, grad, manualSeed, pad, randn, type Conv2dOptions, type Tensor,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const f64 = (shape: readonly number[], requiresGrad = true) => randn(shape, { dtype: 'float64', requiresGrad });
const p2 = (v: number | readonly [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];

/** Direct-definition convolution: y[n,o,i,j] = b[o] + sum_{c in group, u, v} x[n, c, i*s - p + u*d, j*s - p + v*d] w[o, c', u, v]. */
function convRef(x: Tensor, w: Tensor, b: Tensor | null, o: Conv2dOptions): { data: number[]; shape: number[] } {
  const [N, C, H, W] = x.shape as number[] as [number, number, number, number];
  const [O, I, KH, KW] = w.shape as number[] as [number, number, number, number];
  const [sh, sw] = p2(o.stride as never, 1), [ph, pw] = p2(o.padding as never, 0), [dh, dw] = p2(o.dilation as never, 1);
  const G = o.groups ?? 1;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const xa = x.toTypedArray(), wa = w.toTypedArray(), ba = b?.toTypedArray();
  const data: number[] = [];
  for (let n = 0; n < N; n++) for (let oc = 0; oc < O; oc++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    let s = ba ? ba[oc]! : 0;
    const g = Math.floor(oc / (O / G));
    for (let ci = 0; ci < I; ci++) for (let u = 0; u < KH; u++) for (let v = 0; v < KW; v++) {
      const h = i * sh - ph + u * dh, ww = j * sw - pw + v * dw;
      if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
      s += xa[((n * C + g * I + ci) * H + h) * W + ww]! * wa[((oc * I + ci) * KH + u) * KW + v]!;
    }
    data.push(s);
  }
  return { data, shape: [N, O, OH, OW] };
}

function expectClose(actual: Tensor, expected: { data: number[]; shape: number[] }, tol = 1e-12): void {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.toTypedArray();
  expected.data.forEach((e, i) => expect(Math.abs(a[i]! - e)).toBeLessThan(tol * (1 + Math.abs(e))));
}

interface Case { name: string; x: number[]; w: number[]; bias: boolean; opts: Conv2dOptions }
const cases: Case[] = [
  { name: 'plain 3x3 with bias', x: [2, 2, 4, 4], w: [3, 2, 3, 3], bias: true, opts: {} },
  { name: 'stride 2, padding 1', x: [1, 2, 5, 5], w: [2, 2, 3, 3], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'dilation 2, padding 2', x: [1, 2, 5, 5], w: [2, 2, 2, 2], bias: false, opts: { dilation: 2, padding: 2 } },
  { name: 'groups 2', x: [1, 4, 4, 4], w: [4, 2, 2, 2], bias: true, opts: { groups: 2 } },
  { name: 'depthwise, channel multiplier 2', x: [1, 3, 4, 4], w: [6, 1, 3, 3], bias: true, opts: { groups: 3, padding: 1 } },
  { name: '1x1', x: [2, 3, 3, 3], w: [4, 3, 1, 1], bias: true, opts: {} },
  { name: '1x1 strided', x: [1, 2, 5, 5], w: [2, 2, 1, 1], bias: false, opts: { stride: 2 } },
  { name: 'non-square everything', x: [1, 2, 4, 6], w: [2, 2, 2, 3], bias: false,
    opts: { stride: [1, 2], padding: [1, 0], dilation: [2, 1] } },
  { name: 'stride larger than kernel, odd sizes', x: [2, 1, 7, 5], w: [2, 1, 2, 2], bias: true, opts: { stride: 3, padding: 1 } },
];

describe('conv2d forward', () => {
  it.each(cases.map((c) => [c.name, c] as const))('matches the direct definition: %s', (_, c) => {
    manualSeed(1);
    const x = f64(c.x, false), w = f64(c.w, false), b = c.bias ? f64([c.w[0]!], false) : null;
    expectClose(conv2d(x, w, b, c.opts), convRef(x, w, b, c.opts));
  });

  it("padding 'same' keeps the size, padding the odd element on the right, as PyTorch", () => {
    manualSeed(2);
    const x = f64([1, 2, 5, 4], false), w = f64([3, 2, 2, 3], false);
    const y = conv2d(x, w, null, { padding: 'same', dilation: [2, 1] });
    expect(y.shape).toEqual([1, 3, 5, 4]);
    // Total padding d(k-1) = [2, 2]: one on each side of H; 2 in W split evenly too.
    expectClose(y, convRef(x, w, null, { padding: [1, 1], dilation: [2, 1] }));
    const y2 = conv2d(x, w, null, { padding: 'same' }); // totals [1, 2]: H gets 0 before, 1 after
    expectClose(y2, convRef(pad(x, [0, 0, 0, 1]), w, null, { padding: [0, 1] }));
    expectClose(conv2d(x, w, null, { padding: 'valid' }), convRef(x, w, null, {}));
  });

  it('takes an unbatched [C, H, W] input', () => {
    manualSeed(3);
    const x = f64([2, 4, 4], false), w = f64([3, 2, 3, 3], false);
    const y = conv2d(x, w, null, { padding: 1 });
    expect(y.shape).toEqual([3, 4, 4]);
    expectClose(y.reshape([1, 3, 4, 4]), convRef(x.reshape([1, 2, 4, 4]), w, null, { padding: 1 }));
  });
});

describe('conv2d gradients', () => {
  it.each(cases.map((c) => [c.name, c] as const))('gradcheck: %s', (_, c) => {
    manualSeed(4);
    const x = f64(c.x), w = f64(c.w);
    const inputs = c.bias ? [x, w, f64([c.w[0]!])] : [x, w];
    const fastMode = x.size + w.size > 120;
    expect(gradcheck((...a: Tensor[]) => conv2d(a[0]!, a[1]!, a[2], c.opts), inputs, { fastMode })).toBe(true);
  });

  it("gradcheck with an asymmetric 'same' padding and an unbatched input", () => {
    manualSeed(5);
    expect(gradcheck((x, w) => conv2d(x, w, null, { padding: 'same' }), [f64([1, 3, 4]), f64([2, 1, 2, 2])])).toBe(true);
  });

  it('the bias gradient is the sum of dy over N, H and W', () => {
    manualSeed(6);
    const x = f64([2, 2, 3, 3]), w = f64([3, 2, 2, 2]), b = f64([3]);
    const y = conv2d(x, w, b);
    const dy = f64(y.shape, false);
    const [gb] = grad(y, [b], { gradOutputs: [dy] });
    const d = dy.toTypedArray();
    const want = [0, 1, 2].map((o) => {
      let s = 0;
      for (let n = 0; n < 2; n++) for (let k = 0; k < 4; k++) s += d[(n * 3 + o) * 4 + k]!;
      return s;
    });
    expectClose(gb!, { data: want, shape: [3] });
  });

  it('conv2dBackwardInput and conv2dBackwardWeight are the gradients conv2d records', () => {
    manualSeed(7);
    const opts: Conv2dOptions = { stride: 2, padding: 1, groups: 2 };
    const x = f64([2, 4, 5, 5]), w = f64([4, 2, 3, 3]);
    const y = conv2d(x, w, null, opts);
    const dy = f64(y.shape, false);
    const [gx, gw] = grad(y, [x, w], { gradOutputs: [dy] });
    const bx = conv2dBackwardInput(dy, w, x.shape, opts).toTypedArray();
    const bw = conv2dBackwardWeight(x, dy, w.shape, opts).toTypedArray();
    expect(Array.from(gx!.toTypedArray())).toEqual(Array.from(bx));
    expect(Array.from(gw!.toTypedArray())).toEqual(Array.from(bw));
  });

  it('the backward ops pass gradcheck themselves (their VJPs are conv2d and each other)', () => {
    manualSeed(8);
    const opts: Conv2dOptions = { stride: 2, padding: 1, dilation: [1, 2] };
    const xShape = [1, 2, 5, 6];
    const dy = f64([1, 2, 3, 3]), w = f64([2, 2, 2, 2]), x = f64(xShape);
    expect(gradcheck((g, ww) => conv2dBackwardInput(g, ww, xShape, opts), [dy, w])).toBe(true);
    expect(gradcheck((xx, g) => conv2dBackwardWeight(xx, g, w.shape, opts), [x, dy])).toBe(true);
    expect(gradgradcheck((g, ww) => conv2dBackwardInput(g, ww, xShape, opts), [dy, w], undefined, { fastMode: true })).toBe(true);
    expect(gradgradcheck((xx, g) => conv2dBackwardWeight(xx, g, w.shape, opts), [x, dy], undefined, { fastMode: true })).toBe(true);
  });

  it('gradcheck catches a slightly wrong convolution gradient (the check can fail)', () => {
    manualSeed(9);
    const w = f64([2, 1, 2, 2], false);
    // Forward conv2d, but a backward with the weight off by 1%.
    const bad = defineOp({
      name: 'badConv',
      forward: (_ctx, x: Tensor) => conv2d(x, w, null, { padding: 1 }),
      backward: (_ctx, g) => [conv2dBackwardInput(g, w.mul(1.01), [1, 1, 3, 3], { padding: 1 })],
    });
    const x = f64([1, 1, 3, 3]);
    expect(gradcheck((xx) => bad(xx), [x], { raiseException: false })).toBe(false);
    expect(gradcheck((xx) => conv2d(xx, w, null, { padding: 1 }), [x])).toBe(true);
  });
});

describe('conv2d second derivatives', () => {
  it('gradgradcheck: stride 2, padding 1, bias', () => {
    manualSeed(10);
    expect(gradgradcheck((x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }),
      [f64([1, 2, 4, 4]), f64([2, 2, 3, 3]), f64([2])])).toBe(true);
  });

  it('gradgradcheck: groups 2 with dilation 2 (fast mode)', () => {
    manualSeed(11);
    expect(gradgradcheck((x, w) => conv2d(x, w, null, { groups: 2, dilation: 2, padding: 1 }),
      [f64([2, 4, 5, 5]), f64([4, 2, 2, 2])], undefined, { fastMode: true })).toBe(true);
  });

  it('gradgradcheck: depthwise with a nonlinearity after it', () => {
    manualSeed(12);
    expect(gradgradcheck((x, w) => conv2d(x, w, null, { groups: 2, padding: 1 }).tanh(),
      [f64([1, 2, 3, 3]), f64([2, 1, 2, 2])])).toBe(true);
  });
});
