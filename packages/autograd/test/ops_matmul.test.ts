import { describe, expect, it } from 'vitest';
import { bmm, linear, manualSeed, matmul, randn, type Tensor } from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const leaf = (shape: number[]) => randn(shape, { dtype: 'float64', requiresGrad: true });
const vals = (t: Tensor) => Array.from(t.toTypedArray());

/** Element (batch index list, i, j) of a row-major tensor, with size-1 batch dims broadcast. */
function at(t: Tensor, batch: number[], i: number, j: number): number {
  const s = t.shape;
  const lead = s.length - 2;
  let off = 0;
  for (let d = 0; d < lead; d++) {
    const idx = s[d] === 1 ? 0 : batch[batch.length - lead + d]!;
    off = off * s[d]! + idx;
  }
  return t.toTypedArray()[(off * s[lead]! + i) * s[lead + 1]! + j]!;
}

/** torch.matmul by its definition: promote 1-D, broadcast batch dims, triple loop, squeeze. */
function refMatmul(a: Tensor, b: Tensor): { shape: number[]; data: number[] } {
  const A = a.ndim === 1 ? a.reshape([1, a.shape[0]!]) : a;
  const B = b.ndim === 1 ? b.reshape([b.shape[0]!, 1]) : b;
  const [m, k] = A.shape.slice(-2) as [number, number];
  const n = B.shape[B.ndim - 1]!;
  const ba = A.shape.slice(0, -2), bb = B.shape.slice(0, -2);
  const nb = Math.max(ba.length, bb.length);
  const batch = Array.from({ length: nb }, (_, i) => Math.max(ba[ba.length - nb + i] ?? 1, bb[bb.length - nb + i] ?? 1));
  const data: number[] = [];
  const walk = (prefix: number[]) => {
    if (prefix.length < nb) { for (let i = 0; i < batch[prefix.length]!; i++) walk([...prefix, i]); return; }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += at(A, prefix, i, p) * at(B, prefix, p, j);
        data.push(acc);
      }
    }
  };
  walk([]);
  return { shape: [...batch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])], data };
}

// Every rank combination: dot, vector-matrix, matrix-vector, matrix, batched with a shared
// matrix or vector, broadcast batch dims on either side, size-1 dims.
const CASES: [number[], number[]][] = [
  [[3], [3]], [[3], [3, 2]], [[2, 3], [3]], [[2, 3], [3, 4]], [[2, 2, 3], [3]], [[3], [2, 3, 2]],
  [[2, 2, 3], [3, 2]], [[2, 3], [2, 3, 2]], [[2, 1, 2, 3], [3, 3, 2]], [[1, 2, 3], [2, 3, 1]], [[1, 1], [1, 1]],
];

describe('matmul', () => {
  it('matches a reference triple loop for every rank combination', () => {
    manualSeed(31);
    for (const [sa, sb] of CASES) {
      const a = leaf(sa), b = leaf(sb);
      const y = matmul(a, b);
      const ref = refMatmul(a, b);
      expect(y.shape).toEqual(ref.shape);
      vals(y).forEach((v, i) => expect(v).toBeCloseTo(ref.data[i]!, 12));
    }
  });

  it('gradcheck for every rank combination', () => {
    manualSeed(32);
    for (const [sa, sb] of CASES) expect(gradcheck(matmul, [leaf(sa), leaf(sb)])).toBe(true);
    // One operand fixed: only the other gets a gradient.
    const w = randn([3, 2], { dtype: 'float64' });
    expect(gradcheck((a) => matmul(a, w), [leaf([2, 2, 3])])).toBe(true);
    expect(gradcheck((b) => b.matmul(b.transpose(0, 1)), [leaf([3, 2])])).toBe(true);
  });

  it('gradgradcheck for dot, matrix, batched and broadcast cases', () => {
    manualSeed(33);
    for (const [sa, sb] of [CASES[0]!, CASES[3]!, CASES[4]!, CASES[7]!, CASES[8]!]) {
      expect(gradgradcheck(matmul, [leaf(sa), leaf(sb)])).toBe(true);
    }
  });

  it('larger batched broadcast in fast mode', () => {
    manualSeed(34);
    expect(gradcheck(matmul, [leaf([3, 1, 4, 5]), leaf([2, 5, 6])], { fastMode: true })).toBe(true);
    expect(gradgradcheck(matmul, [leaf([2, 4, 5]), leaf([5, 3])], undefined, { fastMode: true })).toBe(true);
  });
});

describe('bmm with transpose flags', () => {
  const T = (x: Tensor, t: boolean) => (t ? x.transpose(1, 2) : x);
  for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`transA=${tA} transB=${tB}: forward equals matmul of transposes; gradcheck, gradgradcheck`, () => {
      manualSeed(35);
      const a = leaf(tA ? [2, 3, 2] : [2, 2, 3]);
      const b = leaf(tB ? [2, 4, 3] : [2, 3, 4]);
      const y = bmm(a, b, tA, tB);
      const ref = refMatmul(T(a, tA), T(b, tB));
      expect(y.shape).toEqual(ref.shape);
      vals(y).forEach((v, i) => expect(v).toBeCloseTo(ref.data[i]!, 12));
      expect(gradcheck((p, q) => bmm(p, q, tA, tB), [a, b])).toBe(true);
      expect(gradgradcheck((p, q) => bmm(p, q, tA, tB), [a, b])).toBe(true);
    });
  }
});

describe('linear', () => {
  it('equals x @ W^T + b', () => {
    manualSeed(36);
    const x = leaf([2, 3]), w = leaf([4, 3]), b = leaf([4]);
    const y = linear(x, w, b);
    const ref = refMatmul(x, w.transpose(0, 1));
    expect(y.shape).toEqual([2, 4]);
    const bv = vals(b);
    vals(y).forEach((v, i) => expect(v).toBeCloseTo(ref.data[i]! + bv[i % 4]!, 12));
  });

  it('gradcheck with and without bias, for 1-D, 2-D and 3-D inputs; gradgradcheck', () => {
    manualSeed(37);
    for (const xs of [[3], [2, 3], [2, 2, 3], [0, 3]]) {
      expect(gradcheck((x, w, b) => linear(x, w, b), [leaf(xs), leaf([2, 3]), leaf([2])])).toBe(true);
      expect(gradcheck((x, w) => linear(x, w), [leaf(xs), leaf([2, 3])])).toBe(true);
    }
    expect(gradgradcheck((x, w, b) => linear(x, w, b), [leaf([2, 3]), leaf([2, 3]), leaf([2])])).toBe(true);
  });
});
