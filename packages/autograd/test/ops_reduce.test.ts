import { describe, expect, it } from 'vitest';
import {
  amax, amin, argmax, argmin, manualSeed, max, mean, min, randn, sum, tensor, variance, type Tensor,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const leaf = (shape: number[]) => randn(shape, { dtype: 'float64', requiresGrad: true });
const vals = (t: Tensor) => Array.from(t.toTypedArray());

type Dims = number | number[] | undefined;
// (shape, dims) cases: all dims, first, negative, several, a size-1 dim, and a 0-d input.
const CASES: [number[], Dims][] = [
  [[2, 3, 2], undefined], [[2, 3, 2], 0], [[2, 3, 2], -1], [[2, 3, 2], [0, 2]], [[3, 1, 2], 1], [[], undefined],
];

describe('sum and mean', () => {
  for (const [name, op] of [['sum', sum], ['mean', mean]] as const) {
    it(`${name}: gradcheck over dims with and without keepdim`, () => {
      manualSeed(21);
      for (const [shape, dims] of CASES) {
        for (const keepdim of [false, true]) {
          expect(gradcheck((x) => op(x, dims, keepdim), [leaf(shape)])).toBe(true);
        }
      }
      expect(gradgradcheck((x) => op(x.mul(x), 1, true), [leaf([2, 3])])).toBe(true);
    });
  }

  it('shapes and values follow PyTorch', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64' });
    expect(vals(sum(x))).toEqual([21]);
    expect(sum(x).shape).toEqual([]);
    expect(sum(x, 0).toArray()).toEqual([5, 7, 9]);
    expect(sum(x, -1, true).toArray()).toEqual([[6], [15]]);
    expect(mean(x, 1).toArray()).toEqual([2, 5]);
    expect(mean(x, [0, 1], true).shape).toEqual([1, 1]);
    expect(x.sum([1, 0]).item()).toBe(21);
  });
});

describe('amax, amin, max and min', () => {
  for (const [name, op] of [['amax', amax], ['amin', amin]] as const) {
    it(`${name}: gradcheck over dims with and without keepdim (distinct values)`, () => {
      manualSeed(22);
      for (const [shape, dims] of CASES) {
        for (const keepdim of [false, true]) {
          expect(gradcheck((x) => op(x, dims, keepdim), [leaf(shape)])).toBe(true);
        }
      }
    });
  }

  it('amax/amin: values, and the gradient shared evenly among tied extrema', () => {
    const x = tensor([[1, 3, 3], [2, -1, 0]], { dtype: 'float64', requiresGrad: true });
    expect(amax(x, 1).toArray()).toEqual([3, 2]);
    expect(amin(x, 0, true).toArray()).toEqual([[1, -1, 0]]);
    max(x).backward();
    expect(vals(x.grad!)).toEqual([0, 0.5, 0.5, 0, 0, 0]);
  });

  it('max/min over a dim give values and indices, and send the gradient to the chosen element, as PyTorch', () => {
    // torch 2.15, x = [[2, 2, 1], [0, 3, 3]]:
    //   v, i = torch.max(x, 1): v [2, 3], i [0, 1]; v.sum().backward(): x.grad [[1, 0, 0], [0, 1, 0]]
    //   torch.amax(x, 1).sum().backward(): [[.5, .5, 0], [0, .5, .5]]; torch.max(x).backward(): [[0, 0, 0], [0, .5, .5]]
    //   v, i = torch.min(x, 0, keepdim=True): v [[0, 2, 1]], i [[1, 0, 0]]; v.sum().backward(): [[0, 1, 1], [1, 0, 0]]
    const grad = (f: (x: Tensor) => Tensor) => {
      const x = tensor([[2, 2, 1], [0, 3, 3]], { dtype: 'float64', requiresGrad: true });
      f(x).sum().backward();
      return x.grad!.toArray();
    };
    const x = tensor([[2, 2, 1], [0, 3, 3]], { dtype: 'float64' });
    const m = max(x, 1);
    expect([m.values.toArray(), m.indices.toArray(), m.indices.dtype]).toEqual([[2, 3], [0, 1], 'int64']);
    const n = x.min(0, true);
    expect([n.values.toArray(), n.indices.toArray()]).toEqual([[[0, 2, 1]], [[1, 0, 0]]]);
    expect(grad((t) => max(t, 1).values)).toEqual([[1, 0, 0], [0, 1, 0]]);
    expect(grad((t) => amax(t, 1))).toEqual([[0.5, 0.5, 0], [0, 0.5, 0.5]]);
    expect(grad((t) => max(t))).toEqual([[0, 0, 0], [0, 0.5, 0.5]]);
    expect(grad((t) => min(t, 0, true).values)).toEqual([[0, 1, 1], [1, 0, 0]]);
  });

  it('max/min over a dim: gradcheck and gradgradcheck (distinct values)', () => {
    manualSeed(23);
    for (const keepdim of [false, true]) {
      for (const dim of [0, 1, -1]) {
        expect(gradcheck((x) => max(x, dim, keepdim).values, [leaf([3, 4])])).toBe(true);
        expect(gradcheck((x) => min(x, dim, keepdim).values, [leaf([3, 4])])).toBe(true);
      }
    }
    expect(gradgradcheck((x) => max(x.mul(x), 1).values, [leaf([2, 3])])).toBe(true);
  });
});

describe('variance', () => {
  /** Two-pass variance of a list with the given correction. */
  const refVar = (xs: number[], correction: number) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - correction);
  };

  it('unbiased by default, biased with correction 0, over rows and columns', () => {
    const rows = [[1, 2, 4, 7], [0.5, -3, 2, 2]];
    const x = tensor(rows, { dtype: 'float64' });
    vals(variance(x, 1)).forEach((v, i) => expect(v).toBeCloseTo(refVar(rows[i]!, 1), 13));
    vals(variance(x, 1, { correction: 0 })).forEach((v, i) => expect(v).toBeCloseTo(refVar(rows[i]!, 0), 13));
    vals(variance(x, 0)).forEach((v, j) => expect(v).toBeCloseTo(refVar([rows[0]![j]!, rows[1]![j]!], 1), 13));
    expect(variance(x).item()).toBeCloseTo(refVar(rows.flat(), 1), 13);
    expect(variance(x, -1, { keepdim: true }).shape).toEqual([2, 1]);
    expect(x.var(undefined, { correction: 0 }).item()).toBeCloseTo(refVar(rows.flat(), 0), 13);
  });

  it('gradcheck: biased and unbiased over dims, keepdim; gradgradcheck', () => {
    manualSeed(23);
    for (const [shape, dims] of CASES.slice(0, 5)) {
      for (const correction of [0, 1]) {
        if (shape[1] === 1 && dims === 1 && correction === 1) continue; // one sample: 0/0, NaN as PyTorch
        for (const keepdim of [false, true]) {
          expect(gradcheck((x) => variance(x, dims, { correction, keepdim }), [leaf(shape)])).toBe(true);
        }
      }
    }
    expect(gradgradcheck((x) => variance(x, 1), [leaf([2, 3])])).toBe(true);
    expect(vals(variance(leaf([2, 1]), 1)).every(Number.isNaN)).toBe(true);
    expect(vals(variance(leaf([2, 1]), 1, { correction: 0 }))).toEqual([0, 0]);
  });
});

describe('argmax and argmin', () => {
  it('return int64 indices of the first extremum, along a dim or flattened', () => {
    const x = tensor([[1, 5, 5, 0], [2, 2, -1, -1]], { dtype: 'float64' });
    const am = argmax(x, 1);
    expect(am.dtype).toBe('int64');
    expect(vals(am)).toEqual([1, 0]);
    expect(vals(argmin(x, 1))).toEqual([3, 2]);
    expect(vals(argmax(x, 0))).toEqual([1, 0, 0, 0]);
    expect(argmax(x, -1, true).shape).toEqual([2, 1]);
    expect(argmax(x).item()).toBe(1);
    expect(argmax(x).shape).toEqual([]);
    expect(argmin(x).item()).toBe(6);
    expect(x.argmin(0).toArray()).toEqual([0, 1, 1, 1]);
  });
});
