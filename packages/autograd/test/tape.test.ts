/**
 * The tape's behaviours, each checked against numbers worked out independently (closed forms or
 * float64 finite differences): in-place ops and version counters, grad modes, hooks, retainGraph,
 * grad(), higher-order gradients, user functions, anomaly detection.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defineFunction, detectAnomaly, enableGrad, grad, isGradEnabled, manualSeed, matmul, noGrad, randn, tensor, zeros,
  type Tensor,
  type Ctx,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const f64 = { dtype: 'float64' as const };
const leaf = (data: number[] | number[][]) => tensor(data, { dtype: 'float64', requiresGrad: true });
const vals = (t: Tensor | null | undefined) => Array.from(t!.toTypedArray());

/** Central differences of a scalar function of a flat vector, the independent oracle. */
function numericGrad(f: (x: number[]) => number, x: number[], eps = 1e-6): number[] {
  return x.map((_, i) => {
    const p = [...x], m = [...x];
    p[i]! += eps; m[i]! -= eps;
    return (f(p) - f(m)) / (2 * eps);
  });
}

function expectClose(actual: number[], expected: number[], tol = 1e-8): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(expected[i]!))));
}

describe('in-place ops and version counters', () => {
  it('an in-place op on a view while recording rewrites the base\'s history; without recording it writes through', () => {
    const x = tensor([[1, -2], [3, -4]], { dtype: 'float64', requiresGrad: true });
    const y = x.mul(2);
    y.view([4]).relu_();
    expect(y.toArray()).toEqual([[2, 0], [6, 0]]);
    y.sum().backward();
    expect(x.grad!.toArray()).toEqual([[2, 0], [2, 0]]); // relu's mask reaches x through the base
    const buf = tensor([[1, -2], [3, -4]], { dtype: 'float64' });
    noGrad(() => buf.view([4]).relu_());
    expect(Array.from(buf.toTypedArray())).toEqual([1, 0, 3, 0]);
  });
  it('throws when a tensor saved by log is modified by mul_', () => {
    const x = leaf([0.5, 1, 2]);
    const y = x.mul(2);
    const z = y.log(); // log saves its input y
    expect(y.version).toBe(0);
    y.mul_(3);
    expect(y.version).toBe(1);
    expect(() => z.sum().backward()).toThrow(
      /log: one of the tensors needed for gradient computation .* modified by an inplace operation: it is at version 1; expected version 0/);
  });

  it('exp saves only its output, as PyTorch: changing its input afterwards is fine', () => {
    const x = leaf([0.5, -1, 2]);
    const y = x.mul(2);
    const z = y.exp();
    y.mul_(3);
    z.sum().backward();
    expect(vals(x.grad)).toEqual([0.5, -1, 2].map((v) => 2 * Math.exp(2 * v)));
  });

  it('throws when the input of mul is modified in place, naming mul', () => {
    const a = leaf([1, 2]);
    const b = leaf([3, 4]);
    const h = a.add(0);
    const y = h.mul(b); // mul saves h for b's gradient
    h.add_(1);
    expect(() => y.sum().backward()).toThrow(/^mul: .*modified by an inplace operation.*version 1; expected version 0/);
  });

  it('relu_ on a non-leaf gives the finite-difference gradient', () => {
    const x0 = [0.7, -0.3, 1.1, -2];
    const f = (x: number[]) => x.reduce((s, v) => s + Math.max(1.5 * v, 0) ** 2, 0);
    const x = leaf(x0);
    const y = x.mul(1.5);
    const r = y.relu_();
    expect(r).toBe(y); // in place returns the tensor itself
    expect(vals(y)).toEqual([1.5 * 0.7, 0, 1.5 * 1.1, 0].map((v) => v + 0)); // written into y's storage
    expect(y.gradFn!.name).toBe('relu');
    y.mul(y).sum().backward();
    expectClose(vals(x.grad), numericGrad(f, x0), 1e-6);
    // and the closed form 2 * relu(1.5x) * 1.5
    expectClose(vals(x.grad), x0.map((v) => (v > 0 ? 2 * 1.5 * v * 1.5 : 0)));
  });

  it('relu_ and mul_ by a scalar inside a function pass gradcheck', () => {
    manualSeed(3);
    const x = randn([5], { ...f64, requiresGrad: true });
    expect(gradcheck((t: Tensor) => { const y = t.mul(1.5); y.relu_(); y.mul_(2); return y.mul(t); }, [x])).toBe(true);
  });

  it('add_ on a non-leaf: gradients flow to both operands', () => {
    const a = leaf([1, 2, 3]);
    const b = leaf([10, 20, 30]);
    const y = a.mul(a); // y = a^2
    y.add_(b.mul(2)); // y = a^2 + 2b
    expect(vals(y)).toEqual([21, 44, 69]);
    y.mul(tensor([1, -1, 2], f64)).sum().backward();
    expect(vals(a.grad)).toEqual([2, -4, 12]); // 2a * w
    expect(vals(b.grad)).toEqual([2, -2, 4]); // 2 * w
  });

  it('zero_ and copy_ on a non-leaf cut the old history but keep the tensor in the graph', () => {
    const x = leaf([1, 2]);
    const y = x.mul(3);
    y.zero_();
    expect(vals(y)).toEqual([0, 0]);
    expect(y.requiresGrad).toBe(true);
    expect(y.gradFn!.name).toBe('fill_');
    y.add(x).sum().backward();
    expect(vals(x.grad)).toEqual([1, 1]); // the 3 through y is gone
    const w = leaf([5]);
    const z = x.mul(x);
    z.copy_(w.mul(2)); // broadcast [1] -> [2]
    expect(vals(z)).toEqual([10, 10]);
    z.mul(tensor([1, 3], f64)).sum().backward();
    expect(vals(w.grad)).toEqual([8]);
    expect(vals(x.grad)).toEqual([1, 1]); // unchanged: nothing flowed through x^2
  });

  it('in-place on a leaf that requires grad throws, but is allowed under noGrad', () => {
    const w = leaf([1, 2]);
    expect(() => w.mul_(2)).toThrow(/mul_: a leaf tensor that requires grad \(\[2\]\) is being used in an in-place operation/);
    expect(() => w.zero_()).toThrow(/fill_: a leaf tensor that requires grad/);
    expect(vals(w)).toEqual([1, 2]);
    noGrad(() => w.sub_(tensor([0.5, 0.5], f64)));
    expect(vals(w)).toEqual([0.5, 1.5]);
    expect(w.isLeaf).toBe(true);
    expect(w.version).toBe(1);
  });

  it('a tensor that needs no grad becomes part of the graph when add_ takes one that does', () => {
    const acc = zeros([2], f64);
    const w = leaf([3, 4]);
    acc.add_(w.mul(w));
    expect(acc.requiresGrad).toBe(true);
    expect(acc.isLeaf).toBe(false);
    acc.sum().backward();
    expect(vals(w.grad)).toEqual([6, 8]);
  });
});

describe('grad modes', () => {
  it('noGrad records nothing; enableGrad inside noGrad records', () => {
    const x = leaf([1, 2]);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return x.mul(3).exp();
    });
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(() => y.sum().backward()).toThrow(/does not require grad/);
    const z = noGrad(() => enableGrad(() => x.mul(3)));
    expect(z.requiresGrad).toBe(true);
    expect(z.gradFn!.name).toBe('mul');
    z.sum().backward();
    expect(vals(x.grad)).toEqual([3, 3]);
    expect(isGradEnabled()).toBe(true);
  });

  it('noGrad restores the mode when its function throws', () => {
    expect(() => noGrad(() => { throw new Error('boom'); })).toThrow('boom');
    expect(isGradEnabled()).toBe(true);
  });
});

describe('hooks and retainGrad', () => {
  it('a leaf hook doubling the gradient changes .grad, and removing it restores the plain gradient', () => {
    const x = leaf([1, 2, 3]);
    const seen: number[][] = [];
    const remove = x.registerHook((g) => { seen.push(vals(g)); return g.mul(2); });
    x.mul(x).sum().backward();
    expect(seen).toEqual([[2, 4, 6]]);
    expect(vals(x.grad)).toEqual([4, 8, 12]);
    remove();
    x.grad = null;
    x.mul(x).sum().backward();
    expect(vals(x.grad)).toEqual([2, 4, 6]);
    expect(seen.length).toBe(1);
  });

  it('a non-leaf hook changes the gradient flowing further back', () => {
    const x = leaf([1, -2]);
    const y = x.mul(3);
    y.registerHook((g) => g.mul(2));
    y.exp().sum().backward();
    // d/dx sum(exp(3x)) = 3 exp(3x), doubled at y
    expectClose(vals(x.grad), [1, -2].map((v) => 2 * 3 * Math.exp(3 * v)), 1e-14);
  });

  it('a hook that returns nothing only observes', () => {
    const x = leaf([2]);
    let seen = 0;
    x.registerHook((g) => { seen = g.item(); });
    x.mul(5).sum().backward();
    expect(seen).toBe(5);
    expect(vals(x.grad)).toEqual([5]);
  });

  it('leaf hooks also run for grad()', () => {
    const x = leaf([1, 2]);
    x.registerHook((g) => g.mul(10));
    expect(vals(grad(x.mul(x).sum(), [x])[0])).toEqual([20, 40]);
  });

  it('hooks need a tensor that requires grad', () => {
    expect(() => tensor([1], f64).registerHook((g) => g)).toThrow(/registerHook: .*doesn't require grad/);
  });

  it('retainGrad keeps a non-leaf gradient, which otherwise stays null', () => {
    const x = leaf([1, 2]);
    const y = x.mul(x);
    const u = x.add(1);
    y.retainGrad();
    y.mul(tensor([3, 4], f64)).add(u).sum().backward();
    expect(vals(y.grad)).toEqual([3, 4]);
    expect(u.grad).toBeNull();
    expect(y.grad!.requiresGrad).toBe(false);
    expect(vals(x.grad)).toEqual([2 * 1 * 3 + 1, 2 * 2 * 4 + 1]);
  });
});

describe('backward twice, retainGraph and accumulation', () => {
  it('a second backward without retainGraph throws the second-time error', () => {
    const x = leaf([1, 2]);
    const y = x.exp().sum();
    y.backward();
    expect(() => y.backward()).toThrow(/backward through the graph a second time.*retainGraph: true/);
  });

  it('with retainGraph the second backward works and the gradient doubles', () => {
    const x = leaf([0, 1]);
    const y = x.exp().mul(x).sum(); // d/dx x e^x = (1 + x) e^x
    y.backward(null, { retainGraph: true });
    const once = [1, 2 * Math.E];
    expectClose(vals(x.grad), once, 1e-14);
    y.backward();
    expectClose(vals(x.grad), once.map((v) => 2 * v), 1e-14);
  });

  it('gradients of two separate graphs accumulate into .grad', () => {
    const x = leaf([1, 2]);
    x.mul(x).sum().backward(); // 2x
    x.mul(3).sum().backward(); // 3
    expect(vals(x.grad)).toEqual([5, 7]);
  });

  it('backward of a non-scalar needs a gradient of its shape', () => {
    const x = leaf([1, 2]);
    const y = x.mul(x);
    expect(() => y.backward()).toThrow(/implicitly only for one-element outputs, got shape \[2\]/);
    expect(() => y.backward(tensor([1, 2, 3], f64))).toThrow(/gradient of shape \[3\] does not match output of shape \[2\]/);
    y.backward(tensor([1, -1], f64));
    expect(vals(x.grad)).toEqual([2, -4]);
  });
});

describe('grad()', () => {
  it('allowUnused returns null for an unused input, and without it throws', () => {
    const x = leaf([1, 2]);
    const w = leaf([5]);
    expect(() => grad(x.mul(x).sum(), [x, w])).toThrow(/grad: input 1 \(\[1\]\) was not used .*allowUnused/);
    const [gx, gw] = grad(x.mul(x).sum(), [x, w], { allowUnused: true });
    expect(vals(gx)).toEqual([2, 4]);
    expect(gw).toBeNull();
    expect(x.grad).toBeNull(); // grad() leaves .grad alone
  });

  it('gradOutputs weight a non-scalar output', () => {
    const x = leaf([1, 2, 3]);
    const [g] = grad(x.mul(x), [x], { gradOutputs: [tensor([1, 0.5, -1], f64)] });
    expect(vals(g)).toEqual([2, 2, -6]);
  });

  it('gradients with respect to non-leaf inputs', () => {
    const x = leaf([0.5, -1]);
    const y = x.mul(2);
    const z = y.exp().sum();
    const [gy, gx] = grad(z, [y, x]);
    expectClose(vals(gy), [1, -2].map(Math.exp), 1e-14);
    expectClose(vals(gx), [1, -2].map((v) => 2 * Math.exp(v)), 1e-14);
  });

  it('stops at a captured non-leaf input: its own backward does not run', () => {
    const a = leaf([1, 2]);
    const b = tensor([3, 4], f64);
    const y = a.mul(b);
    b.mul_(10); // would break mul's backward, which grad(z, [y]) does not need
    const [gy] = grad(y.exp().sum(), [y]);
    expectClose(vals(gy), [3, 8].map(Math.exp), 1e-14);
    expect(() => y.sum().backward()).toThrow(/mul: .*modified by an inplace operation/);
  });

  it('several outputs sum their contributions', () => {
    const x = leaf([1, 2]);
    const [g] = grad([x.mul(x).sum(), x.mul(3).sum()], [x]);
    expect(vals(g)).toEqual([5, 7]);
  });
});

describe('higher-order gradients', () => {
  it('Hessian-vector product of sum(x^3) is 6 x v', () => {
    const x0 = [0.5, -1, 2];
    const v0 = [1, 2, -3];
    const x = leaf(x0);
    const [g] = grad(x.mul(x).mul(x).sum(), [x], { createGraph: true });
    expect(g!.requiresGrad).toBe(true);
    expectClose(vals(g), x0.map((a) => 3 * a * a), 1e-14);
    const [hv] = grad(g!.mul(tensor(v0, f64)).sum(), [x]);
    expectClose(vals(hv), x0.map((a, i) => 6 * a * v0[i]!), 1e-14);
  });

  it('Hessian-vector product of x^T A x is (A + A^T) v, also through backward()', () => {
    const A0 = [[1, 2, 0], [-1, 3, 4], [0.5, 0, -2]];
    const v0 = [1, -2, 0.5];
    const x = leaf([0.3, -0.7, 1.2]);
    const A = tensor(A0, f64);
    const f = matmul(x, matmul(A, x));
    expect(f.shape).toEqual([]);
    const [g] = grad(f, [x], { createGraph: true });
    g!.mul(tensor(v0, f64)).sum().backward();
    const expected = [0, 1, 2].map((i) => [0, 1, 2].reduce((s, j) => s + (A0[i]![j]! + A0[j]![i]!) * v0[j]!, 0));
    expectClose(vals(x.grad), expected, 1e-14);
  });

  it('without createGraph the first gradient carries no history', () => {
    const x = leaf([1, 2]);
    const [g] = grad(x.mul(x).sum(), [x]);
    expect(g!.requiresGrad).toBe(false);
    x.mul(x).sum().backward();
    expect(x.grad!.gradFn).toBeNull();
  });
});

// softplus(x) = log(1 + e^x); its derivative is sigmoid(x), written with differentiable ops.
const softplus = defineFunction({
  name: 'softplus',
  forward(ctx, x: Tensor) {
    ctx.save(x);
    return x.exp().add(1).log();
  },
  backward(ctx, g) {
    const [x] = ctx.saved as [Tensor];
    return [g.mul(x.sigmoid())];
  },
});

const cube = defineFunction({
  name: 'cube',
  forward(ctx, x: Tensor) {
    ctx.save(x);
    return x.mul(x).mul(x);
  },
  backward(ctx, g) {
    const [x] = ctx.saved as [Tensor];
    return [g.mul(x.mul(x)).mul(3)];
  },
});

describe('defineFunction', () => {
  it('softplus and cube with hand-written backwards pass gradcheck and gradgradcheck', () => {
    manualSeed(7);
    const x = randn([2, 3], { ...f64, requiresGrad: true });
    expect(softplus(x).gradFn!.name).toBe('softplus');
    expect(gradcheck(softplus, [x])).toBe(true);
    expect(gradgradcheck(softplus, [x])).toBe(true);
    expect(gradcheck(cube, [x])).toBe(true);
    expect(gradgradcheck(cube, [x])).toBe(true);
    // and the values themselves
    const x0 = vals(x);
    expectClose(vals(softplus(x)), x0.map((v) => Math.log1p(Math.exp(v))), 1e-14);
  });

  it('a wrong backward makes gradcheck throw naming the input and the element', () => {
    const badCube = defineFunction({
      name: 'badCube',
      forward(ctx, x: Tensor) { ctx.save(x); return x.mul(x).mul(x); },
      backward(ctx, g) { const [x] = ctx.saved as [Tensor]; return [g.mul(x.mul(x)).mul(2)]; }, // should be 3
    });
    const x = leaf([[1, 2], [3, 4]]);
    // Every diagonal entry is wrong (2x^2 for 3x^2); the report names the worst, at x = 4.
    expect(() => gradcheck(badCube, [x])).toThrow(
      /^gradcheck\(badCube\): Jacobian mismatch for output 0 element \[1, 1\] with respect to input 0 element \[1, 1\]: numerical (48|47\.9)[\d.]*, analytical 32; 4 of 16 Jacobian entries differ/);
  });

  it('a backward returning a wrongly shaped gradient is an error naming the op and shapes', () => {
    const bad = defineFunction({
      name: 'badShape',
      forward: (_ctx, x: Tensor) => x.mul(2),
      backward: (_ctx, g) => [g.sum()],
    });
    const x = leaf([1, 2, 3]);
    expect(() => bad(x).sum().backward()).toThrow(
      'badShape: backward returned a gradient of shape [] for input 0, whose shape is [3]');
  });

  it('non-tensor arguments get null gradients and needsInputGrad says which inputs need one', () => {
    let needs: readonly boolean[] = [];
    const scale = defineFunction({
      name: 'scale',
      forward(ctx: Ctx<{ k: number }>, x: Tensor, k: number, y: Tensor) { ctx.k = k; needs = ctx.needsInputGrad; return x.mul(k).add(y); },
      backward: (ctx, g) => [g.mul(ctx.k), null, g],
    });
    const x = leaf([1, 2]);
    const y = tensor([5, 5], f64);
    const out = scale(x, 4, y);
    expect(needs).toEqual([true, false, false]);
    expect(vals(out)).toEqual([9, 13]);
    out.sum().backward();
    expect(vals(x.grad)).toEqual([4, 4]);
  });
});

describe('detectAnomaly', () => {
  it('names sqrt, whose backward at 0 is inf, and gives the forward creation stack', () => {
    const x = leaf([0, 4]);
    let err: Error | undefined;
    detectAnomaly(() => {
      const y = x.sqrt().sum();
      try { y.backward(); } catch (e) { err = e as Error; }
    });
    expect(err?.message).toMatch(/^Function 'sqrt' returned nan or inf values in its gradient for input 0/);
    expect(err?.message).toMatch(/created at:\n.*sqrt created at[\s\S]*tape\.test\.ts/);
    // outside anomaly mode the inf goes through silently, as in PyTorch
    x.sqrt().sum().backward();
    expect(vals(x.grad)).toEqual([Infinity, 0.25]);
  });

  it('names a custom function whose backward returns NaN', () => {
    const nanny = defineFunction({
      name: 'nanny',
      forward: (_ctx, x: Tensor) => x.mul(1),
      backward: (_ctx, g) => [g.mul(NaN)],
    });
    const x = leaf([1]);
    expect(() => detectAnomaly(() => nanny(x.mul(2)).sum().backward())).toThrow(/Function 'nanny' returned nan or inf/);
  });
});

describe('detach, requiresGrad_, to', () => {
  it('detach shares storage, cuts the graph, and in-place writes through it are caught', () => {
    const x = leaf([1, 2]);
    const y = x.exp();
    const d = y.detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.gradFn).toBeNull();
    expect(d.storage).toBe(y.storage);
    d.zero_(); // allowed: d needs no grad
    expect(vals(y)).toEqual([0, 0]);
    expect(() => y.sum().backward()).toThrow(/exp: .*modified by an inplace operation/);
  });

  it('requiresGrad_ turns a plain tensor into a leaf that collects gradients', () => {
    const w = tensor([1, 2], f64);
    expect(w.requiresGrad_()).toBe(w);
    expect(w.requiresGrad).toBe(true);
    w.mul(w).sum().backward();
    expect(vals(w.grad)).toEqual([2, 4]);
    const y = w.mul(2);
    expect(() => y.requiresGrad_(false)).toThrow(/cannot turn off requiresGrad on a non-leaf/);
    expect(() => tensor([1], { dtype: 'int32' }).requiresGrad_()).toThrow(/only float tensors can require gradients, got int32/);
  });

  it("to('float64') is differentiable and the gradient comes back in float32", () => {
    const x = tensor([0.5, -1], { dtype: 'float32', requiresGrad: true });
    const y = x.to('float64');
    expect(y.dtype).toBe('float64');
    expect(y.gradFn!.name).toBe('to');
    y.mul(y).mul(tensor([1, 3], f64)).sum().backward();
    expect(x.grad!.dtype).toBe('float32');
    expect(vals(x.grad)).toEqual([1, -6]);
    expect(x.to('float32')).toBe(x);
  });
});

describe('docs/autograd.md examples', () => {
  // Every ```ts block of the guide that starts with `// example:` is a program; each runs here as
  // its own module (its asserts are the check), so the guide cannot drift from the code.
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/autograd.md', import.meta.url)), 'utf8');
  const blocks = [...doc.matchAll(/```ts\n(\/\/ example: (.*)\n[\s\S]*?)```/g)].map((m) => ({ code: m[1]!, title: m[2]! }));
  const dir = mkdtempSync(join(tmpdir(), 'nodegrad-doc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has examples for each part of the guide', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(9);
  });

  blocks.forEach(({ code, title }, i) => {
    it(title, async () => {
      const file = join(dir, `example_${i}.ts`);
      writeFileSync(file, `${code}\nexport {};\n`);
      await import(/* @vite-ignore */ file);
    });
  });
});
