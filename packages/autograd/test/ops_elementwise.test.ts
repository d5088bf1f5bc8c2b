import { describe, expect, it } from 'vitest';
import {
  abs, add, clamp, div, eq, exp, fromTypedArray, greater, greaterEqual, less, lessEqual, log, manualSeed,
  maximum, minimum, mul, ne, neg, pow, randn, relu, rsqrt, sigmoid, sqrt, sub, tanh, tensor, where, type Tensor,
  type TensorLike,
} from '@nodegrad/autograd';
import { describeBackends, gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

/**
 * A float64 leaf of standard normal samples, nudged at least `gap` away from each point in
 * `avoid` (the kinks of abs, relu, clamp) and optionally shifted to be positive.
 */
function leaf(shape: number[], { avoid = [] as number[], gap = 0.05, positive = false } = {}): Tensor {
  const data = Float64Array.from(randn(shape, { dtype: 'float64' }).toTypedArray(), (v) => {
    let u = positive ? Math.abs(v) + 0.3 : v;
    for (const p of avoid) if (Math.abs(u - p) < gap) u = p + (u < p ? -gap : gap);
    return u;
  });
  return fromTypedArray(data, shape, { dtype: 'float64', requiresGrad: true });
}
const vals = (t: Tensor) => Array.from(t.toTypedArray());
const f64 = (data: Parameters<typeof tensor>[0]) => tensor(data, { dtype: 'float64' });

// Shape pairs: equal, trailing broadcast, both sides broadcast, 0-d against a matrix, size-1 dims.
const PAIRS: [number[], number[]][] = [[[3], [3]], [[2, 3], [3]], [[2, 1, 3], [4, 1]], [[], [2, 2]], [[1, 3], [2, 1]]];

describe('binary arithmetic', () => {
  const ops: [string, (a: TensorLike, b: TensorLike) => Tensor, boolean][] = [
    ['add', add, false], ['sub', sub, false], ['mul', mul, false], ['div', div, true],
    ['maximum', maximum, false], ['minimum', minimum, false],
  ];
  for (const [name, op, positiveB] of ops) {
    it(`${name}: gradcheck over broadcasting shapes and with a number operand`, () => {
      manualSeed(11);
      for (const [sa, sb] of PAIRS) {
        expect(gradcheck(op, [leaf(sa), leaf(sb, { positive: positiveB })])).toBe(true);
      }
      expect(gradcheck((a) => op(a, 0.7), [leaf([2, 2])])).toBe(true);
      expect(gradgradcheck(op, [leaf([2, 3]), leaf([3], { positive: positiveB })])).toBe(true);
    });
  }

  it('number operands on either side give the PyTorch values', () => {
    const x = f64([1, 2, 4]);
    expect(vals(sub(10, x))).toEqual([9, 8, 6]);
    expect(vals(div(1, x))).toEqual([1, 0.5, 0.25]);
    expect(vals(x.add(1).mul(2))).toEqual([4, 6, 10]);
    expect(vals(pow(2, x))).toEqual([2, 4, 16]);
  });

  it('neg gradchecks and gradgradchecks', () => {
    manualSeed(12);
    expect(gradcheck(neg, [leaf([2, 3])])).toBe(true);
    expect(gradcheck(neg, [leaf([])])).toBe(true);
    expect(gradgradcheck((x) => neg(x).mul(x), [leaf([3])])).toBe(true);
  });

  it('pow: scalar and tensor exponents, positive bases', () => {
    manualSeed(13);
    for (const e of [2, 3, 2.5, -1.5, 0.5]) {
      expect(gradcheck((a) => pow(a, e), [leaf([2, 3], { positive: true })])).toBe(true);
    }
    for (const [sa, sb] of PAIRS) {
      expect(gradcheck(pow, [leaf(sa, { positive: true }), leaf(sb)])).toBe(true);
    }
    expect(gradcheck((b) => pow(2.5, b), [leaf([4])])).toBe(true);
    expect(gradgradcheck(pow, [leaf([2, 3], { positive: true }), leaf([3])])).toBe(true);
  });

  it('maximum/minimum split the gradient evenly at ties', () => {
    const a = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const b = tensor([2, 2, 1], { dtype: 'float64', requiresGrad: true });
    maximum(a, b).sum().backward();
    expect(vals(a.grad!)).toEqual([0, 0.5, 1]);
    expect(vals(b.grad!)).toEqual([1, 0.5, 0]);
    expect(vals(minimum(a, b))).toEqual([1, 2, 1]);
  });
});

describe('unary functions', () => {
  const cases: [string, (x: Tensor) => Tensor, Parameters<typeof leaf>[1]][] = [
    ['exp', exp, {}], ['log', log, { positive: true }], ['sqrt', sqrt, { positive: true }],
    ['rsqrt', rsqrt, { positive: true }], ['abs', abs, { avoid: [0] }], ['relu', relu, { avoid: [0] }],
    ['sigmoid', sigmoid, {}], ['tanh', tanh, {}],
    ['clamp', (x) => clamp(x, -0.5, 0.8), { avoid: [-0.5, 0.8] }],
    ['clamp (min only)', (x) => clamp(x, 0.2), { avoid: [0.2] }],
    ['clamp (max only)', (x) => clamp(x, null, -0.1), { avoid: [-0.1] }],
  ];
  for (const [name, op, opts] of cases) {
    it(`${name}: gradcheck on several shapes, gradgradcheck`, () => {
      manualSeed(14);
      for (const shape of [[5], [2, 3], [], [1, 4, 1]]) expect(gradcheck(op, [leaf(shape, opts)])).toBe(true);
      // Multiply by x so the second derivative of linear-piece ops (relu, abs, clamp) is not trivially 0.
      expect(gradgradcheck((x) => op(x).mul(x), [leaf([2, 3], opts)])).toBe(true);
    });
  }

  it('forward values match Math', () => {
    const xs = [0.25, 1, 2.5];
    const x = f64(xs);
    const close = (t: Tensor, f: (v: number) => number) => vals(t).forEach((v, i) => expect(v).toBeCloseTo(f(xs[i]!), 14));
    close(exp(x), Math.exp); close(log(x), Math.log); close(sqrt(x), Math.sqrt);
    close(rsqrt(x), (v) => 1 / Math.sqrt(v)); close(sigmoid(x), (v) => 1 / (1 + Math.exp(-v)));
    close(tanh(x), Math.tanh);
    expect(vals(relu(f64([-1, 0, 2])))).toEqual([0, 0, 2]);
    expect(vals(abs(f64([-1.5, 0, 2])))).toEqual([1.5, 0, 2]);
    expect(vals(clamp(f64([-2, 0.3, 5]), -1, 1))).toEqual([-1, 0.3, 1]);
  });

  it('clamp passes no gradient at the bounds themselves, as PyTorch 2.15 (1.13 passed it)', () => {
    // torch 2.15: clamp(x, -1, 1).sum().backward() with x = [-1, 0, 1, 2] gives [0, 1, 0, 0];
    // clamp(x, min=-1) [0, 1, 1, 1]; clamp(y, max=inf) with y = [1, inf] [1, 0].
    const x = tensor([-1, 0, 1, 2], { dtype: 'float64', requiresGrad: true });
    clamp(x, -1, 1).sum().backward();
    expect(vals(x.grad!)).toEqual([0, 1, 0, 0]);
    x.grad = null;
    clamp(x, -1).sum().backward();
    expect(vals(x.grad!)).toEqual([0, 1, 1, 1]);
    const y = tensor([1, Infinity], { dtype: 'float64', requiresGrad: true });
    clamp(y, null, Infinity).sum().backward();
    expect(vals(y.grad!)).toEqual([1, 0]);
  });

  it('relu passes no gradient where its output is 0, not even an infinite or NaN one, as PyTorch', () => {
    // torch: relu(x).backward([inf, nan, 5, inf]) with x = [-1, 0, 2, 3] gives x.grad [0, 0, 5, inf].
    const x = tensor([-1, 0, 2, 3], { dtype: 'float64', requiresGrad: true });
    relu(x).backward(tensor([Infinity, NaN, 5, Infinity], { dtype: 'float64' }));
    expect(vals(x.grad!)).toEqual([0, 0, 5, Infinity]);
  });

});

describeBackends(describe, 'relu at NaN, -0 and infinities', (device) => {
  it('keeps NaN and -0, as PyTorch: a NaN does not turn into a finite 0', () => {
    // torch 2.15: relu([nan, -1, -0., 2, inf, -inf]) gives [nan, 0, -0., 2, inf, 0]; backward of ones gives [1, 0, 0, 1, 1, 0].
    for (const dtype of ['float32', 'float64'] as const) {
      const x = tensor([NaN, -1, -0, 2, Infinity, -Infinity], { dtype, device, requiresGrad: true });
      const y = relu(x);
      const got = vals(y);
      expect(got).toEqual([NaN, 0, -0, 2, Infinity, 0]);
      expect([Object.is(got[1], 0), Object.is(got[2], -0)]).toEqual([true, true]);
      y.backward(tensor([1, 1, 1, 1, 1, 1], { dtype, device }));
      expect(vals(x.grad!)).toEqual([1, 0, 0, 1, 1, 0]);
    }
  });
});

describe('comparisons and where', () => {
  it('comparisons give 1/0 with broadcasting', () => {
    const a = f64([[1, 2, 3], [4, 5, 6]]);
    const b = f64([2, 2, 7]);
    expect(vals(eq(a, b))).toEqual([0, 1, 0, 0, 0, 0]);
    expect(vals(ne(a, b))).toEqual([1, 0, 1, 1, 1, 1]);
    expect(vals(less(a, b))).toEqual([1, 0, 1, 0, 0, 1]);
    expect(vals(lessEqual(a, b))).toEqual([1, 1, 1, 0, 0, 1]);
    expect(vals(greater(a, 4))).toEqual([0, 0, 0, 0, 1, 1]);
    expect(vals(greaterEqual(a, 4))).toEqual([0, 0, 0, 1, 1, 1]);
    expect(vals(a.lt(3))).toEqual([1, 1, 0, 0, 0, 0]);
    expect(a.gt(b).dtype).toBe('float64');
  });

  it('where selects elementwise and broadcasts all three arguments', () => {
    const cond = f64([[1], [0]]);
    expect(where(cond, f64([1, 2, 3]), f64(-1)).toArray()).toEqual([[1, 2, 3], [-1, -1, -1]]);
    expect(where(f64([1, 0, 1]), 5, f64([7, 8, 9])).toArray()).toEqual([5, 8, 5]);
  });

  it('where: gradcheck and gradgradcheck, gradient routed by the condition', () => {
    manualSeed(15);
    const c = greater(randn([2, 3], { dtype: 'float64' }), 0);
    expect(gradcheck((a, b) => where(c, a, b), [leaf([2, 3]), leaf([2, 3])])).toBe(true);
    expect(gradcheck((a, b) => where(c, a, b), [leaf([3]), leaf([2, 1])])).toBe(true);
    expect(gradcheck((a, b) => where(c, a, b), [leaf([]), leaf([1, 3])])).toBe(true);
    expect(gradcheck((a) => where(c, a, 0), [leaf([2, 3])])).toBe(true);
    expect(gradgradcheck((a, b) => where(c, a.mul(b), b.mul(b)), [leaf([2, 3]), leaf([3])])).toBe(true);
    const a = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    where(f64([1, 0, 1]), a, 0).sum().backward();
    expect(vals(a.grad!)).toEqual([1, 0, 1]);
  });
});
