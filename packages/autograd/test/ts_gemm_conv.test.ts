// The TS backend's GEMM and convolution kernels, called directly on raw tensors and compared with
// naive direct loops written here (independent of im2col/gemm), plus the adjoint identities
// <conv(x, w), dy> = <x, dX(dy, w)> = <w, dW(x, dy)> that tie the three conv kernels together.
import { describe, expect, it } from 'vitest';
import { tsBackend, type Conv2DParams, type Raw } from '@nodegrad/autograd';

const k = tsBackend.kernels;
type FDType = 'float32' | 'float64';
type Buf = Float32Array | Float64Array;

// Each reference element is checked against the forward-error bound of a dot product:
// |got − ref| ≤ rtol · Σ|terms|, so cancellation in a sum cannot make a correct value fail.
const RTOL: Record<FDType, number> = { float64: 1e-12, float32: 1e-5 };

let seed = 1;
function rand(): number {
  // LCG (Numerical Recipes constants), deterministic across runs.
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32 * 2 - 1;
}

function raw(shape: number[], dtype: FDType): Raw {
  const n = shape.reduce((a, b) => a * b, 1);
  const buf = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) buf[i] = rand();
  return { buf, shape, dtype };
}

const data = (x: Raw) => x.buf as Buf;

/** Reference values and their Σ|terms| bounds, both in float64. */
interface Ref { val: Float64Array; abs: Float64Array }

function expectClose(got: Raw, ref: Ref, shape: number[], dtype: FDType): void {
  expect(got.shape).toEqual(shape);
  expect(got.dtype).toBe(dtype);
  expect(got.buf).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
  const g = data(got);
  expect(g.length).toBe(ref.val.length);
  let worst = 0, at = -1;
  for (let i = 0; i < g.length; i++) {
    const ratio = Math.abs(g[i]! - ref.val[i]!) / (ref.abs[i]! + 1e-300);
    if (!(ratio <= worst)) { worst = ratio; at = i; }
  }
  if (!(worst <= RTOL[dtype])) {
    throw new Error(`element ${at}: got ${g[at]}, expected ${ref.val[at]} (error/Σ|terms| = ${worst})`);
  }
}

/** Calls fn and checks it left its inputs untouched. */
function pure<T>(inputs: Raw[], fn: () => T): T {
  const before = inputs.map((x) => data(x).slice());
  const r = fn();
  inputs.forEach((x, i) => {
    const now = data(x), was = before[i]!;
    const changed = now.findIndex((v, j) => !Object.is(v, was[j]));
    expect(changed, 'an input was modified').toBe(-1);
  });
  return r;
}

// ---------------------------------------------------------------- matmul

function naiveMatmul(a: Raw, b: Raw, ta: boolean, tb: boolean, B: number, M: number, K: number, N: number): Ref {
  const A = data(a), Bv = data(b);
  const val = new Float64Array(B * M * N), abs = new Float64Array(B * M * N);
  for (let z = 0; z < B; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0, sa = 0;
        for (let p = 0; p < K; p++) {
          const av = A[z * M * K + (ta ? p * M + i : i * K + p)]!;
          const bv = Bv[z * K * N + (tb ? j * K + p : p * N + j)]!;
          s += av * bv; sa += Math.abs(av * bv);
        }
        val[(z * M + i) * N + j] = s; abs[(z * M + i) * N + j] = sa;
      }
    }
  }
  return { val, abs };
}

describe('ts BatchMatMul', () => {
  // [batch, M, K, N]: non-multiples of the 4x4 tile, and sizes past the KC=256, MC=64, NC=1024 blocks.
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1], [1, 3, 5, 7], [1, 17, 33, 9], [3, 4, 4, 4], [2, 6, 2, 5],
    [1, 70, 300, 13], [1, 5, 3, 1030], [2, 65, 257, 6],
  ];
  for (const dtype of ['float64', 'float32'] as const) {
    for (const [B, M, K, N] of shapes) {
      it(`${dtype} [${B}, ${M}, ${K}] x [${B}, ${K}, ${N}] with every transpose`, () => {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const a = raw(ta ? [B, K, M] : [B, M, K], dtype);
            const b = raw(tb ? [B, N, K] : [B, K, N], dtype);
            const c = pure([a, b], () => k.BatchMatMul(a, b, ta, tb));
            expectClose(c, naiveMatmul(a, b, ta, tb, B, M, K, N), [B, M, N], dtype);
          }
        }
      });
    }
  }

  it('handles empty sizes: M = 0, N = 0, and K = 0 (a zero result)', () => {
    expect(k.BatchMatMul(raw([2, 0, 3], 'float64'), raw([2, 3, 4], 'float64'), false, false).shape).toEqual([2, 0, 4]);
    expect(k.BatchMatMul(raw([1, 3, 5], 'float32'), raw([1, 5, 0], 'float32'), false, false).shape).toEqual([1, 3, 0]);
    const z = k.BatchMatMul(raw([2, 3, 0], 'float64'), raw([2, 0, 4], 'float64'), false, false);
    expect(z.shape).toEqual([2, 3, 4]);
    expect(Array.from(data(z))).toEqual(new Array(24).fill(0));
  });

  it('rejects mismatched inner or batch sizes, naming the shapes', () => {
    expect(() => k.BatchMatMul(raw([1, 2, 3], 'float64'), raw([1, 4, 5], 'float64'), false, false))
      .toThrow(/BatchMatMul.*\[1, 2, 3\].*\[1, 4, 5\]/);
    expect(() => k.BatchMatMul(raw([2, 2, 3], 'float64'), raw([3, 3, 5], 'float64'), false, false))
      .toThrow(/batch 2 vs 3/);
  });
});

// ---------------------------------------------------------------- conv2d

interface Case {
  name: string;
  x: [number, number, number, number]; // N, C, H, W
  o: number; kh: number; kw: number;
  p: Conv2DParams;
}

const P = (stride: [number, number], padding: [number, number], dilation: [number, number], groups: number): Conv2DParams =>
  ({ stride, padding, dilation, groups });

const cases: Case[] = [
  { name: 'plain 3x3', x: [2, 3, 7, 7], o: 4, kh: 3, kw: 3, p: P([1, 1], [0, 0], [1, 1], 1) },
  { name: 'stride 2, padding 1', x: [2, 3, 9, 8], o: 5, kh: 3, kw: 3, p: P([2, 2], [1, 1], [1, 1], 1) },
  { name: 'dilation 2, padding 2', x: [1, 2, 9, 10], o: 3, kh: 3, kw: 3, p: P([1, 1], [2, 2], [2, 2], 1) },
  { name: 'groups 2', x: [2, 4, 6, 7], o: 6, kh: 3, kw: 3, p: P([1, 1], [1, 1], [1, 1], 2) },
  { name: 'depthwise, stride 2', x: [2, 4, 7, 6], o: 4, kh: 3, kw: 3, p: P([2, 2], [1, 1], [1, 1], 4) },
  { name: 'depthwise, multiplier 2', x: [1, 3, 5, 5], o: 6, kh: 3, kw: 3, p: P([1, 1], [1, 1], [1, 1], 3) },
  { name: '1x1 (no im2col)', x: [2, 5, 4, 6], o: 3, kh: 1, kw: 1, p: P([1, 1], [0, 0], [1, 1], 1) },
  { name: '1x1 grouped (no im2col)', x: [2, 6, 3, 5], o: 4, kh: 1, kw: 1, p: P([1, 1], [0, 0], [2, 2], 2) },
  { name: '1x1 padded 0x1', x: [1, 2, 3, 4], o: 3, kh: 1, kw: 1, p: P([1, 1], [0, 1], [1, 1], 1) },
  { name: '1x1 padded 1x0', x: [1, 2, 3, 4], o: 3, kh: 1, kw: 1, p: P([1, 1], [1, 0], [1, 1], 1) },
  { name: '1x1 stride 1x2', x: [1, 3, 5, 6], o: 2, kh: 1, kw: 1, p: P([1, 2], [0, 0], [1, 1], 1) },
  { name: '1x1 stride 2x1', x: [1, 3, 5, 6], o: 2, kh: 1, kw: 1, p: P([2, 1], [0, 0], [1, 1], 1) },
  { name: 'non-square everything', x: [1, 3, 5, 11], o: 2, kh: 2, kw: 4, p: P([1, 3], [1, 0], [2, 1], 1) },
  { name: 'stride 2x1, padding 0x2, 5x2 kernel', x: [2, 2, 9, 4], o: 3, kh: 5, kw: 2, p: P([2, 1], [0, 2], [1, 1], 1) },
  { name: 'padding wider than the input', x: [1, 2, 2, 3], o: 2, kh: 3, kw: 3, p: P([1, 2], [3, 2], [1, 1], 1) },
  { name: 'stride larger than the kernel', x: [1, 2, 11, 10], o: 2, kh: 2, kw: 2, p: P([3, 4], [1, 1], [1, 1], 1) },
  { name: 'blocks past MC and KC', x: [1, 32, 6, 7], o: 70, kh: 3, kw: 3, p: P([1, 1], [1, 1], [1, 1], 1) },
];

function outSize(c: Case): [number, number] {
  const [, , h, w] = c.x;
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] } = c.p;
  return [
    Math.max(0, Math.floor((h + 2 * ph - dh * (c.kh - 1) - 1) / sh) + 1),
    Math.max(0, Math.floor((w + 2 * pw - dw * (c.kw - 1) - 1) / sw) + 1),
  ];
}

/**
 * Visits every (output pixel, weight tap) pair that touches a real input pixel, with the flat
 * indices of x, w and y: the definition of conv2d, written as directly as possible.
 */
function forEachTap(c: Case, fn: (xi: number, wi: number, yi: number) => void): void {
  const [n, ch, h, w] = c.x;
  const [oh, ow] = outSize(c);
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw], groups } = c.p;
  const cg = ch / groups, og = c.o / groups;
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < c.o; o++) {
      const g = Math.floor(o / og);
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const yi = ((b * c.o + o) * oh + y) * ow + x;
          for (let ci = 0; ci < cg; ci++) {
            for (let i = 0; i < c.kh; i++) {
              for (let j = 0; j < c.kw; j++) {
                const iy = y * sh - ph + i * dh, ix = x * sw - pw + j * dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                fn(((b * ch + g * cg + ci) * h + iy) * w + ix, ((o * cg + ci) * c.kh + i) * c.kw + j, yi);
              }
            }
          }
        }
      }
    }
  }
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function naiveConv(c: Case, x: Raw, w: Raw, yShape: number[]): Ref {
  const X = data(x), W = data(w);
  const val = new Float64Array(size(yShape)), abs = new Float64Array(val.length);
  forEachTap(c, (xi, wi, yi) => { val[yi] += X[xi]! * W[wi]!; abs[yi] += Math.abs(X[xi]! * W[wi]!); });
  return { val, abs };
}

function naiveBackpropInput(c: Case, dy: Raw, w: Raw): Ref {
  const DY = data(dy), W = data(w);
  const val = new Float64Array(size(c.x)), abs = new Float64Array(val.length);
  forEachTap(c, (xi, wi, yi) => { val[xi] += DY[yi]! * W[wi]!; abs[xi] += Math.abs(DY[yi]! * W[wi]!); });
  return { val, abs };
}

function naiveBackpropFilter(c: Case, x: Raw, dy: Raw, wShape: number[]): Ref {
  const X = data(x), DY = data(dy);
  const val = new Float64Array(size(wShape)), abs = new Float64Array(val.length);
  forEachTap(c, (xi, wi, yi) => { val[wi] += X[xi]! * DY[yi]!; abs[wi] += Math.abs(X[xi]! * DY[yi]!); });
  return { val, abs };
}

/** <a, b> and Σ|a·b| in float64. */
function dot(a: Raw, b: Raw): [number, number] {
  const A = data(a), B = data(b);
  expect(A.length).toBe(B.length);
  let s = 0, sa = 0;
  for (let i = 0; i < A.length; i++) { s += A[i]! * B[i]!; sa += Math.abs(A[i]! * B[i]!); }
  return [s, sa];
}

function setup(c: Case, dtype: FDType) {
  const wShape = [c.o, c.x[1] / c.p.groups, c.kh, c.kw];
  const yShape = [c.x[0], c.o, ...outSize(c)];
  return { x: raw([...c.x], dtype), w: raw(wShape, dtype), dy: raw(yShape, dtype), wShape, yShape };
}

describe('ts Conv2D and its backprop kernels', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    for (const c of cases) {
      it(`${dtype} ${c.name}: x [${c.x.join(', ')}], ${c.o} out, ${c.kh}x${c.kw}`, () => {
        const { x, w, dy, wShape, yShape } = setup(c, dtype);
        // The reference must visit real taps, or the comparison below could pass vacuously.
        let taps = 0;
        forEachTap(c, () => taps++);
        expect(taps).toBeGreaterThan(0);

        const y = pure([x, w], () => k.Conv2D(x, w, c.p));
        expectClose(y, naiveConv(c, x, w, yShape), yShape, dtype);
        const dx = pure([dy, w], () => k.Conv2DBackpropInput(dy, w, c.x, c.p));
        expectClose(dx, naiveBackpropInput(c, dy, w), [...c.x], dtype);
        const dw = pure([x, dy], () => k.Conv2DBackpropFilter(x, dy, wShape, c.p));
        expectClose(dw, naiveBackpropFilter(c, x, dy, wShape), wShape, dtype);
      });
    }
  }

  for (const c of cases) {
    it(`adjoint identities hold in float64: ${c.name}`, () => {
      const { x, w, dy, wShape } = setup(c, 'float64');
      const [lhs, scale] = dot(k.Conv2D(x, w, c.p), dy);
      const [viaInput] = dot(x, k.Conv2DBackpropInput(dy, w, c.x, c.p));
      const [viaFilter] = dot(w, k.Conv2DBackpropFilter(x, dy, wShape, c.p));
      expect(scale).toBeGreaterThan(0);
      expect(Math.abs(viaInput - lhs)).toBeLessThanOrEqual(1e-12 * scale);
      expect(Math.abs(viaFilter - lhs)).toBeLessThanOrEqual(1e-12 * scale);
    });
  }

  it('gives empty output and zero gradients when the kernel is larger than the padded input', () => {
    const p = P([1, 1], [0, 0], [1, 1], 1);
    const x = raw([2, 3, 2, 2], 'float32'), w = raw([4, 3, 3, 3], 'float32');
    expect(k.Conv2D(x, w, p).shape).toEqual([2, 4, 0, 0]);
    const dy = raw([2, 4, 0, 0], 'float32');
    const dx = k.Conv2DBackpropInput(dy, w, [2, 3, 2, 2], p);
    expect(dx.shape).toEqual([2, 3, 2, 2]);
    expect(Array.from(data(dx))).toEqual(new Array(24).fill(0));
    const dw = k.Conv2DBackpropFilter(x, dy, [4, 3, 3, 3], p);
    expect(dw.shape).toEqual([4, 3, 3, 3]);
    expect(Array.from(data(dw))).toEqual(new Array(108).fill(0));
    expect(k.Conv2D(raw([0, 3, 5, 5], 'float64'), raw([4, 3, 3, 3], 'float64'), p).shape).toEqual([0, 4, 3, 3]);
  });

  it('rejects channels that do not fit groups and a wrongly sized output gradient', () => {
    const p = P([1, 1], [0, 0], [1, 1], 2);
    expect(() => k.Conv2D(raw([1, 4, 5, 5], 'float64'), raw([4, 3, 3, 3], 'float64'), p))
      .toThrow(/Conv2D.*\[1, 4, 5, 5\].*\[4, 3, 3, 3\].*groups=2/);
    expect(() => k.Conv2DBackpropInput(raw([1, 4, 2, 3], 'float64'), raw([4, 2, 3, 3], 'float64'), [1, 4, 5, 5], p))
      .toThrow(/Conv2DBackpropInput.*\[1, 4, 2, 3\].*\[1, 4, 3, 3\]/);
  });
});
