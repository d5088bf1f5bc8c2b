/**
 * maxPool2d, avgPool2d and adaptiveAvgPool2d: values against naive loops written here (and a few
 * hand-computed cases), gradcheck over padding, dilation, ceil mode with overhang, both divisor
 * rules and adaptive sizes that do not divide, and gradgradcheck for each pool.
 */
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, arange, avgPool2d, grad, manualSeed, maxPool2d, maxPool2dBackward, maxPool2dWithIndices, randn,
  type AvgPool2dOptions, type MaxPool2dOptions, type Tensor,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const f64 = (shape: number[], requiresGrad = true) => randn(shape, { dtype: 'float64', requiresGrad });
const p2 = (v: unknown, d: number): [number, number] =>
  v == null ? [d, d] : typeof v === 'number' ? [v, v] : [(v as number[])[0]!, (v as number[])[1]!];

/** PyTorch's output size: floor((n + 2p - d(k-1) - 1 [+ s-1 in ceil mode]) / s) + 1, minus a last window starting in the padding. */
function outLen(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let o = Math.floor((n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

/** Naive pooling over every plane; returns values and, for max, the first argmax's flat plane index. */
function poolRef(x: Tensor, kind: 'max' | 'avg', k: number | [number, number], o: MaxPool2dOptions & AvgPool2dOptions) {
  const [kh, kw] = p2(k, 1), [sh, sw] = p2(o.stride ?? k, 1), [ph, pw] = p2(o.padding, 0), [dh, dw] = p2(o.dilation, 1);
  const H = x.shape[x.ndim - 2]!, W = x.shape[x.ndim - 1]!, planes = x.size / (H * W);
  const OH = outLen(H, kh, sh, ph, dh, o.ceilMode ?? false), OW = outLen(W, kw, sw, pw, dw, o.ceilMode ?? false);
  const a = x.toTypedArray(), data: number[] = [], idx: number[] = [];
  for (let c = 0; c < planes; c++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    let best = -Infinity, at = -1, s = 0, valid = 0;
    for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const h = i * sh - ph + u * dh, w = j * sw - pw + v * dw;
      if (h < 0 || h >= H || w < 0 || w >= W) continue;
      const val = a[c * H * W + h * W + w]!;
      if (val > best) { best = val; at = h * W + w; }
      s += val; valid++;
    }
    if (kind === 'max') { data.push(best); idx.push(at); continue; }
    // The divisor with padding counted stops at the padded border (PyTorch's pool_size).
    const hs = i * sh - ph, ws = j * sw - pw;
    const padded = (Math.min(hs + kh, H + ph) - hs) * (Math.min(ws + kw, W + pw) - ws);
    data.push(s / (o.divisorOverride ?? ((o.countIncludePad ?? true) ? padded : valid)));
  }
  return { data, idx, shape: [...x.shape.slice(0, -2), OH, OW] };
}

function adaptiveRef(x: Tensor, OH: number, OW: number) {
  const H = x.shape[x.ndim - 2]!, W = x.shape[x.ndim - 1]!, planes = x.size / (H * W);
  const a = x.toTypedArray(), data: number[] = [];
  for (let c = 0; c < planes; c++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const h0 = Math.floor((i * H) / OH), h1 = Math.ceil(((i + 1) * H) / OH);
    const w0 = Math.floor((j * W) / OW), w1 = Math.ceil(((j + 1) * W) / OW);
    let s = 0;
    for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += a[c * H * W + h * W + w]!;
    data.push(s / ((h1 - h0) * (w1 - w0)));
  }
  return { data, shape: [...x.shape.slice(0, -2), OH, OW] };
}

function expectClose(actual: Tensor, expected: { data: number[]; shape: number[] }, tol = 1e-12): void {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.toTypedArray();
  expected.data.forEach((e, i) => expect(Math.abs(a[i]! - e)).toBeLessThan(tol * (1 + Math.abs(e))));
}

type MaxCase = [string, number[], number | [number, number], MaxPool2dOptions];
const maxCases: MaxCase[] = [
  ['2x2, default stride', [2, 2, 4, 4], 2, {}],
  ['3x3, stride 2, padding 1', [1, 2, 5, 5], 3, { stride: 2, padding: 1 }],
  ['ceil mode with overhang', [1, 1, 5, 5], 2, { stride: 2, ceilMode: true }],
  ['ceil mode, padding, last window dropped', [1, 1, 5, 5], 2, { stride: 2, padding: 1, ceilMode: true }],
  ['dilation 2', [1, 2, 6, 6], 2, { stride: 1, dilation: 2, padding: 1 }],
  ['non-square kernel and stride', [1, 1, 4, 7], [2, 3], { stride: [1, 2], padding: [1, 0] }],
  ['3-D input', [2, 5, 5], 3, { stride: 2 }],
];

type AvgCase = [string, number[], number | [number, number], AvgPool2dOptions];
const avgCases: AvgCase[] = [
  ['2x2, default stride', [2, 2, 4, 4], 2, {}],
  ['3x3, padding 1, counting padding', [1, 2, 5, 5], 3, { stride: 2, padding: 1 }],
  ['3x3, padding 1, not counting padding', [1, 2, 5, 5], 3, { stride: 2, padding: 1, countIncludePad: false }],
  ['ceil mode with overhang, counting padding', [1, 1, 5, 5], 2, { stride: 2, ceilMode: true }],
  ['ceil mode, padding, not counting padding', [1, 1, 6, 5], 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }],
  ['non-square', [1, 1, 4, 7], [2, 3], { stride: [1, 2], padding: [1, 1] }],
  ['3-D input', [2, 4, 4], 2, { stride: 1 }],
  ['divisor override, padding and ceil mode with overhang', [1, 2, 6, 5], 3, { stride: 2, padding: 1, ceilMode: true, divisorOverride: 5 }],
  ['negative divisor override (countIncludePad moot)', [1, 1, 4, 4], 2, { countIncludePad: false, divisorOverride: -2 }],
];

describe('maxPool2d', () => {
  it.each(maxCases)('values and indices match the naive loop: %s', (_, shape, k, o) => {
    manualSeed(1);
    const x = f64(shape, false);
    const [y, idx] = maxPool2dWithIndices(x, k, o);
    const ref = poolRef(x, 'max', k, o);
    expectClose(y, ref);
    expect(idx.dtype).toBe('int64');
    expect(Array.from(idx.toTypedArray())).toEqual(ref.idx);
  });

  it('output sizes in ceil mode are PyTorch\'s', () => {
    const x = randn([1, 1, 5, 5], { dtype: 'float64' });
    expect(maxPool2d(x, 2, { stride: 2, ceilMode: true }).shape).toEqual([1, 1, 3, 3]);
    expect(maxPool2d(x, 2, { stride: 2 }).shape).toEqual([1, 1, 2, 2]);
    // floor((5 + 2 - 1 - 1 + 1) / 2) + 1 = 4, but the 4th window would start in the padding.
    expect(maxPool2d(x, 2, { stride: 2, padding: 1, ceilMode: true }).shape).toEqual([1, 1, 3, 3]);
    expect(maxPool2d(randn([1, 1, 4, 4], { dtype: 'float64' }), 3, { stride: 2, padding: 1, ceilMode: true }).shape)
      .toEqual([1, 1, 3, 3]);
  });

  it.each(maxCases)('gradcheck: %s', (_, shape, k, o) => {
    manualSeed(2);
    const x = f64(shape);
    expect(gradcheck((t) => maxPool2d(t, k, o), [x], { fastMode: x.size > 60 })).toBe(true);
  });

  it('the gradient goes to the argmax, summed where windows overlap', () => {
    const x = arange(0, 9, 1, { dtype: 'float64' }).reshape([1, 1, 3, 3]).detach().requiresGrad_();
    const y = maxPool2d(x, 2, { stride: 1 }); // every window's max is its bottom-right element
    const [g] = grad(y, [x], { gradOutputs: [arange(1, 5, 1, { dtype: 'float64' }).reshape([1, 1, 2, 2])] });
    expect(Array.from(g!.toTypedArray())).toEqual([0, 0, 0, 0, 1, 2, 0, 3, 4]);
  });

  it('an output changed in place after the pool (y.relu_()) is no version error, and the gradient is right', () => {
    manualSeed(8);
    const x = randn([2, 3, 6, 6], { dtype: 'float64', requiresGrad: true });
    const [want] = grad(maxPool2d(x, 2).relu().mul(x.sum()).sum(), [x]);
    const z = maxPool2d(x, 2);
    z.relu_();
    const [got] = grad(z.mul(x.sum()).sum(), [x]);
    expect(Array.from(got!.toTypedArray())).toEqual(Array.from(want!.toTypedArray()));
  });

  it.each(maxCases.slice(0, 4))('gradgradcheck: %s', (_, shape, k, o) => {
    manualSeed(3);
    expect(gradgradcheck((t) => maxPool2d(t, k, o), [f64(shape)], undefined, { fastMode: true })).toBe(true);
  });

  it('gradgradcheck in full mode through a smooth function of the pool', () => {
    manualSeed(4);
    expect(gradgradcheck((t) => maxPool2d(t.tanh(), 2, { stride: 1, padding: 1 }).mul(t.sum()), [f64([1, 1, 3, 3])])).toBe(true);
  });

  it('maxPool2dBackward is differentiable in dy (its VJP gathers at the indices)', () => {
    manualSeed(5);
    const x = f64([1, 2, 4, 4], false);
    const [, idx] = maxPool2dWithIndices(x, 2, { stride: 1 });
    const dy = f64([1, 2, 3, 3]);
    expect(gradcheck((g) => maxPool2dBackward(g, idx, x.shape), [dy])).toBe(true);
    expect(gradgradcheck((g) => maxPool2dBackward(g, idx, x.shape).square(), [dy], undefined, { fastMode: true })).toBe(true);
  });
});

describe('avgPool2d', () => {
  it.each(avgCases)('values match the naive loop: %s', (_, shape, k, o) => {
    manualSeed(6);
    const x = f64(shape, false);
    expectClose(avgPool2d(x, k, o), poolRef(x, 'avg', k, o));
  });

  it('hand-computed divisors with padding and ceil mode', () => {
    const x = arange(0, 9, 1, { dtype: 'float64' }).reshape([1, 1, 3, 3]);
    // Windows [0:2, 0:2], [0:2, 2:3], [2:3, 0:2], [2:3, 2:3]: an overhang past the input is never counted.
    expect(Array.from(avgPool2d(x, 2, { ceilMode: true }).toTypedArray())).toEqual([2, 3.5, 6.5, 8]);
    // 3x3 windows at rows/cols -1..1 and 1..3 of a 1-padded 3x3: 9 padded cells each, 4 real.
    expect(Array.from(avgPool2d(x, 3, { stride: 2, padding: 1 }).toTypedArray())).toEqual([8 / 9, 12 / 9, 20 / 9, 24 / 9]);
    expect(Array.from(avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }).toTypedArray())).toEqual([2, 3, 5, 6]);
    // torch.nn.functional.avg_pool2d(x, 3, 2, 1, divisor_override=2): the window sums 8, 12, 20, 24 over 2.
    expect(Array.from(avgPool2d(x, 3, { stride: 2, padding: 1, divisorOverride: 2 }).toTypedArray())).toEqual([4, 6, 10, 12]);
    for (const d of [0, 1.5]) {
      expect(() => avgPool2d(x, 2, { divisorOverride: d })).toThrow(`avgPool2d: divisorOverride must be a nonzero integer, got ${d}`);
    }
  });

  it.each(avgCases)('gradcheck: %s', (_, shape, k, o) => {
    manualSeed(7);
    const x = f64(shape);
    expect(gradcheck((t) => avgPool2d(t, k, o), [x], { fastMode: x.size > 60 })).toBe(true);
  });

  it.each(avgCases.slice(1, 5))('gradgradcheck: %s', (_, shape, k, o) => {
    manualSeed(8);
    expect(gradgradcheck((t) => avgPool2d(t, k, o), [f64(shape)], undefined, { fastMode: true })).toBe(true);
  });

  it('gradgradcheck in full mode through a nonlinearity', () => {
    manualSeed(9);
    expect(gradgradcheck((t) => avgPool2d(t.square(), 2, { padding: 1, countIncludePad: false }), [f64([1, 1, 3, 3])])).toBe(true);
  });
});

describe('adaptiveAvgPool2d', () => {
  const sizes: [number[], number | [number | null, number | null], [number, number]][] = [
    [[1, 2, 5, 7], [3, 4], [3, 4]],
    [[2, 1, 4, 4], 3, [3, 3]],
    [[1, 1, 3, 2], [5, 3], [5, 3]], // larger than the input: bins overlap
    [[1, 2, 6, 5], 1, [1, 1]],
    [[2, 5, 6], [null, 2], [5, 2]],
  ];

  it.each(sizes)('values match the naive bins: %j -> %j', (shape, size, [oh, ow]) => {
    manualSeed(10);
    const x = f64(shape, false);
    expectClose(adaptiveAvgPool2d(x, size), adaptiveRef(x, oh, ow));
  });

  it('hand-computed bins [0,2) [1,4) [3,5) for 5 -> 3', () => {
    const x = arange(0, 5, 1, { dtype: 'float64' }).reshape([1, 1, 1, 5]);
    expect(Array.from(adaptiveAvgPool2d(x, [1, 3]).toTypedArray())).toEqual([0.5, 2, 3.5]);
  });

  it.each(sizes)('gradcheck: %j -> %j', (shape, size) => {
    manualSeed(11);
    const x = f64(shape);
    expect(gradcheck((t) => adaptiveAvgPool2d(t, size), [x], { fastMode: x.size > 60 })).toBe(true);
  });

  it('gradgradcheck', () => {
    manualSeed(12);
    expect(gradgradcheck((t) => adaptiveAvgPool2d(t, [2, 3]), [f64([1, 2, 5, 4])], undefined, { fastMode: true })).toBe(true);
    expect(gradgradcheck((t) => adaptiveAvgPool2d(t.square(), [2, 2]), [f64([1, 1, 3, 3])])).toBe(true);
  });
});
