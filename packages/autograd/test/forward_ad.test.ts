/**
 * Forward-mode AD: dual tensors against torch.autograd.forward_ad (fixtures from
 * scripts/fixtures/make_functional_fixtures.py), every op's JVP rule against finite differences
 * (gradcheck's checkForwardAd) and, through gradgradcheck, the JVPs of the ops backward passes use;
 * forward-over-reverse Hessian-vector products; which ops have a rule; the errors.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, amax, avgPool2d, batchNorm, cat, conv2d, crossEntropy, cumsum, defineFunction, dual, einsum,
  forwardAdCoverage, fromTypedArray, gather, gelu, grad, logSoftmax, logSumExp, manualSeed, matmul, max, maxPool2d,
  min, mseLoss, norm, pad, randn, relu, softmax, softplus, stack, tensor, unpackDual, where, type Tensor,
} from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';
import { jvp } from '@nodegrad/autograd/functional';

// Read before this file defines ops of its own: the library's built-in ones.
const coverage = forwardAdCoverage();

interface J { shape: number[]; data: number[] }
const fx = JSON.parse(readFileSync(new URL('./fixtures/functional.json', import.meta.url), 'utf8')) as
  { inputs: Record<string, J>; forwardAd: Record<string, J | J[]> };
const inp = (name: string) => fromTypedArray(Float64Array.from(fx.inputs[name]!.data), fx.inputs[name]!.shape, { dtype: 'float64' });
const near = (t: Tensor | null, want: J) => {
  expect(t!.shape).toEqual(want.shape);
  Array.from(t!.toTypedArray()).forEach((v, i) => expect(Math.abs(v - want.data[i]!)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(want.data[i]!))));
};

const leaf = (shape: number[]) => randn(shape, { dtype: 'float64', requiresGrad: true });
const fwd = { checkForwardAd: true } as const;

describe('dual tensors against torch.autograd.forward_ad', () => {
  const [x3, x2, y3, v3, v2, w3] = ['x3', 'x2', 'y3', 'v3', 'v2', 'w3'].map(inp) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
  it('the tangent of f1(dual(x3, v3)) = tanh(x) sum(x)', () => {
    const y = dual(x3, v3).tanh().mul(dual(x3, v3).sum());
    near(unpackDual(y).tangent, fx.forwardAd['f1(dual(x3, v3))'] as J);
  });
  it('two dual inputs and two outputs', () => {
    const [x, y] = [dual(x2, v2), dual(y3, w3)];
    const [a, b] = [x.mul(y.sum()), x.mul(x).mean().mul(y)];
    const want = fx.forwardAd['f2(dual(x2, v2), dual(y3, w3))'] as J[];
    near(a.tangent, want[0]!);
    near(b.tangent, want[1]!);
  });
  it('forward-over-reverse: the tangent of a gradient is the Hessian-vector product', () => {
    const x = dual(x3.detach().requiresGrad_(), v3);
    const [g] = grad(x.tanh().mul(x).sum().mul(x.sum()), x);
    near(g!.tangent, fx.forwardAd['tangent of grad(s1)(dual(x3, v3))'] as J);
  });
  it('a cast carries the tangent cast (to float32 and back), and a copy carries it unchanged', () => {
    const x = dual(tensor([0.1, -2.5], { dtype: 'float64' }), tensor([1 / 3, 4], { dtype: 'float64' }));
    const y = x.to('float32');
    expect(y.tangent!.dtype).toBe('float32');
    expect(Array.from(y.tangent!.toTypedArray())).toEqual([Math.fround(1 / 3), 4]);
    expect(Array.from(y.to('float64').tangent!.toTypedArray())).toEqual([Math.fround(1 / 3), 4]);
    expect(x.clone().tangent!.toArray()).toEqual([1 / 3, 4]);
  });

  it('unpackDual: the primal keeps reverse-mode history and no tangent; a plain tensor has none', () => {
    const x = leaf([3]);
    const { primal, tangent } = unpackDual(dual(x, tensor([1, 2, 3], { dtype: 'float64' })).mul(2));
    expect(tangent!.toArray()).toEqual([2, 4, 6]);
    expect(primal.tangent).toBeNull();
    primal.sum().backward();
    expect(x.grad!.toArray()).toEqual([2, 2, 2]);
    expect(unpackDual(tensor([1])).tangent).toBeNull();
  });
});

describe('every op with a JVP rule agrees with finite differences (gradcheck checkForwardAd)', () => {
  manualSeed(51);
  const idx = tensor([[0, 2], [1, 1]], { dtype: 'int64' });
  const cases: [string, (...x: Tensor[]) => Tensor | Tensor[], number[][]][] = [
    ['add sub mul div neg, broadcasting', (a, b) => a.add(b).mul(a).sub(b.div(a.abs().add(1))).neg(), [[2, 3], [3]]],
    ['pow maximum minimum', (a, b) => [a.abs().add(0.5).pow(b), a.maximum(b), a.minimum(b)], [[2, 3], [2, 3]]],
    ['exp log sqrt rsqrt sigmoid tanh relu clamp', (a) => [a.exp(), a.abs().add(1).log(), a.abs().add(1).sqrt(),
      a.abs().add(1).rsqrt(), a.sigmoid(), a.tanh(), a.relu(), a.clamp(-0.3, 0.4)], [[3, 4]]],
    ['log1p expm1 sin cos erf', (a) => [a.abs().log1p(), a.expm1(), a.sin(), a.cos(), a.erf()], [[3, 4]]],
    ['softplus gelu silu elu leakyRelu hardtanh', (a) => [softplus(a, 2, 1), gelu(a), gelu(a, 'tanh'), a.silu(), a.elu(),
      a.leakyRelu(0.1), a.hardtanh(-0.4, 0.6)], [[3, 4]]],
    ['where', (a, b) => where(a.gt(0), a, b.mul(2)), [[2, 3], [3]]],
    ['sum mean amax amin max min, over dims and all', (a) => [a.sum(1), a.mean(0, true), amax(a, 1), a.amin([0, 1]),
      max(a, 0).values, min(a, 1, true).values, max(a)], [[3, 4]]],
    ['logSumExp norm cumsum', (a) => [logSumExp(a, 1), norm(a), norm(a, 1, 0), norm(a, Infinity, 1), cumsum(a, 1)], [[3, 4]]],
    ['softmax logSoftmax', (a) => [softmax(a, 1), logSoftmax(a, 0)], [[3, 4]]],
    ['reshape flatten squeeze expand permute transpose', (a) => [a.reshape([4, 3]), a.unsqueeze(1).expand([3, 2, 4]),
      a.permute([1, 0]), a.reshape([1, 12]).squeeze(0)], [[3, 4]]],
    ['narrow slice pad cat stack split sliceScatter', (a, b) => [a.narrow(1, 1, 2), a.slice(1, 0, null, 2), pad(a, [1, 2], 0.5),
      cat([a, b], 0), stack([a, a.mul(b)]), ...a.split(3, 1), a.sliceScatter(b.narrow(1, 0, 2), 1, 1, null, 2)], [[2, 4], [2, 4]]],
    ['gather indexSelect maskedFill dot outer einsum', (a, u) => [gather(a, 1, idx), a.indexSelect(0, tensor([1, 0, 1], { dtype: 'int64' })),
      a.maskedFill(tensor([[1, 0, 0], [0, 0, 1]]), 2), u.dot(u.mul(u)), u.outer(u), einsum('ij,jk->ik', a, a.t())], [[2, 3], [3]]],
    ['matmul bmm linear', (a, b) => [matmul(a, b), a.reshape([1, 2, 3]).bmm(b.reshape([1, 3, 2]))], [[2, 3], [3, 2]]],
    ['conv2d with bias, stride and padding', (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }), [[1, 2, 5, 5], [3, 2, 3, 3], [3]]],
    ['maxPool2d avgPool2d adaptiveAvgPool2d', (x) => [maxPool2d(x, 2), avgPool2d(x, 3, { stride: 2, padding: 1 }),
      adaptiveAvgPool2d(x, [2, 3])], [[1, 2, 5, 6]]],
    ['batchNorm, training and eval', (x, w, b) => [batchNorm(x, null, null, w, b, { training: true }),
      batchNorm(x, tensor([0.1, -0.2], { dtype: 'float64' }), tensor([1.5, 0.5], { dtype: 'float64' }), w, b)], [[3, 2, 2, 2], [2], [2]]],
    ['crossEntropy mseLoss', (a, b) => [crossEntropy(a, tensor([0, 2], { dtype: 'int64' })), mseLoss(a, b)], [[2, 3], [2, 3]]],
    ['clone, in place through a slice and a view', (a) => {
      const y = a.clone();
      y.narrow(0, 0, 1).mul_(3);
      y.view([6]).relu_();
      return y;
    }, [[2, 3]]],
  ];
  for (const [name, fn, shapes] of cases) {
    it(`${name}: against finite differences, and against the double-vjp jvp`, () => {
      manualSeed(52);
      // Nonzero, so abs, relu and friends are away from their kink at 0.
      const xs = shapes.map((shape) => fromTypedArray(Float64Array.from(randn(shape, { dtype: 'float64' }).toTypedArray(),
        (v) => Math.sign(v || 1) * (Math.abs(v) + 0.15)), shape, { dtype: 'float64', requiresGrad: true }));
      expect(gradcheck(fn, xs, fwd)).toBe(true);
      // The same J v by forward mode and by reverse mode (functional.jvp's double-vjp trick).
      const vs = xs.map((x) => randn(x.shape, { dtype: 'float64' }));
      const outs = [fn(...xs.map((x, i) => dual(x.detach(), vs[i]!)))].flat();
      const [, byReverse] = jvp((...ys: Tensor[]) => fn(...ys), xs, vs);
      [byReverse].flat().forEach((r, o) => {
        const f = outs[o]!.tangent ?? outs[o]!.mul(0);
        const diff = Array.from(f.toTypedArray()).reduce((m, v, k) => Math.max(m, Math.abs(v - r.toTypedArray()[k]!)), 0);
        expect(diff, `output ${o}`).toBeLessThan(1e-12);
      });
    });
  }
});

describe('the JVPs of the ops a backward runs (gradgradcheck with checkForwardAd)', () => {
  it('conv2d, pooling, relu, cumsum and max through their backward ops', () => {
    manualSeed(53);
    const [x, w] = [leaf([1, 2, 5, 5]), leaf([2, 2, 3, 3])];
    expect(gradgradcheck((a, b) => maxPool2d(relu(conv2d(a, b, null, { padding: 1 })).tanh(), 2), [x, w], undefined, fwd)).toBe(true);
    expect(gradgradcheck((a) => avgPool2d(a.tanh(), 2).add(adaptiveAvgPool2d(a.tanh(), [2, 2]).sum()), [x], undefined, fwd)).toBe(true);
    expect(gradgradcheck((a) => cumsum(a.mul(a), 1).add(max(a.tanh(), 2).values.sum()), [leaf([2, 3, 3])], undefined, fwd)).toBe(true);
  });
});

describe('coverage and errors', () => {
  it('every built-in differentiable op has a JVP rule', () => {
    expect(coverage.without).toEqual([]);
    expect(coverage.withJvp.length).toBeGreaterThanOrEqual(60);
  });

  it("an op without a rule refuses dual inputs, naming itself; plain tensors are unaffected", () => {
    const noRule = defineFunction({ name: 'noRule', forward: (_ctx, x: Tensor) => x.mul(2), backward: (_ctx, g) => [g.mul(2)] });
    const x = tensor([1, 2], { dtype: 'float64' });
    expect(() => noRule(dual(x, x))).toThrow(/^noRule: this op does not support forward-mode AD \(it has no JVP rule\)/);
    expect(noRule(x).toArray()).toEqual([2, 4]);
    expect(() => gradcheck(noRule, [leaf([2])], fwd)).toThrow(/noRule: this op does not support forward-mode AD/);
  });

  it('a wrong JVP rule is caught by checkForwardAd', () => {
    // x^2 with a right VJP (2 x g) and a wrong JVP (3 t): reverse mode passes, forward mode fails.
    const wrongJvp = defineFunction({
      name: 'wrongJvp',
      forward: (ctx, x: Tensor) => { ctx.save(x); return x.mul(x); },
      backward: (ctx, g) => [g.mul(ctx.saved[0]!).mul(2)],
      jvp: (_ctx, [t]) => t!.mul(3),
    });
    const x = tensor([0.5, 2], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck(wrongJvp, [x])).toBe(true);
    expect(() => gradcheck(wrongJvp, [x], fwd))
      .toThrow(/^gradcheck\(wrongJvp\): forward-mode Jacobian mismatch for output 0 element \[0\] with respect to input 0 element \[0\]: numerical (0\.9999|1\.0000)\d*, forward mode 3 \(atol/);
  });

  it('dual checks its arguments', () => {
    const x = tensor([1, 2], { dtype: 'float64' });
    expect(() => dual(x, tensor([1, 2, 3], { dtype: 'float64' })))
      .toThrow(/^dual: the tangent \(float64 \[3\] on ts\) must be a float tensor of the primal's shape and device \(float64 \[2\] on ts\)$/);
    expect(() => dual(dual(x, x), x)).toThrow(/^dual: the primal is already a dual tensor/);
    expect(() => dual(tensor([1], { dtype: 'int64' }), tensor([1], { dtype: 'int64' }))).toThrow(/^dual: the primal must be a float tensor/);
  });
});

// Reverse over forward: the gradient of sum(tangent of f(dual(x, t))) is H t, the Hessian of
// sum(f) times t; reverse over reverse (double backward) computes the same by another path.
describe('reverse mode through tangents (reverse over forward) equals double backward', () => {
  const cases: [string, (x: Tensor) => Tensor][] = [
    ['exp', (x) => x.exp()], ['tanh', (x) => x.tanh()], ['sigmoid', (x) => x.sigmoid()], ['sqrt', (x) => x.sqrt()],
    ['rsqrt', (x) => x.rsqrt()], ['expm1', (x) => x.expm1()], ['1 / x', (x) => tensor(1, { dtype: 'float64' }).div(x)],
    ['2 ** x', (x) => tensor(2, { dtype: 'float64' }).pow(x)], ['softmax', (x) => softmax(x, 1).mul(x)],
    ['logSoftmax', (x) => logSoftmax(x, 1).square()], ['logSumExp', (x) => logSumExp(x, 1).square()],
    ['norm', (x) => norm(x, 3, 1).square()],
  ];
  it.each(cases)('%s', (_name, f) => {
    manualSeed(12);
    const x = randn([2, 3], { dtype: 'float64' }).abs().add(0.5).requiresGrad_();
    const t = randn([2, 3], { dtype: 'float64' });
    const viaForward = grad(unpackDual(f(dual(x, t))).tangent!.sum(), [x])[0]!;
    const [g] = grad(f(x).sum(), [x], { createGraph: true });
    const viaReverse = grad(g!.mul(t).sum(), [x])[0]!;
    const a = Array.from(viaForward.toTypedArray()), b = Array.from(viaReverse.toTypedArray());
    a.forEach((v, i) => expect(Math.abs(v - b[i]!), `element ${i}: ${v} vs ${b[i]}`).toBeLessThanOrEqual(1e-10 * (1 + Math.abs(b[i]!))));
  });
});
