/**
 * The autograd API where it once parted from PyTorch 2.15, each case against what PyTorch does
 * (quoted): gradient dtypes, custom backwards' results, hooks, `.grad` and `requiresGrad`
 * assignment, retainGrad, grad(), in-place overwrites, gradcheck of a function that detaches.
 */
import { describe, expect, it } from 'vitest';
import { backward, defineFunction, grad, tensor, type Tensor } from '@nodegrad/autograd';
import { gradcheck } from '@nodegrad/autograd/testing';

const f64 = (data: number[], requiresGrad = false) => tensor(data, { dtype: 'float64', requiresGrad });
const vals = (t: Tensor | null) => Array.from(t!.dataSync());
const custom = (backward: (ctx: unknown, g: Tensor) => (Tensor | null)[]) =>
  defineFunction({ name: 'F', forward: (_c, a: Tensor, b?: Tensor) => (b ? a.mul(b) : a.mul(2)), backward });

describe('gradient dtypes follow the tensors, as PyTorch', () => {
  it("a seed or a custom backward's gradient of another dtype is cast to the input's", () => {
    // x float32, x.sum().backward(tensor(1., float64)): x.grad is float32; a float64 output seeded with float32: [2, 2].
    const x = tensor([1, 2], { requiresGrad: true });
    x.sum().backward(f64([1]).reshape([]));
    expect(x.grad!.dtype).toBe('float32');
    const y = f64([1, 2], true);
    y.mul(2).backward(tensor([1, 1]));
    expect([y.grad!.dtype, vals(y.grad)]).toEqual(['float64', [2, 2]]);
    // A Function whose backward returns float32 for a float64 input: x.grad is float64.
    const z = f64([1, 2], true);
    custom((_c, g) => [g.mul(2).to('float32')])(z).sum().backward();
    expect([z.grad!.dtype, vals(z.grad)]).toEqual(['float64', [2, 2]]);
  });
});

describe("a custom backward's results are checked, as torch.autograd.Function's", () => {
  it('too few or too many gradients are errors ("returned an incorrect number of gradients")', () => {
    const a = f64([1, 2], true), b = f64([3, 4], true);
    expect(() => custom((_c, g) => [g])(a, b).sum().backward())
      .toThrow('F: backward returned 1 gradients for 2 inputs; input 1 needs one (return null for a zero gradient)');
    expect(() => custom((_c, g) => [g.mul(2), g])(f64([1, 2], true)).sum().backward()).toThrow('F: backward returned 2 gradients for 1 inputs');
  });
});

describe('hooks, as PyTorch', () => {
  it('may change the values, not the dtype or shape ("hook has changed the type/size of value")', () => {
    const leaf = f64([1, 2], true);
    leaf.registerHook((g) => g.to('float32'));
    expect(() => leaf.sum().backward()).toThrow("hook 'anonymous' changed the gradient from float64 [2] on ts to float32 [2] on ts");
    const x = f64([1, 2], true);
    const h = x.mul(x);
    h.registerHook(() => f64([5]));
    expect(() => h.sum().backward()).toThrow("hook 'anonymous' changed the gradient from float64 [2] on ts to float64 [1] on ts");
    const p = f64([1, 2], true);
    p.registerPostAccumulateGradHook(() => f64([9, 9]) as unknown as void);
    expect(() => p.sum().backward()).toThrow("post-accumulate-grad hook 'anonymous' returned a tensor; it must return nothing");
    // An arrow function's value that is no tensor (a push's count) is not a result, for either kind of hook.
    const seen: Tensor[] = [];
    const q = f64([1, 2], true);
    q.registerPostAccumulateGradHook((t) => seen.push(t) as unknown as void);
    q.registerHook((g) => seen.push(g) as unknown as Tensor);
    q.mul(3).sum().backward();
    expect([seen.length, vals(q.grad)]).toEqual([2, [3, 3]]);
  });

  it("retainGrad's hook runs last; a hook removing itself does not skip the next; removal is idempotent", () => {
    // h = x * 2; h.retain_grad(); h.register_hook(lambda g: g * 100); h.sum().backward() -> h.grad [100, 100].
    const x = f64([1, 2], true);
    const h = x.mul(2);
    h.retainGrad();
    h.registerHook((g) => g.mul(100));
    h.sum().backward();
    expect(vals(h.grad)).toEqual([100, 100]);
    const calls: string[] = [];
    const y = f64([1, 2], true);
    const twice = (g: Tensor) => { calls.push('f'); return g; };
    const r1 = y.registerHook(twice);
    y.registerHook(twice);
    const selfRemoving: { remove?: () => void } = {};
    selfRemoving.remove = y.registerHook((g) => { calls.push('s'); selfRemoving.remove!(); return g; });
    y.registerHook((g) => { calls.push('b'); return g; });
    r1();
    r1();
    y.sum().backward();
    expect(calls).toEqual(['f', 's', 'b']);
  });

  it('retainGrad of a tensor that needs no gradient is an error', () => {
    expect(() => f64([1, 2]).retainGrad()).toThrow("retainGrad: cannot retain the gradient of a tensor that doesn't require grad");
  });
});

describe('.grad and requiresGrad assignment, as PyTorch', () => {
  it('a .grad of another shape or dtype is refused; one set by hand is accumulated into in place', () => {
    // g0 = tensor([10., 10.]); x.grad = g0; (x * 3).sum().backward() -> x.grad is g0, [13, 13].
    const g0 = f64([10, 10]);
    const w = f64([1, 2], true);
    w.grad = g0;
    w.mul(3).sum().backward();
    expect([w.grad === g0, vals(g0)]).toEqual([true, [13, 13]]);
    const x = f64([1, 2], true);
    expect(() => { x.grad = f64([1, 2, 3, 4]).reshape([2, 2]); }).toThrow('grad: cannot assign a gradient of float64 [2, 2] on ts to a tensor of float64 [2] on ts');
    expect(() => { x.grad = tensor([1, 2]); }).toThrow('grad: cannot assign a gradient of float32 [2] on ts to a tensor of float64 [2] on ts');
  });

  it('requiresGrad: only float tensors, and only a leaf may turn it off', () => {
    expect(() => { tensor([1, 2], { dtype: 'int32' }).requiresGrad = true; }).toThrow('requiresGrad: only float tensors can require gradients, got int32');
    const h = f64([1, 2], true).mul(2);
    expect(() => { h.requiresGrad = false; }).toThrow("requiresGrad: only a leaf's flag can be turned off; this tensor was made by mul (use detach())");
  });
});

describe('grad() and backward() arguments, as torch.autograd', () => {
  it('the same input twice gets its gradient twice; empty inputs and a missing seed are errors', () => {
    const x = f64([1, 2], true);
    expect(grad(x.mul(x).sum(), [x, x]).map(vals)).toEqual([[2, 4], [2, 4]]);
    expect(() => grad(x.sum(), [])).toThrow('grad: inputs must not be empty');
    // torch.autograd.backward([a, b], [g]): "got 2 tensors and 1 gradients".
    const one = f64([1]).reshape([]);
    expect(() => backward([x.sum(), x.mul(3).sum()], [one])).toThrow('backward: got 2 outputs and 1 gradients');
    expect(() => grad([x.sum(), x.mul(3).sum()], [x], { gradOutputs: [one] })).toThrow('grad: got 2 outputs and 1 gradOutputs');
  });
});

describe('a backward after a createGraph backward, as PyTorch', () => {
  it("adds into each leaf's own gradient, never into the seed or a tensor two leaves were given", () => {
    // a.add(b).sum().backward(create_graph=True); (3a + 5b).sum().backward() -> a.grad [4, 4], b.grad [6, 6].
    const a = f64([1, 2], true), b = f64([3, 4], true);
    a.add(b).sum().backward(null, { createGraph: true });
    a.mul(3).add(b.mul(5)).sum().backward();
    expect([vals(a.grad), vals(b.grad)]).toEqual([[4, 4], [6, 6]]);
    // The seed of a createGraph backward stays as given: a.clone().backward(S, create_graph=True); a.sum().backward().
    const c = f64([1, 2], true);
    const seed = f64([5, 5]);
    c.clone().backward(seed, { createGraph: true });
    c.sum().backward();
    expect([vals(seed), vals(c.grad)]).toEqual([[5, 5], [6, 6]]);
  });
});

describe('in-place overwrites and gradcheck, as PyTorch', () => {
  it('zero_ on a non-leaf leaves its inputs a zero gradient, not none', () => {
    // x.mul(1).zero_().sum().backward() -> x.grad [0, 0].
    const x = f64([1, 2], true);
    x.mul(1).zero_().sum().backward();
    expect(vals(x.grad)).toEqual([0, 0]);
  });

  it('gradcheck fails a function that detaches ("Numerical gradient for function expected to be zero")', () => {
    expect(() => gradcheck((x) => x.detach().mul(2), [f64([1, 2], true)]))
      .toThrow(/Jacobian mismatch for output 0 .* numerical 2\.0000000000\d*, analytical 0/);
  });
});
