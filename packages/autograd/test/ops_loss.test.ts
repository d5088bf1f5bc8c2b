/**
 * softmax, logSoftmax, nllLoss, crossEntropy, mseLoss, oneHot and dropout. Values are checked
 * against plain loops written here from PyTorch's documented formulas (weights, ignoreIndex, label
 * smoothing, each reduction, probability targets); gradients by gradcheck, and second derivatives
 * of logSoftmax and crossEntropy by gradgradcheck.
 */
import { describe, expect, it } from 'vitest';
import {
  crossEntropy, dropout, grad, logSoftmax, manualSeed, mseLoss, nllLoss, oneHot, randn, rand, softmax, tensor,
  type Reduction, type Tensor,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const f64 = (shape: number[], requiresGrad = true) => randn(shape, { dtype: 'float64', requiresGrad });
const arr = (t: Tensor) => Array.from(t.toTypedArray());

function expectArrayClose(actual: ArrayLike<number>, expected: number[], tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    if (Number.isNaN(e)) expect(actual[i]).toBeNaN();
    else expect(Math.abs(actual[i]! - e)).toBeLessThan(tol * (1 + Math.abs(e)));
  });
}

/** Rows along `dim` of a tensor: [outer * inner] lists of flat offsets. */
function rowsAlong(shape: readonly number[], dim: number): number[][] {
  const d = dim < 0 ? dim + shape.length : dim;
  const outer = shape.slice(0, d).reduce((a, b) => a * b, 1), len = shape[d]!;
  const inner = shape.slice(d + 1).reduce((a, b) => a * b, 1);
  const rows: number[][] = [];
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
    rows.push(Array.from({ length: len }, (_, k) => (o * len + k) * inner + i));
  }
  return rows;
}

function softmaxRef(x: Tensor, dim: number, log: boolean): number[] {
  const a = arr(x), out = new Array<number>(a.length);
  for (const row of rowsAlong(x.shape, dim)) {
    const lse = Math.log(row.reduce((s, k) => s + Math.exp(a[k]!), 0));
    for (const k of row) out[k] = log ? a[k]! - lse : Math.exp(a[k]! - lse);
  }
  return out;
}

interface XentOpts { weight?: number[]; ignoreIndex?: number; reduction: Reduction; eps?: number }

/**
 * PyTorch's cross entropy with class indices, written out per position: with logp = logSoftmax,
 * nll_i = -w[t_i] logp[t_i], smooth_i = -sum_c w_c logp_c (both 0 where t_i is ignored);
 * loss = (1 - eps) nll + eps / C smooth, the mean dividing both by sum_i w[t_i] over counted i.
 * With eps 0 and logp given directly it is nll_loss.
 */
function xentRef(logp: number[][], t: number[], o: XentOpts): number[] {
  const C = logp[0]!.length, w = o.weight ?? Array<number>(C).fill(1), eps = o.eps ?? 0;
  const ignore = o.ignoreIndex ?? -100;
  let nll = 0, smooth = 0, wsum = 0;
  const each = logp.map((lp, i) => {
    if (t[i] === ignore) return 0;
    const n = -w[t[i]!]! * lp[t[i]!]!, s = -lp.reduce((acc, v, c) => acc + w[c]! * v, 0);
    nll += n; smooth += s; wsum += w[t[i]!]!;
    return (1 - eps) * n + (eps / C) * s;
  });
  if (o.reduction === 'none') return each;
  const total = (1 - eps) * nll + (eps / C) * smooth;
  return [o.reduction === 'sum' ? total : total / wsum];
}

/** The [N, C, *S] input's class vectors, one per position (n, s), in target order. */
function classRows(x: number[], shape: readonly number[]): number[][] {
  return rowsAlong(shape, 1).map((row) => row.map((k) => x[k]!));
}

describe('softmax and logSoftmax', () => {
  const cases: [number[], number][] = [[[2, 3, 4], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[5], 0], [[3, 1, 2], 1]];

  it.each(cases)('values match the definition: %j along %i', (shape, dim) => {
    manualSeed(1);
    const x = f64(shape, false).mul(3);
    expectArrayClose(arr(softmax(x, dim)), softmaxRef(x, dim, false));
    expectArrayClose(arr(logSoftmax(x, dim)), softmaxRef(x, dim, true));
    expectArrayClose(arr(x.logSoftmax(dim)), softmaxRef(x, dim, true));
  });

  it('is stable for large inputs and treats a 0-d tensor as one element', () => {
    const x = tensor([1000, 1001, 999], { dtype: 'float64' });
    expectArrayClose(arr(logSoftmax(x, 0)), softmaxRef(tensor([1, 2, 0], { dtype: 'float64' }), 0, true));
    expect(softmax(tensor(3, { dtype: 'float64' }), 0).item()).toBe(1);
    expect(logSoftmax(tensor(3, { dtype: 'float64' }), -1).item()).toBe(0);
  });

  it.each(cases)('gradcheck: %j along %i', (shape, dim) => {
    manualSeed(2);
    const x = f64(shape);
    expect(gradcheck((t) => softmax(t, dim), [x])).toBe(true);
    expect(gradcheck((t) => logSoftmax(t, dim), [x])).toBe(true);
  });

  it('gradgradcheck', () => {
    manualSeed(3);
    expect(gradgradcheck((t) => logSoftmax(t, 1), [f64([2, 3, 2])])).toBe(true);
    expect(gradgradcheck((t) => t.softmax(0), [f64([3, 2])])).toBe(true);
  });
});

describe('nllLoss and crossEntropy with class indices', () => {
  const N = 5, C = 4;
  const target = [2, -100, 0, 3, 2];
  const weight = [0.5, 2, 1.5, 0.25];
  const combos: XentOpts[] = [];
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const w of [undefined, weight]) for (const eps of [0, 0.2]) combos.push({ reduction, weight: w, eps });
  }
  const label = (o: XentOpts) => `${o.reduction}${o.weight ? ', weighted' : ''}${o.eps ? `, smoothing ${o.eps}` : ''}`;
  const opts = (o: XentOpts) => ({
    reduction: o.reduction, labelSmoothing: o.eps, ignoreIndex: o.ignoreIndex,
    weight: o.weight ? tensor(o.weight, { dtype: 'float64' }) : undefined,
  });

  it.each(combos.map((o) => [label(o), o] as const))('crossEntropy values: %s', (_, o) => {
    manualSeed(10);
    const x = f64([N, C], false);
    const t = tensor(target, { dtype: 'int64' });
    const ref = xentRef(classRows(softmaxRef(x, 1, true), x.shape), target, o);
    expectArrayClose(arr(crossEntropy(x, t, opts(o))), ref);
  });

  it.each(combos.map((o) => [label(o), o] as const))('crossEntropy gradcheck: %s', (_, o) => {
    manualSeed(11);
    expect(gradcheck((x) => crossEntropy(x, target, opts(o)), [f64([N, C])])).toBe(true);
  });

  it.each(combos.filter((o) => !o.eps).map((o) => [label(o), o] as const))('nllLoss values and gradcheck: %s', (_, o) => {
    manualSeed(12);
    const x = f64([N, C]);
    const t = tensor(target, { dtype: 'int32' });
    expectArrayClose(arr(nllLoss(x, t, opts(o))), xentRef(classRows(arr(x), x.shape), target, o));
    expect(gradcheck((lp) => nllLoss(lp, t, opts(o)), [x])).toBe(true);
  });

  it('spatial [N, C, d1, d2] inputs with a custom ignoreIndex', () => {
    manualSeed(13);
    const x = f64([2, 3, 2, 2]);
    const tv = [0, 1, 2, 1, 2, 2, 0, 1];
    const t = tensor([[[0, 1], [2, 1]], [[2, 2], [0, 1]]], { dtype: 'int64' });
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const o: XentOpts = { reduction, ignoreIndex: 1, eps: 0.1, weight: [1, 3, 0.5] };
      const y = crossEntropy(x, t, opts(o));
      expect(y.shape).toEqual(reduction === 'none' ? [2, 2, 2] : []);
      expectArrayClose(arr(y), xentRef(classRows(softmaxRef(x, 1, true), x.shape), tv, o));
      expect(gradcheck((xx) => crossEntropy(xx, t, opts(o)), [x])).toBe(true);
      expectArrayClose(arr(nllLoss(x, t, { ...opts(o), labelSmoothing: undefined } as never)),
        xentRef(classRows(arr(x), x.shape), tv, { ...o, eps: 0 }));
    }
  });

  it('an unbatched [C] input with a 0-d target, and every target ignored', () => {
    manualSeed(14);
    const x = f64([4]);
    const y = crossEntropy(x, tensor(2, { dtype: 'int64' }), { reduction: 'none', labelSmoothing: 0.1 });
    expect(y.shape).toEqual([]);
    expectArrayClose(arr(y), xentRef([softmaxRef(x, 0, true)], [2], { reduction: 'none', eps: 0.1 }));
    // PyTorch's mean over zero counted targets is 0/0.
    expect(crossEntropy(f64([2, 3]), [-100, -100]).item()).toBeNaN();
    expect(crossEntropy(f64([2, 3]), [-100, -100], { reduction: 'sum' }).item()).toBe(0);
  });

  it('gradgradcheck: crossEntropy with weight and label smoothing, and nllLoss of logSoftmax', () => {
    manualSeed(15);
    const w = tensor(weight, { dtype: 'float64' });
    expect(gradgradcheck((x) => crossEntropy(x, target, { weight: w, labelSmoothing: 0.3 }), [f64([N, C])])).toBe(true);
    expect(gradgradcheck((x) => crossEntropy(x, [1, 0, 2], { reduction: 'none' }), [f64([3, 3])])).toBe(true);
    expect(gradgradcheck((x) => nllLoss(logSoftmax(x, 1), [1, 0, 2], { reduction: 'sum' }), [f64([3, 3])])).toBe(true);
  });
});

describe('crossEntropy with class probabilities', () => {
  /** -sum_c w_c q'_c logp_c per position with q' = (1 - eps) q + eps / C; the mean is over positions. */
  function probRef(logp: number[][], q: number[][], w: number[] | null, eps: number, reduction: Reduction): number[] {
    const C = logp[0]!.length;
    const each = logp.map((lp, i) => -lp.reduce((s, v, c) => s + (w ? w[c]! : 1) * ((1 - eps) * q[i]![c]! + eps / C) * v, 0));
    const total = each.reduce((a, b) => a + b, 0);
    return reduction === 'none' ? each : [reduction === 'sum' ? total : total / each.length];
  }

  for (const reduction of ['mean', 'sum', 'none'] as const) {
    it(`values and gradcheck in input and target (${reduction})`, () => {
      manualSeed(20);
      const x = f64([3, 4]), q = softmax(f64([3, 4], false), 1).detach().requiresGrad_();
      const w = [1, 0.5, 2, 1.5];
      for (const [weight, eps] of [[null, 0], [w, 0.25]] as const) {
        const o = { reduction, labelSmoothing: eps, weight: weight ? tensor([...weight], { dtype: 'float64' }) : undefined };
        const ref = probRef(classRows(softmaxRef(x, 1, true), x.shape), classRows(arr(q), q.shape), weight ? [...weight] : null, eps, reduction);
        expectArrayClose(arr(crossEntropy(x, q, o)), ref);
        expect(gradcheck((xx, qq) => crossEntropy(xx, qq, o), [x, q])).toBe(true);
      }
    });
  }

  it('spatial inputs average over every position; gradgradcheck', () => {
    manualSeed(21);
    const x = f64([2, 3, 2]), q = softmax(f64([2, 3, 2], false), 1).detach().requiresGrad_();
    const ref = probRef(classRows(softmaxRef(x, 1, true), x.shape), classRows(arr(q), q.shape), null, 0, 'mean');
    expectArrayClose(arr(crossEntropy(x, q)), ref);
    expect(gradgradcheck((xx, qq) => crossEntropy(xx, qq, { labelSmoothing: 0.1 }), [x, q])).toBe(true);
  });
});

describe('mseLoss', () => {
  it('values for each reduction, broadcasting, and gradcheck', () => {
    manualSeed(30);
    const a = f64([3, 4]), b = f64([4]);
    const d = arr(a).map((v, i) => (v - arr(b)[i % 4]!) ** 2);
    expectArrayClose(arr(mseLoss(a, b, { reduction: 'none' })), d);
    expectArrayClose(arr(mseLoss(a, b, { reduction: 'sum' })), [d.reduce((s, v) => s + v, 0)]);
    expectArrayClose(arr(mseLoss(a, b)), [d.reduce((s, v) => s + v, 0) / d.length]);
    expect(gradcheck((x, y) => mseLoss(x, y), [a, b])).toBe(true);
    expect(gradgradcheck((x, y) => mseLoss(x, y, { reduction: 'sum' }), [a, b])).toBe(true);
  });
});

describe('oneHot', () => {
  it('gives int64 with a trailing class dim; numClasses -1 infers max + 1', () => {
    const y = oneHot(tensor([[0, 2], [1, 0]], { dtype: 'int64' }), 4);
    expect(y.dtype).toBe('int64');
    expect(y.shape).toEqual([2, 2, 4]);
    expect(arr(y)).toEqual([1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0]);
    const z = oneHot(tensor([3, 1], { dtype: 'int32' }));
    expect(z.shape).toEqual([2, 4]);
    expect(arr(z.to('float32'))).toEqual([0, 0, 0, 1, 0, 1, 0, 0]);
  });
});

describe('dropout', () => {
  it('keeps about 1 - p of the elements, scaled by 1 / (1 - p), reproducibly under manualSeed', () => {
    const x = rand([4000], { dtype: 'float64' }).add(1);
    manualSeed(40);
    const y = dropout(x, 0.3);
    manualSeed(40);
    expect(arr(dropout(x, 0.3))).toEqual(arr(y));
    const xs = arr(x), ys = arr(y);
    let kept = 0;
    ys.forEach((v, i) => {
      if (v !== 0) { kept++; expect(Math.abs(v - xs[i]! / 0.7)).toBeLessThan(1e-12); }
    });
    // Binomial(4000, 0.7): mean 2800, sd about 29.
    expect(Math.abs(kept - 2800)).toBeLessThan(150);
    expect(arr(dropout(x, 0.3))).not.toEqual(ys);
  });

  it('the gradient is the same mask; p = 0 and eval are the identity, p = 1 gives zeros', () => {
    manualSeed(41);
    const x = f64([50]);
    manualSeed(42);
    const y = dropout(x, 0.5);
    const [g] = grad(y.sum(), [x]);
    expect(arr(g!)).toEqual(arr(y).map((v) => (v === 0 ? 0 : 2)));
    expect(dropout(x, 0)).toBe(x);
    expect(dropout(x, 0.5, false)).toBe(x);
    const z = dropout(x, 1);
    expect(arr(z).every((v) => v === 0)).toBe(true);
    expect(arr(grad(z.sum(), [x])[0]!).every((v) => v === 0)).toBe(true);
  });
});
