// Kernel-level tests of the 'ts' backend: each kernel is called directly and compared with a naive
// reference written here (nested loops over multi-indices), and adjoint pairs are checked with
// <K(x), y> == <x, K^T(y)>.
import { describe, expect, it } from 'vitest';
import { fromTypedArray, tsBackend, type Pool2DParams, type Raw, type Tensor } from '@nodegrad/autograd';

const K = tsBackend.kernels;
type F = 'float32' | 'float64';
const DTYPES: F[] = ['float64', 'float32'];
const TOL: Record<F, number> = { float64: 1e-12, float32: 2e-6 };

// A small deterministic generator (mulberry32), independent of the library's RNG.
let state = 12345;
function rnd(): number {
  state = (state + 0x6d2b79f5) | 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 4 - 2;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A 'ts' tensor of `shape`, random unless `f(i)` gives element i. */
function make(shape: readonly number[], dtype: F | 'int64' | 'int32', f: (i: number) => number = rnd): Tensor {
  return fromTypedArray(Float64Array.from({ length: size(shape) }, (_, i) => f(i)), shape, { dtype, device: 'ts' });
}
const vals = (r: Raw): number[] => Array.from(r.buf as ArrayLike<number>);

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) { idx[d] = i % shape[d]!; i = Math.floor(i / shape[d]!); }
  return idx;
}
function ravel(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + idx[d]!;
  return i;
}
const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** Same shape and dtype, elements within tol * max(1, |expected|) (NaN must match NaN). */
function expectClose(actual: Raw, shape: readonly number[], expected: readonly number[], tol: number, dtype?: string): void {
  expect(actual.shape).toEqual(shape);
  if (dtype) expect(actual.dtype).toBe(dtype);
  const a = vals(actual);
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++) {
    const e = expected[i]!, v = a[i]!;
    if (Number.isNaN(e) || !Number.isFinite(e)) { expect(v, `element ${i}`).toBe(e); continue; }
    if (Math.abs(v - e) > tol * Math.max(1, Math.abs(e))) expect(v, `element ${i} of ${fmtShape(shape)}`).toBe(e);
  }
}
const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

describe('ts kernels: movement', () => {
  for (const dtype of DTYPES) {
    it(`Slice with steps and offsets matches a multi-index reference (${dtype})`, () => {
      const cases: [number[], number[], number[], number[]][] = [
        [[5, 6, 7], [1, 0, 2], [2, 3, 3], [2, 2, 2]],
        [[4, 9], [0, 1], [4, 4], [1, 2]],
        [[3, 4], [2, 3], [1, 1], [1, 1]],
        [[2, 3, 4], [0, 0, 1], [2, 0, 2], [1, 1, 1]],
        [[7], [6], [1], [3]],
        [[7], [2], [3], [1]],
        [[], [], [], []],
      ];
      for (const [shape, begin, sz, step] of cases) {
        const x = make(shape, dtype);
        const xv = vals(x);
        const ref = Array.from({ length: size(sz) }, (_, i) =>
          xv[ravel(unravel(i, sz).map((j, d) => begin[d]! + j * step[d]!), shape)]!);
        expectClose(K.Slice(x, begin, sz, step), sz, ref, 0, dtype);
      }
    });

    it(`Pad asymmetrically with a value matches a reference and is the adjoint of Slice (${dtype})`, () => {
      const cases: [number[], [number, number][], number][] = [
        [[2, 3, 4], [[0, 1], [2, 0], [1, 3]], 0],
        [[1, 1, 2, 2], [[0, 0], [1, 0], [0, 2], [3, 1]], -1.5],
        [[3], [[0, 0]], 7],
        [[2, 2], [[1, 1], [1, 1]], -Infinity],
        [[], [], 0],
      ];
      for (const [shape, pads, value] of cases) {
        const x = make(shape, dtype);
        const xv = vals(x);
        const outShape = shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
        const ref = Array.from({ length: size(outShape) }, (_, i) => {
          const src = unravel(i, outShape).map((j, d) => j - pads[d]![0]);
          return src.every((j, d) => j >= 0 && j < shape[d]!) ? xv[ravel(src, shape)]! : value;
        });
        expectClose(K.Pad(x, pads, value), outShape, ref, 0, dtype);
        if (value === 0) {
          // Zero padding and the interior slice are transposes of each other.
          const y = make(outShape, dtype);
          const lhs = dot(vals(K.Pad(x, pads, 0)), vals(y));
          const rhs = dot(xv, vals(K.Slice(y, pads.map((p) => p[0]), shape, shape.map(() => 1))));
          expect(Math.abs(lhs - rhs)).toBeLessThan(1e-12 * Math.max(1, Math.abs(lhs)));
        }
      }
    });

    it(`Concat of three tensors along a middle axis, and along the first and last (${dtype})`, () => {
      for (const [axis, sizes] of [[1, [2, 1, 3]], [0, [1, 2, 1]], [2, [3, 1, 2]]] as [number, number[]][]) {
        const shapes = sizes.map((s) => { const sh = [2, 3, 4]; sh[axis] = s; return sh; });
        const xs = shapes.map((s) => make(s, dtype));
        const total = sizes.reduce((a, b) => a + b, 0);
        const outShape = [2, 3, 4]; outShape[axis] = total;
        const ref = Array.from({ length: size(outShape) }, (_, i) => {
          const idx = unravel(i, outShape);
          let k = 0, j = idx[axis]!;
          while (j >= sizes[k]!) { j -= sizes[k]!; k++; }
          idx[axis] = j;
          return vals(xs[k]!)[ravel(idx, shapes[k]!)]!;
        });
        expectClose(K.Concat(xs, axis), outShape, ref, 0, dtype);
      }
    });
  }

  it('Concat rejects mismatched shapes and dtypes, naming the shapes', () => {
    expect(() => K.Concat([make([2, 3], 'float64'), make([3, 3], 'float64')], 1)).toThrow(/Concat.*\[3, 3\].*\[2, 3\]/);
    expect(() => K.Concat([make([2, 3], 'float64'), make([2, 3], 'float32')], 0)).toThrow(/Concat/);
  });

  it('Slice and Pad reject out-of-range arguments', () => {
    expect(() => K.Slice(make([4], 'float64'), [1], [2], [3])).toThrow(/Slice.*dim 0.*\[4\]/);
    expect(() => K.Slice(make([4], 'float64'), [0], [2], [0])).toThrow(/Slice/);
    expect(() => K.Pad(make([4], 'float64'), [[-1, 0]], 0)).toThrow(/Pad/);
  });

  it('OneHot from int32 and int64 indices of any shape', () => {
    for (const idt of ['int32', 'int64'] as const) {
      for (const dtype of DTYPES) {
        const idx = [2, 0, 3, 3, 1, 0];
        const r = K.OneHot(make([2, 3], idt, (i) => idx[i]!), 4, dtype);
        const ref = Array.from({ length: 24 }, (_, i) => (idx[Math.floor(i / 4)] === i % 4 ? 1 : 0));
        expectClose(r, [2, 3, 4], ref, 0, dtype);
      }
    }
    expect(() => K.OneHot(make([2], 'int64', (i) => 4 * i), 4, 'float32')).toThrow(/OneHot.*index 4.*\[0, 4\)/);
    expect(() => K.OneHot(make([1], 'int32', () => -1), 4, 'float32')).toThrow(/OneHot/);
  });
});

describe('ts kernels: softmax', () => {
  /** Direct formula along `axis`: exp(x_i) / sum_j exp(x_j), without any max shift. */
  function refSoftmax(xv: number[], shape: number[], axis: number, log: boolean): number[] {
    return xv.map((v, i) => {
      const idx = unravel(i, shape);
      let s = 0;
      for (let j = 0; j < shape[axis]!; j++) { idx[axis] = j; s += Math.exp(xv[ravel(idx, shape)]!); }
      return log ? v - Math.log(s) : Math.exp(v) / s;
    });
  }
  for (const dtype of DTYPES) {
    it(`Softmax and LogSoftmax along every axis match the direct formula (${dtype})`, () => {
      for (const shape of [[3, 4, 5], [1, 6], [4, 1], [7]]) {
        const x = make(shape, dtype, () => 3 * rnd());
        for (let axis = 0; axis < shape.length; axis++) {
          expectClose(K.Softmax(x, axis), shape, refSoftmax(vals(x), shape, axis, false), TOL[dtype], dtype);
          expectClose(K.LogSoftmax(x, axis), shape, refSoftmax(vals(x), shape, axis, true), TOL[dtype], dtype);
        }
      }
    });

    it(`Softmax is stable for large logits and handles -inf and NaN (${dtype})`, () => {
      // Shifting every logit by 1000 must not change the result (exp(1000) overflows without the max shift).
      const base = [0.5, -1, 2, 0.25, 1, -3];
      const big = make([2, 3], dtype, (i) => base[i]! + 1000);
      const small = make([2, 3], dtype, (i) => base[i]!);
      expectClose(K.Softmax(big, 1), [2, 3], refSoftmax(vals(small), [2, 3], 1, false), TOL[dtype]);
      expectClose(K.LogSoftmax(big, 1), [2, 3], refSoftmax(vals(small), [2, 3], 1, true), TOL[dtype] * 10);
      const special = make([3, 2], dtype, (i) => [-Infinity, 0, NaN, 1, -Infinity, -Infinity][i]!);
      expectClose(K.Softmax(special, 1), [3, 2], [0, 1, NaN, NaN, NaN, NaN], 0);
      expectClose(K.LogSoftmax(special, 1), [3, 2], [-Infinity, 0, NaN, NaN, NaN, NaN], 0);
    });
  }
});


/**
 * Output length by counting windows in padded coordinates: a window counts when it fits inside
 * the padded input; in ceil mode one more partial window counts if the last full one left elements
 * uncovered and it starts before the right padding.
 */
function refOutLen(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const eff = d * (k - 1) + 1;
  let o = 0;
  for (;; o++) {
    const start = o * s;
    const fits = start + eff <= n + 2 * p;
    const partial = ceil && start - s + eff < n + 2 * p && start < n + p;
    if (!fits && !partial) return o;
  }
}

interface PoolCase { shape: number[]; p: Pool2DParams }
function pc(shape: number[], k: number[], s: number[], pad: number[], ceilMode: boolean, d = [1, 1]): PoolCase {
  return {
    shape,
    p: { kernel: [k[0]!, k[1]!], stride: [s[0]!, s[1]!], padding: [pad[0]!, pad[1]!], dilation: [d[0]!, d[1]!], ceilMode, countIncludePad: false },
  };
}
// Edge cases: overhanging ceil-mode windows (the [1, 1, 3, 3] one drops its last window), kernel ==
// input, 1x1, N or C of 1, non-square kernels and strides, an unbatched [C, H, W] input.
const POOL_CASES: PoolCase[] = [
  pc([2, 3, 5, 6], [2, 3], [2, 2], [1, 1], true),
  pc([1, 1, 3, 3], [2, 2], [2, 2], [1, 1], true),
  pc([1, 2, 5, 5], [2, 2], [2, 2], [0, 0], true),
  pc([1, 2, 4, 4], [4, 4], [1, 1], [0, 0], false),
  pc([2, 1, 1, 1], [1, 1], [1, 1], [0, 0], false),
  pc([3, 4, 4], [3, 3], [3, 3], [1, 1], true),
  pc([1, 1, 6, 7], [3, 2], [3, 1], [1, 0], true),
  pc([2, 2, 7, 6], [3, 3], [2, 2], [1, 1], false),
];
const DILATED: PoolCase[] = [pc([1, 2, 7, 5], [3, 2], [2, 1], [1, 1], false, [2, 2]), pc([1, 1, 6, 6], [2, 3], [2, 2], [1, 1], true, [3, 2])];

function planeDims(shape: number[]) {
  return { planes: size(shape.slice(0, -2)), H: shape[shape.length - 2]!, W: shape[shape.length - 1]! };
}

/** Direct max pooling: scan the window taps in order, keep the first maximum (NaN wins). */
function refMaxPool(xv: number[], shape: number[], p: Pool2DParams) {
  const { planes, H, W } = planeDims(shape);
  const OH = refOutLen(H, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode);
  const OW = refOutLen(W, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode);
  const y: number[] = [], idx: number[] = [];
  for (let c = 0; c < planes; c++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let best = -Infinity, at = -1;
        for (let i = 0; i < p.kernel[0]; i++) {
          for (let j = 0; j < p.kernel[1]; j++) {
            const h = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
            const w = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const v = xv[c * H * W + h * W + w]!;
            // The index starts at the first in-bounds tap, so an all -inf window still names one.
            if (at < 0) at = h * W + w;
            if (v > best || Number.isNaN(v)) { best = v; at = h * W + w; }
          }
        }
        y.push(best); idx.push(at);
      }
    }
  }
  return { y, idx, outShape: [...shape.slice(0, -2), OH, OW] };
}

/** Direct average pooling in padded coordinates: the divisor counts taps inside the padded input or the real one. */
function refAvgPool(xv: number[], shape: number[], p: Pool2DParams) {
  const { planes, H, W } = planeDims(shape);
  const OH = refOutLen(H, p.kernel[0], p.stride[0], p.padding[0], 1, p.ceilMode);
  const OW = refOutLen(W, p.kernel[1], p.stride[1], p.padding[1], 1, p.ceilMode);
  const y: number[] = [];
  for (let c = 0; c < planes; c++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let s = 0, real = 0, padH = 0, padW = 0;
        for (let i = 0; i < p.kernel[0]; i++) {
          const h = oh * p.stride[0] - p.padding[0] + i;
          if (h < H + p.padding[0]) padH++;
          for (let j = 0; j < p.kernel[1]; j++) {
            const w = ow * p.stride[1] - p.padding[1] + j;
            if (i === 0 && w < W + p.padding[1]) padW++;
            if (h >= 0 && h < H && w >= 0 && w < W) { s += xv[c * H * W + h * W + w]!; real++; }
          }
        }
        y.push(s / (p.countIncludePad ? padH * padW : real));
      }
    }
  }
  return { y, outShape: [...shape.slice(0, -2), OH, OW] };
}

describe('ts kernels: pooling', () => {
  it('output sizes follow PyTorch, including the ceil-mode rule that drops a window starting in padding', () => {
    // Values from torch.nn.functional.max_pool2d.
    const p = (k: number, s: number, pad: number, ceil: boolean) => pc([1, 1, 0, 0], [k, k], [s, s], [pad, pad], ceil).p;
    const shapeOf = (n: number, q: Pool2DParams) => K.MaxPool2D(make([1, 1, n, n], 'float64'), q).shape.slice(2);
    expect(shapeOf(5, p(2, 2, 0, true))).toEqual([3, 3]);
    expect(shapeOf(5, p(2, 2, 0, false))).toEqual([2, 2]);
    expect(shapeOf(3, p(2, 2, 1, true))).toEqual([2, 2]);
    expect(shapeOf(112, p(3, 2, 1, false))).toEqual([56, 56]);
    expect(shapeOf(6, p(3, 2, 1, true))).toEqual([4, 4]);
    for (const c of [...POOL_CASES, ...DILATED]) {
      const { H, W } = planeDims(c.shape);
      const y = K.MaxPool2D(make(c.shape, 'float64'), c.p);
      expect(y.shape.slice(-2)).toEqual([
        refOutLen(H, c.p.kernel[0], c.p.stride[0], c.p.padding[0], c.p.dilation[0], c.p.ceilMode),
        refOutLen(W, c.p.kernel[1], c.p.stride[1], c.p.padding[1], c.p.dilation[1], c.p.ceilMode)]);
    }
  });

  for (const dtype of DTYPES) {
    it(`MaxPool2D values and indices match a direct scan; backward, scatter and gather are adjoint (${dtype})`, () => {
      for (const c of [...POOL_CASES, ...DILATED]) {
        // Few distinct values, so windows hold ties and the first-maximum rule matters.
        const x = make(c.shape, dtype, () => Math.floor(rnd() * 2));
        const ref = refMaxPool(vals(x), c.shape, c.p);
        const { y, indices } = K.MaxPool2DWithIndices(x, c.p);
        expectClose(y, ref.outShape, ref.y, 0, dtype);
        expectClose(K.MaxPool2D(x, c.p), ref.outShape, ref.y, 0, dtype);
        expectClose(indices, ref.outShape, ref.idx, 0, 'int64');
        expectClose(K.MaxPool2DGather(x, indices), ref.outShape, ref.y, 0, dtype);
        const dy = make(ref.outShape, dtype);
        const dx = K.MaxPool2DScatter(dy, indices, c.shape);
        // cuDNN's form finds the same argmax from x (and y).
        expectClose(K.MaxPool2DBackward(dy, x, y, c.p), c.shape, vals(dx), 0, dtype);
        // Scatter-add reference: each output's gradient lands on its argmax in its plane.
        const { H, W } = planeDims(c.shape);
        const L = size(ref.outShape.slice(-2));
        const dxRef = new Array<number>(size(c.shape)).fill(0);
        vals(dy).forEach((g, i) => { dxRef[Math.floor(i / L) * H * W + ref.idx[i]!]! += g; });
        expectClose(dx, c.shape, dxRef, TOL[dtype], dtype);
        const z = make(c.shape, dtype);
        const lhs = dot(vals(dx), vals(z)), rhs = dot(vals(dy), vals(K.MaxPool2DGather(z, indices)));
        expect(Math.abs(lhs - rhs)).toBeLessThan(TOL[dtype] * 10 * Math.max(1, Math.abs(lhs)));
      }
    });

    it(`AvgPool2D matches the divisor rule with and without counted padding; backward is its adjoint (${dtype})`, () => {
      for (const c of POOL_CASES) {
        for (const countIncludePad of [false, true]) {
          const p = { ...c.p, countIncludePad };
          const x = make(c.shape, dtype);
          const ref = refAvgPool(vals(x), c.shape, p);
          const y = K.AvgPool2D(x, p);
          expectClose(y, ref.outShape, ref.y, TOL[dtype], dtype);
          const dy = make(ref.outShape, dtype);
          const dx = K.AvgPool2DBackward(dy, c.shape, p);
          expect(dx.shape).toEqual(c.shape);
          const lhs = dot(vals(y), vals(dy)), rhs = dot(vals(x), vals(dx));
          expect(Math.abs(lhs - rhs)).toBeLessThan(TOL[dtype] * 10 * Math.max(1, Math.abs(lhs)));
        }
      }
    });

    it(`AdaptiveAvgPool2D with sizes that do not divide; backward is its adjoint (${dtype})`, () => {
      const cases: [number[], [number, number]][] = [
        [[2, 3, 5, 7], [3, 4]], [[1, 1, 4, 4], [1, 1]], [[1, 2, 3, 3], [5, 2]], [[2, 1, 6, 6], [3, 3]], [[3, 5, 2], [2, 2]],
      ];
      for (const [shape, [OH, OW]] of cases) {
        const x = make(shape, dtype);
        const xv = vals(x);
        const { planes, H, W } = planeDims(shape);
        const ref: number[] = [];
        for (let c = 0; c < planes; c++) {
          for (let i = 0; i < OH; i++) {
            for (let j = 0; j < OW; j++) {
              let s = 0, n = 0;
              for (let h = Math.floor((i * H) / OH); h < Math.ceil(((i + 1) * H) / OH); h++) {
                for (let w = Math.floor((j * W) / OW); w < Math.ceil(((j + 1) * W) / OW); w++) { s += xv[c * H * W + h * W + w]!; n++; }
              }
              ref.push(s / n);
            }
          }
        }
        const outShape = [...shape.slice(0, -2), OH, OW];
        const y = K.AdaptiveAvgPool2D(x, [OH, OW]);
        expectClose(y, outShape, ref, TOL[dtype], dtype);
        const dy = make(outShape, dtype);
        const dx = K.AdaptiveAvgPool2DBackward(dy, shape);
        expect(dx.shape).toEqual(shape);
        const lhs = dot(vals(y), vals(dy)), rhs = dot(xv, vals(dx));
        expect(Math.abs(lhs - rhs)).toBeLessThan(TOL[dtype] * 10 * Math.max(1, Math.abs(lhs)));
      }
      // PyTorch's bins for 5 -> 3 are [0, 2), [1, 4), [3, 5).
      const r = K.AdaptiveAvgPool2D(make([1, 1, 1, 5], dtype, (i) => i), [1, 3]);
      expectClose(r, [1, 1, 1, 3], [0.5, 2, 3.5], 0);
    });
  }

  it('MaxPool2D: ties take the first maximum, NaN wins, an all -inf window points at its first element', () => {
    const p = pc([1, 1, 2, 2], [2, 2], [2, 2], [0, 0], false).p;
    const tie = K.MaxPool2DWithIndices(make([1, 1, 2, 2], 'float64', (i) => [1, 3, 3, 1][i]!), p);
    expect(vals(tie.indices)).toEqual([1]);
    const nanX = make([1, 1, 2, 2], 'float32', (i) => [1, NaN, 5, 2][i]!);
    const nan = K.MaxPool2DWithIndices(nanX, p);
    expect(vals(K.MaxPool2DBackward(make([1, 1, 1, 1], 'float32', () => 7), nanX, nan.y, p))).toEqual([0, 7, 0, 0]);
    expect(vals(nan.y)[0]).toBeNaN();
    expect(vals(nan.indices)).toEqual([1]);
    const inf = K.MaxPool2DWithIndices(make([1, 1, 2, 2], 'float64', () => -Infinity), pc([], [2, 2], [1, 1], [1, 1], false).p);
    expect(vals(inf.y)).toEqual(new Array(9).fill(-Infinity));
    expect(vals(inf.indices)).toEqual([0, 0, 1, 0, 0, 1, 2, 2, 3]);
  });

  it('pooling rejects bad parameters and shapes, naming them', () => {
    const x = make([1, 1, 4, 4], 'float64');
    expect(() => K.MaxPool2D(x, pc([], [2, 2], [2, 2], [2, 2], false).p)).toThrow(/MaxPool2D.*padding \[2, 2\].*\[1, 1, 4, 4\]/);
    expect(() => K.AvgPool2D(make([4, 4], 'float64'), pc([], [2, 2], [2, 2], [0, 0], false).p)).toThrow(/AvgPool2D.*\[4, 4\]/);
    expect(() => K.MaxPool2D(x, pc([], [5, 5], [1, 1], [0, 0], false).p)).toThrow(/MaxPool2D: output size/);
    expect(() => K.AvgPool2DBackward(make([1, 1, 3, 3], 'float64'), [1, 1, 4, 4], pc([], [2, 2], [2, 2], [0, 0], false).p))
      .toThrow(/AvgPool2DBackward: dy \[1, 1, 3, 3\] should be \[1, 1, 2, 2\]/);
  });
});

describe('ts kernels: batch norm', () => {
  const EPS = 1e-5;
  /** Channel statistics by a direct pass over multi-indices: mean and biased variance. */
  function refStats(xv: number[], shape: number[]) {
    const C = shape[1]!, M = size(shape) / C;
    const mean = new Array<number>(C).fill(0), vr = new Array<number>(C).fill(0);
    xv.forEach((v, i) => { mean[unravel(i, shape)[1]!]! += v / M; });
    xv.forEach((v, i) => { const c = unravel(i, shape)[1]!; vr[c]! += (v - mean[c]!) ** 2 / M; });
    return { mean, vr, M };
  }
  const CASES: number[][] = [[4, 3, 2, 3], [1, 2, 5], [3, 1, 2, 2], [5, 4]];
  /** Training forward from the parts: BatchNormStats, then BatchNormElemt. */
  const forward = (x: Raw, w: Raw | null, b: Raw | null) => {
    const st = K.BatchNormStats(x, EPS);
    return { ...st, y: K.BatchNormElemt(x, w, b, st.mean, st.invstd) };
  };
  /** Training gradient from the parts: BatchNormBackwardReduce, then BatchNormBackwardElemt over all M values. */
  const backward = (dy: Raw, x: Raw, w: Raw | null, mean: Raw, invstd: Raw) => {
    const r = K.BatchNormBackwardReduce(dy, x, mean, invstd);
    const M = size(x.shape) / x.shape[1]!;
    return { ...r, dx: K.BatchNormBackwardElemt(dy, x, mean, invstd, w, r.sumDy, r.sumDyXmu, M) };
  };

  for (const dtype of DTYPES) {
    it(`BatchNormStats and BatchNormElemt (batch and running statistics) match the normalization formula (${dtype})`, () => {
      for (const [k, shape] of CASES.entries()) {
        const C = shape[1]!;
        const x = make(shape, dtype, () => 2 * rnd() + 0.5);
        // The third case runs without affine parameters.
        const w = k === 2 ? null : make([C], dtype), b = k === 2 ? null : make([C], dtype);
        const rm = make([C], dtype), rv = make([C], dtype, () => 0.5 + Math.abs(rnd()));
        const xv = vals(x), wv = w ? vals(w) : new Array<number>(C).fill(1), bv = b ? vals(b) : new Array<number>(C).fill(0);
        const { mean, vr } = refStats(xv, shape);
        const tr = forward(x, w, b);
        const yRef = xv.map((v, i) => { const c = unravel(i, shape)[1]!; return ((v - mean[c]!) / Math.sqrt(vr[c]! + EPS)) * wv[c]! + bv[c]!; });
        expectClose(tr.y, shape, yRef, TOL[dtype], dtype);
        expectClose(tr.mean, [C], mean, TOL[dtype], dtype);
        expectClose(tr.invstd, [C], vr.map((v) => 1 / Math.sqrt(v + EPS)), TOL[dtype], dtype);

        // Eval: invstd of the running variance, then the same elementwise kernel.
        const rmv = vals(rm), rvv = vals(rv);
        const invstd = K.BatchNormInvstd(rv, EPS);
        expectClose(invstd, [C], rvv.map((v) => 1 / Math.sqrt(v + EPS)), TOL[dtype], dtype);
        const yEval = xv.map((v, i) => { const c = unravel(i, shape)[1]!; return ((v - rmv[c]!) / Math.sqrt(rvv[c]! + EPS)) * wv[c]! + bv[c]!; });
        expectClose(K.BatchNormElemt(x, w, b, rm, invstd), shape, yEval, TOL[dtype], dtype);
      }
    });

    it(`BatchNormBackwardReduce and BatchNormBackwardElemt match the textbook chain rule through mean and variance (${dtype})`, () => {
      for (const [k, shape] of CASES.entries()) {
        const C = shape[1]!;
        const x = make(shape, dtype), dy = make(shape, dtype);
        const w = k === 2 ? null : make([C], dtype);
        const xv = vals(x), gv = vals(dy), wv = w ? vals(w) : new Array<number>(C).fill(1);
        const { mean, vr, M } = refStats(xv, shape);
        const fw = forward(x, w, null);
        const r = backward(dy, x, w, fw.mean, fw.invstd);
        // dL/dvar and dL/dmean as separate sums (Ioffe & Szegedy 2015, Algorithm 1's backward).
        const chan = (i: number) => unravel(i, shape)[1]!;
        const dvar = new Array<number>(C).fill(0), dmean = new Array<number>(C).fill(0), sumXmu = new Array<number>(C).fill(0);
        const dw = new Array<number>(C).fill(0), db = new Array<number>(C).fill(0), sdx = new Array<number>(C).fill(0);
        xv.forEach((v, i) => {
          const c = chan(i), sd = Math.sqrt(vr[c]! + EPS), dxhat = gv[i]! * wv[c]!;
          dvar[c]! += dxhat * (v - mean[c]!) * -0.5 * sd ** -3;
          dmean[c]! += -dxhat / sd;
          sumXmu[c]! += -2 * (v - mean[c]!);
          dw[c]! += gv[i]! * (v - mean[c]!) / sd;
          db[c]! += gv[i]!;
          sdx[c]! += gv[i]! * (v - mean[c]!);
        });
        const dxRef = xv.map((v, i) => {
          const c = chan(i);
          const dm = dmean[c]! + dvar[c]! * sumXmu[c]! / M;
          return gv[i]! * wv[c]! / Math.sqrt(vr[c]! + EPS) + dvar[c]! * 2 * (v - mean[c]!) / M + dm / M;
        });
        const tol = dtype === 'float64' ? 1e-10 : 2e-5;
        expectClose(r.dx, shape, dxRef, tol, dtype);
        expectClose(r.dweight, [C], dw, tol, dtype);
        expectClose(r.dbias, [C], db, tol, dtype);
        expectClose(r.sumDy, [C], db, tol, dtype);
        expectClose(r.sumDyXmu, [C], sdx, tol, dtype);
      }
    });

    it(`BatchNormUpdateRunning: momentum update with the unbiased variance, the counter advanced in place (${dtype})`, () => {
      const shape = [3, 2, 5], C = 2;
      const x = make(shape, dtype);
      const { mean, vr, M } = refStats(vals(x), shape);
      const st = K.BatchNormStats(x, EPS);
      const rm = make([C], dtype), rv = make([C], dtype, () => 1 + Math.abs(rnd()));
      const counter = make([], 'int64', () => 7);
      const [rm0, rv0] = [vals(rm), vals(rv)];
      K.BatchNormUpdateRunning(rm, rv, counter, st.mean, st.invstd, { eps: EPS, count: M, factor: 0.3 });
      expectClose(rm, [C], rm0.map((r, c) => 0.7 * r + 0.3 * mean[c]!), TOL[dtype], dtype);
      expectClose(rv, [C], rv0.map((r, c) => 0.7 * r + 0.3 * vr[c]! * M / (M - 1)), TOL[dtype] * 10, dtype);
      expect(vals(counter)).toEqual([8]);
      K.BatchNormUpdateRunning(rm, rv, null, st.mean, st.invstd, { eps: EPS, count: M, factor: 1 });
      expectClose(rv, [C], vr.map((v) => v * M / (M - 1)), TOL[dtype] * 10, dtype);
      expect(vals(counter)).toEqual([8]);
    });
  }

  it('BatchNormBackwardReduce and BatchNormBackwardElemt agree with central differences of <dy, y(x, w, b)> (float64)', () => {
    const shape = [2, 3, 2, 2];
    const x = make(shape, 'float64'), w = make([3], 'float64'), b = make([3], 'float64'), dy = make(shape, 'float64');
    const loss = (xs: number[], ws: number[], bs: number[]) => dot(vals(forward(make(shape, 'float64', (i) => xs[i]!),
      make([3], 'float64', (i) => ws[i]!), make([3], 'float64', (i) => bs[i]!)).y), vals(dy));
    const fw = forward(x, w, b);
    const r = backward(dy, x, w, fw.mean, fw.invstd);
    const h = 1e-6;
    const numeric = (arg: number, v: number[]) => v.map((_, i) => {
      const args = [vals(x), vals(w), vals(b)];
      args[arg]![i]! += h; const up = loss(args[0]!, args[1]!, args[2]!);
      args[arg]![i]! -= 2 * h; const down = loss(args[0]!, args[1]!, args[2]!);
      return (up - down) / (2 * h);
    });
    expectClose(r.dx, shape, numeric(0, vals(x)), 1e-6);
    expectClose(r.dweight, [3], numeric(1, vals(w)), 1e-6);
    expectClose(r.dbias, [3], numeric(2, vals(b)), 1e-6);
  });

  it('accumulates float32 statistics in float64', () => {
    // In float32, 1e8 + 1 rounds back to 1e8, so a float32 running sum would lose all the ones.
    const x = make([1, 1, 1001], 'float32', (i) => (i === 0 ? 1e8 : 1));
    const r = K.BatchNormStats(x, EPS);
    expectClose(r.mean, [1], [(1e8 + 1000) / 1001], 1e-7, 'float32');
  });

  it('rejects bad shapes, counts and counters', () => {
    const x = make([2, 3, 2], 'float64'), v = make([3], 'float64');
    expect(() => K.BatchNormElemt(x, make([4], 'float64'), null, v, v))
      .toThrow(/BatchNormElemt: weight of shape \[4\].*\[3\].*\[2, 3, 2\]/);
    expect(() => K.BatchNormStats(make([3], 'float64'), EPS)).toThrow(/BatchNormStats: .*\[N, C, \*\]/);
    expect(() => K.BatchNormBackwardReduce(make([2, 3, 3], 'float64'), x, v, v)).toThrow(/BatchNormBackwardReduce: dy \[2, 3, 3\]/);
    expect(() => K.BatchNormBackwardElemt(x, x, v, v, null, v, v, 0)).toThrow(/BatchNormBackwardElemt: count must be a positive integer/);
    expect(() => K.BatchNormUpdateRunning(v, v, null, v, make([2], 'float64'), { eps: EPS, count: 4, factor: 0.1 }))
      .toThrow(/BatchNormUpdateRunning: invstd of shape \[2\]/);
    expect(() => K.BatchNormUpdateRunning(v, v, null, v, v, { eps: EPS, count: 1, factor: 0.1 })).toThrow(/count must be an integer > 1/);
    expect(() => K.BatchNormUpdateRunning(v, v, make([], 'float64'), v, v, { eps: EPS, count: 4, factor: 0.1 }))
      .toThrow(/counter must be a one-element int64 tensor/);
  });
});
