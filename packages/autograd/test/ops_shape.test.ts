import { describe, expect, it } from 'vitest';
import {
  arange, cat, chunk, expand, flatten, manualSeed, narrow, noGrad, pad, permute, randn, reshape, slice, sliceScatter, split, squeeze,
  stack, tensor, transpose, unsqueeze, view, type Tensor,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const leaf = (shape: number[]) => randn(shape, { dtype: 'float64', requiresGrad: true });
const vals = (t: Tensor) => Array.from(t.toTypedArray());
/** 0, 1, 2, ... as a float64 tensor, so moved elements show where they came from. */
const iota = (shape: number[]) => arange(0, shape.reduce((a, b) => a * b, 1), 1, { dtype: 'float64' }).reshape(shape);

/** Reference x[b0:e0:s0, ...] over nested arrays, dims given as [start, end, step] triples. */
function refSlice(x: unknown, ranges: [number, number, number][]): unknown {
  if (!ranges.length) return x;
  const [[b, e, s], ...rest] = ranges as [[number, number, number], ...[number, number, number][]];
  const out: unknown[] = [];
  for (let i = b; i < e; i += s) out.push(refSlice((x as unknown[])[i], rest));
  return out;
}

describe('views and layout', () => {
  it('reshape, view and flatten keep elements and gradcheck', () => {
    manualSeed(1);
    const x = leaf([2, 3, 2]);
    expect(reshape(x, [3, -1]).shape).toEqual([3, 4]);
    expect(vals(view(x, [12]))).toEqual(vals(x));
    expect(flatten(x).shape).toEqual([12]);
    expect(flatten(x, 1).shape).toEqual([2, 6]);
    expect(flatten(x, 0, -2).shape).toEqual([6, 2]);
    expect(flatten(tensor(3, { dtype: 'float64' })).shape).toEqual([1]);
    expect(gradcheck((t) => reshape(t, [3, -1]).mul(t.reshape([3, 4])), [x])).toBe(true);
    expect(gradcheck((t) => view(t, [2, 6]), [x])).toBe(true);
    expect(gradcheck((t) => flatten(t, 1), [x])).toBe(true);
    expect(gradcheck((t) => reshape(t, []), [leaf([1, 1])])).toBe(true);
  });

  it('permute and transpose move elements and gradcheck', () => {
    manualSeed(2);
    const x = iota([2, 3, 4]);
    const p = permute(x, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    // p[k, i, j] = x[i, j, k] = 12 i + 4 j + k
    expect((p.toArray() as number[][][])[3]![1]![2]).toBe(12 + 8 + 3);
    expect(transpose(x, -1, 0).shape).toEqual([4, 3, 2]);
    expect((transpose(x, 0, 1).toArray() as number[][][])[2]![1]![3]).toBe(12 + 8 + 3);
    const y = leaf([2, 3, 4]);
    expect(gradcheck((t) => permute(t, [2, 0, 1]), [y])).toBe(true);
    expect(gradcheck((t) => permute(t, [-1, -3, -2]).mul(2), [y])).toBe(true);
    expect(gradcheck((t) => transpose(t, 0, -1), [y])).toBe(true);
    expect(gradgradcheck((t) => permute(t, [1, 0]).mul(t.transpose(0, 1)), [leaf([2, 3])])).toBe(true);
  });

  it('expand broadcasts and sums back in the gradient', () => {
    manualSeed(3);
    const x = leaf([3, 1]);
    const e = expand(x, [2, 3, 4]);
    expect(e.shape).toEqual([2, 3, 4]);
    expect((e.toArray() as number[][][])[1]![2]![3]).toBe(vals(x)[2]);
    expect(expand(x, [-1, 5]).shape).toEqual([3, 5]);
    expect(gradcheck((t) => expand(t, [2, 3, 4]), [x])).toBe(true);
    expect(gradcheck((t) => expand(t, [-1, 2]), [x])).toBe(true);
    expect(gradcheck((t) => expand(t, [2, 3]), [leaf([])])).toBe(true);
    expect(gradgradcheck((t) => expand(t, [2, 3, 2]).mul(2), [x])).toBe(true);
  });

  it('squeeze and unsqueeze handle size-1, negative and 0-d dims', () => {
    manualSeed(4);
    const x = leaf([1, 3, 1, 2]);
    expect(squeeze(x).shape).toEqual([3, 2]);
    expect(squeeze(x, 2).shape).toEqual([1, 3, 2]);
    expect(squeeze(x, -2).shape).toEqual([1, 3, 2]);
    expect(squeeze(x, 1).shape).toEqual([1, 3, 1, 2]); // not size 1: unchanged
    expect(unsqueeze(x, -1).shape).toEqual([1, 3, 1, 2, 1]);
    expect(unsqueeze(x, 0).shape).toEqual([1, 1, 3, 1, 2]);
    expect(unsqueeze(tensor(2, { dtype: 'float64' }), 0).shape).toEqual([1]);
    expect(gradcheck((t) => squeeze(t), [x])).toBe(true);
    expect(gradcheck((t) => squeeze(t, 0), [x])).toBe(true);
    expect(gradcheck((t) => unsqueeze(t, -2), [x])).toBe(true);
    expect(gradcheck((t) => unsqueeze(t, 0), [leaf([])])).toBe(true);
  });
});

describe('narrow and slice', () => {
  it('match a reference slice, Python bounds included', () => {
    const x = iota([4, 5]);
    const ref = x.toArray();
    expect(narrow(x, 1, 1, 3).toArray()).toEqual(refSlice(ref, [[0, 4, 1], [1, 4, 1]]));
    expect(narrow(x, 0, -2, 2).toArray()).toEqual(refSlice(ref, [[2, 4, 1], [0, 5, 1]]));
    expect(slice(x, 1, 1, null, 2).toArray()).toEqual(refSlice(ref, [[0, 4, 1], [1, 5, 2]]));
    expect(slice(x, -1, -4, -1).toArray()).toEqual(refSlice(ref, [[0, 4, 1], [1, 4, 1]]));
    expect(slice(x, 0, undefined, undefined, 3).toArray()).toEqual(refSlice(ref, [[0, 4, 3], [0, 5, 1]]));
    expect(slice(x, 0, -100, 100).toArray()).toEqual(ref); // clamped, as Python
    expect(slice(x, 0, 3, 1).shape).toEqual([0, 5]);
    expect(slice(x, 1, 4, 100).shape).toEqual([4, 1]);
    expect(x.slice(1, 0, 5, 2).shape).toEqual([4, 3]);
  });

  it('gradcheck, strided and empty slices included', () => {
    manualSeed(5);
    const x = leaf([4, 5]);
    expect(gradcheck((t) => narrow(t, 1, 1, 3), [x])).toBe(true);
    expect(gradcheck((t) => narrow(t, -2, -3, 2), [x])).toBe(true);
    expect(gradcheck((t) => slice(t, 1, 1, null, 2), [x])).toBe(true);
    expect(gradcheck((t) => slice(t, 0, -1, undefined, 1), [x])).toBe(true);
    expect(gradcheck((t) => slice(slice(t, 0, 0, 4, 3), 1, 0, 5, 2), [x])).toBe(true);
    expect(gradcheck((t) => slice(t, 1, 0, 5, 4).mul(t.slice(1, 1, 3)), [x])).toBe(true);
    expect(gradcheck((t) => slice(t, 0, 3, 1).sum().add(t.sum()), [x])).toBe(true);
    expect(gradcheck((t) => slice(t, 1, 0, 1), [leaf([2, 1, 3]).squeeze(1)])).toBe(true);
  });

  it('gradgradcheck through slice and pad, each the adjoint of the other', () => {
    manualSeed(6);
    const x = leaf([3, 4]);
    expect(gradgradcheck((t) => slice(t, 1, 1, null, 2).mul(t.slice(1, 0, 4, 2)), [x])).toBe(true);
    expect(gradgradcheck((t) => pad(t, [1, 2]).mul(pad(t, [0, 3])), [x])).toBe(true);
  });
});

describe('sliceScatter, and in-place ops through views and slices', () => {
  it('sliceScatter puts src in the slice and keeps the rest, as torch.slice_scatter', () => {
    const x = iota([3, 5]);
    const out = sliceScatter(x, tensor([[-1, -2, -3]], { dtype: 'float64' }).expand([3, 3]), 1, 0, null, 2);
    expect(out.toArray()).toEqual([[-1, 1, -2, 3, -3], [-1, 6, -2, 8, -3], [-1, 11, -2, 13, -3]]);
    expect(x.sliceScatter(tensor([[9, 9, 9, 9, 9]], { dtype: 'float64' }), 0, -1).toArray())
      .toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [9, 9, 9, 9, 9]]);
    // NaN and Inf outside the slice are kept, not lost to arithmetic.
    const y = tensor([NaN, Infinity, 1], { dtype: 'float64' });
    expect(sliceScatter(y, tensor([5], { dtype: 'float64' }), 0, 2).toArray()).toEqual([NaN, Infinity, 5]);
  });

  it('gradcheck and gradgradcheck: sliceScatter, and functions that write in place through views and slices', () => {
    manualSeed(8);
    const [x, w] = [leaf([3, 5]), leaf([3, 2])];
    expect(gradcheck((a, b) => sliceScatter(a, b, 1, 1, null, 2), [x, w])).toBe(true);
    expect(gradgradcheck((a, b) => sliceScatter(a.mul(a), b.mul(b), 1, 1, 5, 2), [x, w])).toBe(true);
    const write = (a: Tensor, b: Tensor) => {
      const y = a.mul(a);
      y.slice(1, 1, null, 2).mul_(b);         // a strided slice
      y.view([15]).narrow(0, 0, 4).add_(1);   // a slice of a view
      y.narrow(0, 1, 2).view([10]).tanh_();   // a view of a slice
      return y;
    };
    expect(gradcheck(write, [x, w])).toBe(true);
    expect(gradgradcheck(write, [x, w])).toBe(true);
  });

  it('without recording an in-place op on a slice writes into its base, up a chain of slices and views', () => {
    const x = iota([2, 6]);
    noGrad(() => x.view([3, 4]).narrow(1, 1, 2).slice(0, null, null, 2).fill_(-1));
    expect(x.toArray()).toEqual([[0, -1, -1, 3, 4, 5], [6, 7, 8, -1, -1, 11]]);
    expect(x.version).toBe(1);
  });

  it('a slice taken before its base changed shows the new values, as a PyTorch view does', () => {
    const x = iota([2, 3]);
    const row = x.narrow(0, 1, 1);
    x.mul_(10);
    expect(row.toArray()).toEqual([[30, 40, 50]]);
    expect(row.add(1).toArray()).toEqual([[31, 41, 51]]);
  });
});

describe('pad', () => {
  it('uses F.pad ordering (last dim first) and the fill value', () => {
    const x = tensor([[1, 2], [3, 4]], { dtype: 'float64' });
    expect(pad(x, [1, 0]).toArray()).toEqual([[0, 1, 2], [0, 3, 4]]);
    expect(pad(x, [0, 1, 1, 0], -1).toArray()).toEqual([[-1, -1, -1], [1, 2, -1], [3, 4, -1]]);
    expect(pad(x.unsqueeze(0), [0, 0, 0, 0, 1, 0]).shape).toEqual([2, 2, 2]);
    // Negative amounts crop, as in PyTorch.
    expect(pad(x, [-1, 1]).toArray()).toEqual([[2, 0], [4, 0]]);
    expect(pad(x, [0, 0, -1, 0]).toArray()).toEqual([[3, 4]]);
    const y = pad(x, []);
    expect(y.toArray()).toEqual(x.toArray());
    expect(y.storage).not.toBe(x.storage);
  });

  it('gradchecks over one, two and three dims, with cropping', () => {
    manualSeed(7);
    const x = leaf([2, 3, 2]);
    expect(gradcheck((t) => pad(t, [1, 2]), [x])).toBe(true);
    expect(gradcheck((t) => pad(t, [0, 1, 2, 0], 3.5), [x])).toBe(true);
    expect(gradcheck((t) => pad(t, [1, 1, 1, 1, 1, 0]), [x])).toBe(true);
    expect(gradcheck((t) => pad(t, [-1, 1, 0, -2]), [x])).toBe(true);
    expect(gradcheck((t) => t.pad([2, 0]), [leaf([3])])).toBe(true);
  });
});

describe('cat, stack, split, chunk', () => {
  it('cat joins along any dim and routes gradients back to each input', () => {
    manualSeed(8);
    const a = leaf([2, 3]), b = leaf([2, 1]), c = leaf([2, 2]);
    const y = cat([a, b, c], 1);
    expect(y.shape).toEqual([2, 6]);
    const rows = y.toArray() as number[][];
    expect(rows[1]).toEqual([...vals(a).slice(3), ...vals(b).slice(1), ...vals(c).slice(2)]);
    expect(cat([a, leaf([1, 3])], -2).shape).toEqual([3, 3]);
    expect(gradcheck((p, q, r) => cat([p, q, r], 1), [a, b, c])).toBe(true);
    expect(gradcheck((p, q, r) => cat([p, q, r], -1).mul(2), [a, b, c])).toBe(true);
    expect(gradcheck((p, q) => cat([p, q], 0), [leaf([1, 2, 2]), leaf([2, 2, 2])])).toBe(true);
    // An input that does not require grad gets none; the others still do.
    const fixed = randn([2, 2], { dtype: 'float64' });
    expect(gradcheck((p) => cat([fixed, p], 1), [a])).toBe(true);
    expect(gradgradcheck((p, q) => cat([p, q], 1).mul(cat([q, p], 1)), [leaf([2, 2]), leaf([2, 2])])).toBe(true);
  });

  it('stack inserts a new dim anywhere', () => {
    manualSeed(9);
    const a = leaf([2, 3]), b = leaf([2, 3]);
    expect(stack([a, b]).shape).toEqual([2, 2, 3]);
    expect(stack([a, b], 1).shape).toEqual([2, 2, 3]);
    const last = stack([a, b], -1);
    expect(last.shape).toEqual([2, 3, 2]);
    expect((last.toArray() as number[][][])[1]![2]).toEqual([vals(a)[5], vals(b)[5]]);
    expect(stack([tensor(1, { dtype: 'float64' }), tensor(2, { dtype: 'float64' })]).toArray()).toEqual([1, 2]);
    expect(gradcheck((p, q) => stack([p, q], 0), [a, b])).toBe(true);
    expect(gradcheck((p, q) => stack([p, q, p], -1), [a, b])).toBe(true);
    expect(gradcheck((p, q) => stack([p, q], -1), [leaf([]), leaf([])])).toBe(true);
  });

  it('split and chunk cut as torch.split / torch.chunk', () => {
    manualSeed(10);
    const x = leaf([5, 2]);
    expect(split(x, 2).map((t) => t.shape[0])).toEqual([2, 2, 1]);
    expect(split(x, [1, 4]).map((t) => t.shape[0])).toEqual([1, 4]);
    expect(chunk(x, 2).map((t) => t.shape[0])).toEqual([3, 2]);
    expect(chunk(x, 2, -1).map((t) => t.shape)).toEqual([[5, 1], [5, 1]]);
    expect(vals(cat(split(x, 2), 0))).toEqual(vals(x));
    expect(gradcheck((t) => split(t, 2), [x])).toBe(true);
    expect(gradcheck((t) => { const [p, q] = chunk(t, 2, 1); return p!.mul(q!); }, [x])).toBe(true);
  });
});
