/**
 * Gradient clipping against PyTorch (clip_grad_norm_ for norms 2, 1, 3, inf, 0.5, 0, -inf and -1,
 * clipping and not; three in bfloat16; clip_grad_value_), from scripts/fixtures/make_optim_fixtures.py,
 * in float64 (1e-10) and float32 (1e-5 relative), bfloat16 exactly; plus hand-computed cases, a bfloat16 and float32 mix (values PyTorch
 * 2.15 printed), and errors.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromTypedArray, roundBFloat16, tensor, zeros, type FloatDType, type Tensor } from '@nodegrad/autograd';
import { clipGradNorm_, clipGradValue_ } from '@nodegrad/nn';

interface J { dtype: 'float64'; shape: number[]; data: number[] }
interface ClipCase {
  name: string; kind: 'norm' | 'value'; dtype: 'float64' | 'bfloat16';
  args: { maxNorm?: number; normType?: number | 'inf' | '-inf'; clipValue?: number };
  totalNorm?: number; grads: J[];
}
interface ClipFixture { torch: string; grads: J[]; cases: ClipCase[] }

const fx = JSON.parse(readFileSync(new URL('./fixtures/optim_clip.json', import.meta.url), 'utf8')) as ClipFixture;

function t(j: J, dtype: FloatDType): Tensor {
  return fromTypedArray(Float64Array.from(j.data), j.shape, { dtype });
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], dtype: FloatDType, what: string): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expect(actual.length, what).toBe(expected.length);
  expected.forEach((e, i) => {
    const bound = dtype === 'float64' ? 1e-10 * (1 + Math.abs(e)) : 1e-5 * (Math.abs(e) + scale);
    if (!(Math.abs(actual[i]! - e) <= bound)) throw new Error(`${what} (${dtype}): element ${i} is ${actual[i]}, PyTorch gives ${e}`);
  });
}

/** Three parameters holding the fixture's gradients and a fourth without a gradient. */
function params(dtype: FloatDType): Tensor[] {
  const ps = fx.grads.map((g) => zeros(g.shape, { dtype, requiresGrad: true }));
  ps.forEach((p, i) => { p.grad = t(fx.grads[i]!, dtype); });
  return [...ps, zeros([3], { dtype, requiresGrad: true })];
}

const float64Cases = fx.cases.filter((c) => c.dtype === 'float64').map((c) => [c.name, c] as const);

describe.each(['float64', 'float32'] as FloatDType[])('PyTorch fixtures, %s', (dtype) => {
  it.each(float64Cases)('%s', (_name, c) => {
    const ps = params(dtype);
    const before = ps.slice(0, 3).map((p) => p.grad);
    if (c.kind === 'norm') {
      const total = clipGradNorm_(ps, c.args.maxNorm!, c.args.normType!);
      expect(total.shape).toEqual([]);
      expectClose([total.item()], [c.totalNorm!], dtype, `${c.name} total norm`);
    } else {
      clipGradValue_(ps, c.args.clipValue!);
    }
    c.grads.forEach((g, i) => {
      expect(ps[i]!.grad, 'clipped in place').toBe(before[i]);
      expectClose(ps[i]!.grad!.toTypedArray(), g.data, dtype, `${c.name} grad ${i}`);
    });
    expect(ps[3]!.grad).toBeNull();
  });
});

describe('PyTorch fixtures, bfloat16 gradients (norms summed in float32 and rounded once): exact', () => {
  it.each(fx.cases.filter((c) => c.dtype === 'bfloat16').map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const ps = params('bfloat16');
    const total = clipGradNorm_(ps, c.args.maxNorm!, c.args.normType!);
    expect([total.dtype, total.item()]).toEqual(['bfloat16', c.totalNorm]);
    c.grads.forEach((g, i) => expect(Array.from(ps[i]!.grad!.toTypedArray()), `grad ${i}`).toEqual(g.data));
  });
});

describe('by hand', () => {
  it('norm 2 of [3, 4] is 5; the scale is maxNorm / (5 + 1e-6)', () => {
    const p = tensor([0, 0], { dtype: 'float64', requiresGrad: true });
    p.grad = tensor([3, 4], { dtype: 'float64' });
    expect(clipGradNorm_(p, 1).item()).toBe(5);
    const k = 1 / (5 + 1e-6);
    expect(Array.from(p.grad.toTypedArray())).toEqual([3 * k, 4 * k]);
  });
  it('the joint norm spans all parameters; inf takes the largest magnitude', () => {
    const a = tensor([0], { dtype: 'float64', requiresGrad: true });
    const b = tensor([0, 0], { dtype: 'float64', requiresGrad: true });
    a.grad = tensor([2], { dtype: 'float64' });
    b.grad = tensor([-1, 2], { dtype: 'float64' });
    expect(clipGradNorm_([a, b], 10).item()).toBeCloseTo(3, 15);
    expect(a.grad.item()).toBe(2); // under maxNorm: scaled by 1
    expect(clipGradNorm_([a, b], 10, Infinity).item()).toBe(2);
    expect(clipGradNorm_([a, b], 10, 1).item()).toBe(5);
  });
  // PyTorch 2.15: clip_grad_norm_([bf16 a, f32 b], 1) gives a float32 norm 5.769920825958252, a.grad
  // [0.53515625, 0.7109375, 0.05224609375] and b.grad [0.2139659970998764, 0.4065355062484741].
  it('bfloat16 beside float32 gradients: the norm in float32, each half gradient scaled once', () => {
    const a = zeros([3], { dtype: 'bfloat16', requiresGrad: true });
    const b = zeros([2], { requiresGrad: true });
    a.grad = tensor([3.1, 4.1, 0.3], { dtype: 'bfloat16' });
    b.grad = tensor([1.234567, 2.345678]);
    const total = clipGradNorm_([a, b], 1);
    expect([total.dtype, total.item()]).toEqual(['float32', 5.769920825958252]);
    expect(a.grad.toArray()).toEqual([0.53515625, 0.7109375, 0.05224609375]);
    expect(b.grad.toArray()).toEqual([0.2139659970998764, 0.4065355062484741]);
  });
  it('a 0-d bfloat16 gradient beside float32 ones is scaled too', () => {
    const a = zeros([], { dtype: 'bfloat16', requiresGrad: true }), b = zeros([2], { requiresGrad: true });
    a.grad = tensor(3, { dtype: 'bfloat16' });
    b.grad = tensor([4, 0]);
    expect(clipGradNorm_([a, b], 1).item()).toBe(5);
    expect([a.grad.item(), b.grad.toArray()]).toEqual([roundBFloat16(Math.fround(3 * Math.fround(1 / (5 + 1e-6)))),
      [Math.fround(4 * Math.fround(1 / Math.fround(5 + 1e-6))), 0]]);
  });
  it('no gradients: a zero norm and nothing changed', () => {
    const p = zeros([2], { requiresGrad: true });
    expect(clipGradNorm_([p], 1).item()).toBe(0);
    expect(p.grad).toBeNull();
  });
  it('clipGradValue_ clamps to [-v, v]', () => {
    const p = zeros([4], { dtype: 'float64', requiresGrad: true });
    p.grad = tensor([-3, -0.5, 0.2, 7], { dtype: 'float64' });
    clipGradValue_([p], 1);
    expect(Array.from(p.grad.toTypedArray())).toEqual([-1, -0.5, 0.2, 1]);
  });
  it('a non-finite norm: scaled anyway, or an error with errorIfNonfinite', () => {
    const p = zeros([2], { dtype: 'float64', requiresGrad: true });
    p.grad = tensor([NaN, 1], { dtype: 'float64' });
    expect(() => clipGradNorm_(p, 1, 2, { errorIfNonfinite: true })).toThrow(/clipGradNorm_: the total norm of order 2 .* is NaN/);
    expect(Number.isNaN(clipGradNorm_(p, 1).item())).toBe(true);
  });
});

describe('bad arguments name the argument', () => {
  const p = () => [zeros([1], { requiresGrad: true })];
  it.each([
    ['maxNorm', () => clipGradNorm_(p(), -1), /clipGradNorm_: invalid maxNorm -1/],
    ['normType NaN', () => clipGradNorm_(p(), 1, NaN), /clipGradNorm_: invalid normType NaN/],
    ['normType string', () => clipGradNorm_(p(), 1, 'fro' as never), /clipGradNorm_: invalid normType fro/],
    ['clipValue', () => clipGradValue_(p(), -0.1), /clipGradValue_: invalid clipValue -0.1/],
    ['not a tensor', () => clipGradNorm_([1 as never], 1), /clipGradNorm_: parameters\[0\] is not a Tensor/],
  ])('%s', (_name, call, message) => {
    expect(call).toThrow(message);
  });
});
