/**
 * gradcheck and gradgradcheck themselves: they pass on correct gradients, and a wrong one is
 * reported with the input and the element, in full and in fast mode. Then checkParity against
 * fake backends (the ts kernels with one of them broken) and describeBackends.
 */
import { describe, expect, it } from 'vitest';
import {
  argmax, batchNorm, defineFunction, manualSeed, noGrad, randn, backends, registerBackend, reportUnavailable, tensor, tsBackend, type Raw, type Tensor,
} from '@nodegrad/autograd';
import { checkParity, describeBackends, gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

const leaf = (shape: number[]) => randn(shape, { dtype: 'float64', requiresGrad: true });
const vals = (t: Tensor) => Array.from(t.toTypedArray());

/** x * y with a backward that is wrong for y at one element only: dy[1] gets an extra 0.5. */
const mulOffByOne = defineFunction({
  name: 'mulOffByOne',
  forward(ctx, x: Tensor, y: Tensor) {
    ctx.save(x, y);
    return x.mul(y);
  },
  backward(ctx, g) {
    const [x, y] = ctx.saved as [Tensor, Tensor];
    const bump = tensor([0, 0.5, 0], { dtype: 'float64' });
    return [g.mul(y), g.mul(x).add(g.mul(bump))];
  },
});

/** sin-free smooth function whose first derivative is right but whose second is wrong. */
const squareBadSecond = defineFunction({
  name: 'squareBadSecond',
  forward(ctx, x: Tensor) {
    ctx.save(x);
    return x.mul(x);
  },
  // 2 x g, but computed from a detached x: the value is right, the dependence on x is lost.
  backward(ctx, g) {
    const [x] = ctx.saved as [Tensor];
    return [g.mul(x.detach()).mul(2)];
  },
});

describe('gradcheck', () => {
  it('passes on correct functions, including broadcasting and reductions', () => {
    manualSeed(11);
    const a = leaf([2, 3]);
    const b = leaf([3]);
    expect(gradcheck((x: Tensor, y: Tensor) => x.mul(y).exp().sum(1), [a, b])).toBe(true);
    expect(gradcheck((x: Tensor) => x.sigmoid().mul(x).mean(), [a])).toBe(true);
  });

  it('names the input index and the element of a wrong gradient, and returns false without raising', () => {
    manualSeed(12);
    const x = leaf([3]);
    const y = leaf([3]);
    expect(() => gradcheck(mulOffByOne, [x, y])).toThrow(
      /Jacobian mismatch for output 0 element \[1\] with respect to input 1 element \[1\]: numerical .*, analytical/);
    expect(gradcheck(mulOffByOne, [x, y], { raiseException: false })).toBe(false);
    // the gradient for x is right: with y held constant the check passes
    expect(gradcheck(mulOffByOne, [x, y.detach()])).toBe(true);
  });

  it('reports the numerical and analytical values of the bad element', () => {
    const x = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const y = tensor([4, 5, 6], { dtype: 'float64', requiresGrad: true });
    let msg = '';
    try { gradcheck(mulOffByOne, [x, y]); } catch (e) { msg = (e as Error).message; }
    // d(x*y)[1]/dy[1] = x[1] = 2; the bad backward says 2.5
    const m = /numerical (\S+), analytical (\S+); /.exec(msg);
    expect(Number(m![1])).toBeCloseTo(2, 8);
    expect(Number(m![2])).toBe(2.5);
    // The report also counts the entries that differ and gives the tolerances.
    expect(msg).toMatch(/; 1 of 18 Jacobian entries differ \(this one the most\), beyond atol 0\.00001 \+ rtol 0\.001 x \|numerical\| \(eps 0\.000001\)$/);
  });

  it('names a multi-dimensional element by its index', () => {
    const shift = defineFunction({
      name: 'shift',
      forward: (_ctx, x: Tensor) => x.mul(1),
      backward: (_ctx, g) => [g.mul(tensor([[1, 1, 1], [1, 1, 0]], { dtype: 'float64' }))],
    });
    const x = leaf([2, 3]);
    expect(() => gradcheck(shift, [x])).toThrow(/output 0 element \[1, 2\] with respect to input 0 element \[1, 2\]/);
  });

  it('fast mode passes on correct functions and catches a wrong gradient', () => {
    manualSeed(13);
    const x = leaf([4, 5]);
    const y = leaf([5]);
    expect(gradcheck((a: Tensor, b: Tensor) => a.mul(b).tanh(), [x, y], { fastMode: true })).toBe(true);
    const x3 = leaf([3]);
    const y3 = leaf([3]);
    expect(() => gradcheck(mulOffByOne, [x3, y3], { fastMode: true })).toThrow(
      /fast mode\): projection v\^T J u mismatch for input 1: .*fastMode: false/);
    expect(gradcheck(mulOffByOne, [x3, y3], { fastMode: true, raiseException: false })).toBe(false);
  });

  it('checks every output of a function with several', () => {
    manualSeed(14);
    const x = leaf([2, 2]);
    const y = leaf([2, 2]);
    expect(gradcheck((a: Tensor, b: Tensor) => [a.mul(b), a.sub(b).exp(), a.sum()], [x, y])).toBe(true);
    // only the second output's gradient is wrong: the report names output 1
    expect(() => gradcheck((a: Tensor, b: Tensor) => [a.add(b), mulOffByOne(a.reshape([4]).narrow(0, 0, 3), b.reshape([4]).narrow(0, 0, 3))], [x, y]))
      .toThrow(/output 1 element \[1\] with respect to input 1 element \[0, 1\]/);
  });

  it('ignores integer outputs, which have no gradient', () => {
    const x = leaf([5]);
    expect(gradcheck((a: Tensor) => [argmax(a), a.exp()], [x])).toBe(true);
  });

  it('treats inputs that do not require grad as constants', () => {
    manualSeed(15);
    const x = leaf([3]);
    const c = randn([3], { dtype: 'float64' });
    const k = tensor([2, 0, 1], { dtype: 'int64' }); // an index input never requires grad
    expect(gradcheck((a: Tensor, b: Tensor, idx: Tensor) => a.mul(b).add(idx.to('float64')), [x, c, k])).toBe(true);
  });

  it('refuses float32 inputs that require grad, and calls with nothing to check', () => {
    const x = randn([3], { dtype: 'float32', requiresGrad: true });
    expect(() => gradcheck((a: Tensor) => a.exp(), [x])).toThrow(
      /gradcheck: input 0 requires grad but is float32; finite differences need float64 inputs/);
    expect(() => gradgradcheck((a: Tensor) => a.exp(), [x])).toThrow(/gradgradcheck: input 0 requires grad but is float32/);
    expect(() => gradcheck((a: Tensor) => a.exp(), [randn([3], { dtype: 'float64' })])).toThrow(/no input requires grad/);
  });

  it('a backward that is not reentrant fails, beyond nondetTol', () => {
    let calls = 0;
    // Each backward pass adds a little more: the same graph gives another gradient every time.
    const drifting = defineFunction({
      name: 'drifting',
      forward: (ctx, x: Tensor) => x.mul(2),
      backward: (ctx, g) => [g.mul(2 + 1e-9 * ++calls)],
    });
    expect(() => gradcheck(drifting, [leaf([3])]))
      .toThrow(/^gradcheck\(drifting\): the backward is not reentrant: two backward passes over the same graph give d output 0\[0\] \/ d input 0\[0\] = 2\.0+\d+ and then 2\.0+\d+ \(nondetTol 0\)$/);
    expect(gradcheck(drifting, [leaf([3])], { nondetTol: 1e-6 })).toBe(true);
  });

  it('checkNonContiguous: the same Jacobian when each input comes as a strided slice seen through a view', () => {
    manualSeed(41);
    const [a, b] = [leaf([2, 3]), leaf([3])];
    expect(gradcheck((x, y) => x.mul(y).tanh().sum(1), [a, b], { checkNonContiguous: true })).toBe(true);
    expect(gradcheck((x) => { const y = x.mul(1); y.narrow(1, 0, 2).mul_(3); return y; }, [a], { checkNonContiguous: true })).toBe(true);
    // A backward that looks at how its input is held gives another gradient for a slice.
    const layoutBound = defineFunction({
      name: 'layoutBound',
      forward: (ctx: { viewed?: boolean }, x: Tensor) => { ctx.viewed = x.viewBase !== null; return x.mul(2); },
      backward: (ctx: { viewed?: boolean }, g) => [g.mul(ctx.viewed ? 3 : 2)],
    });
    expect(gradcheck(layoutBound, [leaf([3])])).toBe(true);
    expect(() => gradcheck(layoutBound, [leaf([3])], { checkNonContiguous: true }))
      .toThrow(/^gradcheck\(layoutBound\): the gradient depends on how the inputs are laid out: given each input as a strided slice seen through a view, the backward gives d output 0\[0\] \/ d input 0\[0\] = 2 and then 3 \(nondetTol 0\)$/);
  });

  it('works when called inside noGrad', () => {
    const x = leaf([3]);
    expect(noGrad(() => gradcheck((a: Tensor) => a.mul(a), [x]))).toBe(true);
  });

  it('leaves out a detached output beside differentiable ones; fails when every output is detached (as PyTorch)', () => {
    const x = leaf([3]);
    const mixed = (a: Tensor) => [a.mul(2), a.mul(3).detach()];
    expect(gradcheck(mixed, [x])).toBe(true);
    expect(gradcheck(mixed, [x], { fastMode: true })).toBe(true);
    expect(gradcheck((a: Tensor) => a.mul(3).detach(), [x], { raiseException: false })).toBe(false);
  });

  it("fails a backward that does not scale with grad_output (PyTorch's 'backward not multiplied by grad_output')", () => {
    // Off by 1e-7 everywhere: within the Jacobian check's tolerance, but not zero for a zero grad_output.
    const addConst = defineFunction({
      name: 'addConst',
      forward: (_ctx, x: Tensor) => x.mul(2),
      backward: (_ctx, g) => [g.mul(2).add(1e-7)],
    });
    const x = leaf([3]);
    for (const fastMode of [false, true]) {
      expect(() => gradcheck(addConst, [x], { fastMode })).toThrow(
        'gradcheck(addConst): backward not multiplied by grad_output: with every grad_output zero, the gradient of input 0 is not zero');
    }
  });
});

describe('gradgradcheck', () => {
  it('passes on correct second derivatives', () => {
    manualSeed(16);
    const x = leaf([2, 3]);
    const y = leaf([3]);
    expect(gradgradcheck((a: Tensor, b: Tensor) => a.mul(b).tanh(), [x, y])).toBe(true);
    expect(gradgradcheck((a: Tensor) => a.mul(a).mul(a).sum(), [x])).toBe(true);
  });

  it('catches a backward that is right to first order but not differentiable correctly', () => {
    manualSeed(17);
    const x = leaf([3]);
    expect(gradcheck(squareBadSecond, [x])).toBe(true);
    // The report says which first derivative and which input, in words.
    expect(() => gradgradcheck(squareBadSecond, [x])).toThrow(
      /^gradgradcheck\(squareBadSecond\): Jacobian mismatch for the gradient of input 0 element \[\d\] with respect to (input 0|the grad_output of output 0) element \[\d\]: numerical \S+, analytical \S+; \d+ of 18 Jacobian entries differ/);
    expect(gradgradcheck(squareBadSecond, [x], undefined, { raiseException: false })).toBe(false);
    expect(gradgradcheck(squareBadSecond, [x], undefined, { fastMode: true, raiseException: false })).toBe(false);
  });

  it('accepts given gradOutputs', () => {
    const x = leaf([3]);
    const go = tensor([1, -2, 0.5], { dtype: 'float64', requiresGrad: true });
    expect(gradgradcheck((a: Tensor) => a.exp().mul(a), [x], [go])).toBe(true);
  });

  it('differentiates only the outputs that require grad: integer indices and detached values are left out', () => {
    manualSeed(18);
    const x = leaf([2, 3]);
    expect(gradgradcheck((a: Tensor) => [a.pow(3), argmax(a, 1)], [x])).toBe(true);
    expect(gradgradcheck((a: Tensor) => [a.pow(3), a.mul(3).detach()], [x])).toBe(true);
    expect(() => gradgradcheck((a: Tensor) => [a.pow(3), a.detach()], [x], [leaf([2, 3]), leaf([2, 3])])).toThrow(
      'gradgradcheck: got 2 gradOutputs for 1 outputs that require grad');
  });
});

/** The ts backend under another name, with Exp scaled by (1 + rel): a stand-in for a native backend. */
function fakeBackend(name: string, rel: number): void {
  const exp = tsBackend.kernels.Exp;
  registerBackend({
    ...tsBackend,
    name,
    kernels: {
      ...tsBackend.kernels,
      Exp: (x) => {
        const y = exp(x);
        const buf = y.buf as Float32Array | Float64Array;
        return { ...y, buf: buf.map((v) => v * (1 + rel)) };
      },
    },
  });
}

describe('checkParity', () => {
  const fn = (x: Tensor, w: Tensor) => [x.matmul(w).exp(), x.sum(1).tanh()];

  it('agrees with itself on ts, in float64 and in float32 against the float64 reference', () => {
    manualSeed(21);
    const x = leaf([3, 4]);
    const w = randn([4, 2], { dtype: 'float64' });
    expect(checkParity(fn, [x, w], { backends: ['ts'] })).toBe(true);
    const x32 = randn([3, 4], { dtype: 'float32', requiresGrad: true });
    const w32 = randn([4, 2], { dtype: 'float32', requiresGrad: true });
    expect(checkParity(fn, [x32, w32], { backends: ['ts'] })).toBe(true);
    // default: every available backend, ts first; float32 inputs, as the native 'cpu' is float32-only
    // (no matmul: the test-only 'cuda-emu' has none)
    const elementwise = (a: Tensor, b: Tensor) => [a.exp().mul(b.sum()), a.sum(1).tanh()];
    expect(checkParity(elementwise, [x32, w32])).toBe(true);
    // the inputs are copied: the caller's tensors get no gradient
    expect(x.grad).toBeNull();
    expect(x32.grad).toBeNull();
  });

  it('names a backend whose Exp is wrong, the output, the input gradient and the worst element', () => {
    manualSeed(22);
    fakeBackend('ts-bad', 1e-3);
    fakeBackend('ts-close', 1e-12);
    const x = leaf([3, 4]);
    const w = randn([4, 2], { dtype: 'float64', requiresGrad: true });
    expect(checkParity(fn, [x, w], { backends: ['ts', 'ts-close'] })).toBe(true);
    let msg = '';
    try { checkParity(fn, [x, w], { backends: ['ts', 'ts-close', 'ts-bad'] }); } catch (e) { msg = (e as Error).message; }
    const lines = msg.split('\n');
    expect(lines[0]).toBe('checkParity: 3 mismatches');
    // the worst element of exp(x w) is its largest value, where the relative error is the same
    const y = vals(x.matmul(w).exp());
    const worst = y.indexOf(Math.max(...y));
    const at = `[${Math.floor(worst / 2)}, ${worst % 2}]`;
    expect(lines[1]).toContain(`backend 'ts-bad' output 0 vs 'ts': 6 of 6 elements differ; worst element ${at}`);
    expect(lines[2]).toMatch(/^ {2}backend 'ts-bad' gradient of input 0 vs 'ts': \d+ of 12 elements differ; worst element \[\d, \d\]/);
    expect(lines[3]).toMatch(/^ {2}backend 'ts-bad' gradient of input 1 vs 'ts'/);
    expect(msg).not.toContain('ts-close');
    expect(msg).not.toContain('output 1'); // tanh(sum) does not use Exp
    expect(checkParity(fn, [x, w], { backends: ['ts', 'ts-bad'], raiseException: false })).toBe(false);
    // a loose enough tolerance accepts it
    expect(checkParity(fn, [x, w], { backends: ['ts', 'ts-bad'], rtol: 1e-2 })).toBe(true);
  });

  it('compares float32 runs with the float64 reference computed on the first backend', () => {
    manualSeed(23);
    fakeBackend('ts-bad32', 1e-3);
    const x = randn([2, 3], { dtype: 'float32', requiresGrad: true });
    expect(() => checkParity((a: Tensor) => a.exp(), [x], { backends: ['ts', 'ts-bad32'] }))
      .toThrow(/backend 'ts-bad32' output 0 vs 'ts' \(float64 reference\): 6 of 6 elements differ/);
    expect(() => checkParity((a: Tensor) => a.exp(), [x], { backends: ['ts-bad32', 'ts'] }))
      .toThrow(/backend 'ts' output 0 vs 'ts-bad32' \(float64 reference\)/);
  });

  it('takes the first backend\'s own run as the reference when half-type inputs sit beside float32 ones', () => {
    manualSeed(24);
    fakeBackend('ts-bad-mixed', 1e-1);
    fakeBackend('ts-close-mixed', 0);
    const x = randn([2, 3, 4], { dtype: 'float32' }).to('bfloat16').requiresGrad_();
    const w = randn([3], { dtype: 'float32', requiresGrad: true });
    const b = randn([3], { dtype: 'float32', requiresGrad: true });
    // Batch norm on bfloat16 input with float32 affine parameters, as under autocast.
    const bn = (a: Tensor, g: Tensor, c: Tensor) => batchNorm(a, null, null, g, c, { training: true }).exp();
    expect(checkParity(bn, [x, w, b], { backends: ['ts', 'ts-close-mixed'] })).toBe(true);
    expect(() => checkParity(bn, [x, w, b], { backends: ['ts', 'ts-bad-mixed'] }))
      .toThrow(/backend 'ts-bad-mixed' output 0 vs 'ts': \d+ of 24 elements differ/);
  });

  it('reports a shape mismatch and an unknown backend', () => {
    // Exp that flattens its result: the output shape differs, and the backward trips the engine's shape check.
    const flatExp = (x: Raw) => tsBackend.kernels.Exp({ buf: x.buf, dtype: x.dtype, shape: [x.shape.reduce((a, b) => a * b, 1)] });
    registerBackend({ ...tsBackend, name: 'ts-shape', kernels: { ...tsBackend.kernels, Exp: flatExp } });
    const x = leaf([2, 2]);
    let msg = '';
    try { checkParity((a: Tensor) => a.exp(), [x], { backends: ['ts', 'ts-shape', 'nowhere'] }); } catch (e) { msg = (e as Error).message; }
    expect(msg.split('\n')).toEqual([
      'checkParity: 3 mismatches',
      "  backend 'ts-shape' backward threw: exp: backward returned a gradient of shape [4] for input 0, whose shape is [2, 2]",
      "  backend 'ts-shape' output 0: shape [4], 'ts' gave [2, 2]",
      "  backend 'nowhere' threw: device 'nowhere' is not available (registered: " + backends().filter((b) => b.available).map((b) => b.name).join(', ') + ')',
    ]);
  });
});

describe('describeBackends', () => {
  it('registers a live suite per available backend and a skipped one, with the reason, for the rest', () => {
    reportUnavailable('fake-gpu', 'built without FAKE');
    registerBackend({ ...tsBackend, name: 'ts-listed' });
    const calls: string[] = [];
    const seen: string[] = [];
    const fake = Object.assign((n: string, f: () => void) => { calls.push(`run ${n}`); f(); },
      { skip: (n: string, f: () => void) => { calls.push(`skip ${n}`); f(); } });
    describeBackends(fake, 'relu', (device) => seen.push(device), { skip: { 'ts-listed': 'no relu kernel yet' } });
    expect(calls).toContain('run relu [ts]');
    expect(calls).toContain('skip relu [ts-listed] (skipped: no relu kernel yet)');
    expect(calls).toContain('skip relu [fake-gpu] (skipped: unavailable: built without FAKE)');
    expect(seen).toContain('ts');
    expect(seen).toContain('fake-gpu');
  });
});

// The real thing: this suite is registered once per backend available at collection time.
describeBackends(describe, 'exp parity', (device) => {
  it('matches the float64 reference on ts', () => {
    manualSeed(24);
    const x = randn([3], { dtype: 'float32', requiresGrad: true });
    expect(checkParity((a: Tensor) => a.exp().mul(a), [x], { backends: ['ts', device] })).toBe(true);
  });
});
