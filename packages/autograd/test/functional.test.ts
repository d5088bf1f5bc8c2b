/**
 * @nodegrad/autograd/functional against torch.autograd.functional (fixtures from
 * scripts/fixtures/make_functional_fixtures.py): vjp, jvp, jacobian (both strategies), hessian,
 * vhp, hvp, result shapes for one and several inputs and outputs, strict mode, createGraph.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  conv2d, dual, fromTypedArray, grad, manualSeed, maxPool2d, randn, softmax, tensor, unpackDual, type Tensor,
} from '@nodegrad/autograd';
import { hessian, hvp, jacobian, jvp, vhp, vjp } from '@nodegrad/autograd/functional';

interface J { shape: number[]; data: number[] }
type Tree = J | Tree[];
const fx = JSON.parse(readFileSync(new URL('./fixtures/functional.json', import.meta.url), 'utf8')) as
  { generator: string; torch: string; inputs: Record<string, J>; results: Record<string, Tree>; strictRaises: string };

const inp = (name: string) => fromTypedArray(Float64Array.from(fx.inputs[name]!.data), fx.inputs[name]!.shape, { dtype: 'float64' });
const [x3, x2, y3, v3, v2, w3] = ['x3', 'x2', 'y3', 'v3', 'v2', 'w3'].map(inp) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];

// The functions of make_functional_fixtures.py.
const f1 = (x: Tensor) => x.tanh().mul(x.sum());
const f2 = (x: Tensor, y: Tensor) => [x.mul(y.sum()), x.mul(x).mean().mul(y)];
const s1 = (x: Tensor) => x.tanh().mul(x).sum().mul(x.sum());
const s2 = (x: Tensor, y: Tensor) => x.exp().sum().mul(y.mul(y).sum()).add(x.sum().mul(y.sum()));

type Got = Tensor | Got[];
function same(got: Got, want: Tree, path = 'result'): void {
  if (Array.isArray(want)) {
    expect(Array.isArray(got), `${path} is an array`).toBe(true);
    expect((got as Got[]).length, `${path} length`).toBe(want.length);
    want.forEach((w, i) => same((got as Got[])[i]!, w, `${path}[${i}]`));
    return;
  }
  const t = got as Tensor;
  expect(t.shape, `${path} shape`).toEqual(want.shape);
  Array.from(t.toTypedArray()).forEach((v, i) =>
    expect(Math.abs(v - want.data[i]!), `${path}[${i}]: ${v} vs PyTorch ${want.data[i]}`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(want.data[i]!))));
}

const CALLS: Record<string, () => Got> = {
  'vjp(f1, x3, v3)': () => vjp(f1, x3, v3),
  'vjp(f2, [x2, y3], [v2, w3])': () => vjp(f2, [x2, y3], [v2, w3]),
  'jvp(f1, x3, v3)': () => jvp(f1, x3, v3),
  'jvp(f2, [x2, y3], [v2, w3])': () => jvp(f2, [x2, y3], [v2, w3]),
  'jacobian(f1, x3)': () => jacobian(f1, x3),
  'jacobian(f2, [x2, y3])': () => jacobian(f2, [x2, y3]),
  'jacobian(f2, [x2, y3], forward-mode)': () => jacobian(f2, [x2, y3], { strategy: 'forward-mode' }),
  'hessian(s1, x3)': () => hessian(s1, x3),
  'hessian(s2, [x2, y3])': () => hessian(s2, [x2, y3]),
  'vhp(s1, x3, v3)': () => vhp(s1, x3, v3),
  'hvp(s2, [x2, y3], [v2, w3])': () => hvp(s2, [x2, y3], [v2, w3]),
  'vjp(lambda x, y: x * 2, [x2, y3], v2)': () => vjp((x: Tensor) => x.mul(2), [x2, y3], v2),
};

describe('@nodegrad/autograd/functional against torch.autograd.functional', () => {
  it('the fixture names its generator and torch version, and every result has its call here', () => {
    expect(fx.generator).toBe('scripts/fixtures/make_functional_fixtures.py');
    expect(Object.keys(fx.results)).toEqual(Object.keys(CALLS));
  });

  for (const [name, want] of Object.entries(fx.results)) {
    it(name, () => same(CALLS[name]!(), want));
  }

  it("hessian's forward-mode outer strategy (forward-over-reverse) gives PyTorch's Hessian too", () => {
    same(hessian(s2, [x2, y3], { outerJacobianStrategy: 'forward-mode' }), fx.results['hessian(s2, [x2, y3])']!);
    same(hessian(s1, x3, { outerJacobianStrategy: 'forward-mode' }), fx.results['hessian(s1, x3)']!);
  });

  it('vectorize: the same Jacobians and Hessians from one batched forward pass per input', () => {
    same(jacobian(f1, x3, { vectorize: true }), fx.results['jacobian(f1, x3)']!);
    same(jacobian(f2, [x2, y3], { vectorize: true }), fx.results['jacobian(f2, [x2, y3])']!);
    same(jacobian(f2, [x2, y3], { vectorize: true, strategy: 'forward-mode' }), fx.results['jacobian(f2, [x2, y3])']!);
    same(hessian(s1, x3, { vectorize: true }), fx.results['hessian(s1, x3)']!);
    same(hessian(s2, [x2, y3], { vectorize: true }), fx.results['hessian(s2, [x2, y3])']!);
    // One call for the outputs and one per input, instead of one per input element.
    let calls = 0;
    jacobian((a: Tensor, b: Tensor) => { calls++; return f2(a, b); }, [x2, y3], { vectorize: true });
    expect(calls).toBe(3);
  });

  it('vectorize through ops without an elementwise rule (run per column): conv, pooling, matmul, softmax, sums', () => {
    manualSeed(61);
    const x = randn([1, 2, 4, 4], { dtype: 'float64' });
    const w = randn([3, 2, 3, 3], { dtype: 'float64' });
    const f = (a: Tensor, k: Tensor) => softmax(maxPool2d(conv2d(a.tanh(), k, null, { padding: 1 }), 2).reshape([3, 4])
      .matmul(a.reshape([2, 16]).narrow(1, 0, 4).t()).mul(a.sum()), 1);
    const plain = jacobian(f, [x, w]) as Tensor[];
    const vec = jacobian(f, [x, w], { vectorize: true }) as Tensor[];
    plain.forEach((p, i) => {
      expect(vec[i]!.shape).toEqual(p.shape);
      const diff = Array.from(p.toTypedArray()).reduce((m, v, k) => Math.max(m, Math.abs(v - vec[i]!.toTypedArray()[k]!)), 0);
      expect(diff).toBeLessThan(1e-12);
    });
  });

  it('strict mode refuses an input the output does not depend on, as PyTorch does', () => {
    expect(fx.strictRaises).toMatch(/independent of input 1/);
    expect(() => vjp((x: Tensor) => x.mul(2), [x2, y3], v2, { strict: true }))
      .toThrow(/^vjp: the output of the function is independent of input 1; this is not allowed in strict mode$/);
  });

  it('results are detached unless createGraph, and with it they differentiate again', () => {
    const [, g] = vjp(f1, x3, v3) as [Tensor, Tensor];
    expect(g.requiresGrad).toBe(false);
    const x = x3.detach().requiresGrad_();
    const [, h] = vhp(s1, x, v3, { createGraph: true }) as [Tensor, Tensor];
    expect(h.requiresGrad).toBe(true);
    // d/dx (v^T H(x) u) by createGraph against the same from the Jacobian of vhp.
    const [third] = grad(h.mul(w3).sum(), x);
    const jac = jacobian((t: Tensor) => vhp(s1, t, v3, { createGraph: true })[1] as Tensor, x3) as Tensor;
    const want = w3.reshape([1, 3]).matmul(jac).reshape([3]);
    Array.from(third!.toTypedArray()).forEach((v, i) => expect(v).toBeCloseTo(want.toTypedArray()[i]!, 10));
  });

  it('argument errors name the function and the shapes', () => {
    expect(() => vjp(f1, x3)).toThrow(/^vjp: v can be omitted only when the output is a single one-element tensor$/);
    expect(() => jvp(f1, x3, v2)).toThrow(/^jvp: v\[0\] has shape \[2\] but the input 0 has shape \[3\]$/);
    expect(() => hessian(f1, x3)).toThrow(/^hessian: the function must return a single one-element tensor, got \[3\]$/);
    expect(() => jacobian(f1, tensor([1, 2], { dtype: 'int64' }))).toThrow(/^jacobian: input 0 must be a float tensor, got int64 of shape \[2\]$/);
    expect(() => vjp(() => 3 as unknown as Tensor, x3)).toThrow(/^vjp: the function must return a tensor or an array of tensors \(output 0 is not\)$/);
  });
});

describe('edges where nodegrad once parted from torch.autograd.functional 2.15', () => {
  it('strict with createGraph refuses a Jacobian that does not depend on the input (torch: "independent of input 0")', () => {
    const lin = (x: Tensor) => x.mul(3);
    const o = { strict: true, createGraph: true };
    expect(() => vjp(lin, x3, v3, o)).toThrow('vjp: the Jacobian of the function is independent of input 0');
    expect(() => jvp(lin, x3, v3, o)).toThrow('jvp: the Jacobian of the function is independent of input 0');
    expect(() => jacobian(lin, x3, o)).toThrow('jacobian: the Jacobian of the function is independent of input 0');
    expect((vjp(f1, x3, v3, o)[1] as Tensor).requiresGrad).toBe(true); // a Jacobian that depends on x passes
  });

  it('a vectorized Jacobian over an empty input is empty (torch: shape (0, 0))', () => {
    const e = tensor([], { dtype: 'float64' });
    for (const strategy of ['reverse-mode', 'forward-mode'] as const) {
      expect((jacobian((x: Tensor) => x.exp(), e, { vectorize: true, strategy }) as Tensor).shape).toEqual([0, 0]);
    }
  });

  it('hessian refuses a function returning an array (torch: "should return a single Tensor")', () => {
    expect(() => hessian((x: Tensor) => [x.pow(3).sum()], x3)).toThrow('hessian: the function must return a single tensor, not an array of 1');
  });

  it("dual takes a tangent of another float dtype in the primal's (torch: float32 tangent of a float64 primal)", () => {
    const y = dual(tensor([1, 2], { dtype: 'float64' }), tensor([1, 2])).mul(tensor([1, 2], { dtype: 'float64' }));
    const t = unpackDual(y).tangent!;
    expect([t.dtype, Array.from(t.toTypedArray())]).toEqual(['float64', [1, 4]]);
  });
});
