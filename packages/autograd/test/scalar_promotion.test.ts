/**
 * PyTorch's rules for a plain number beside a tensor it does not fit, on the 'ts' reference (the
 * rule lives in the op layer, above every backend): beside a half tensor the number stays exact and
 * the op is computed in float32, rounded once (expected values from float32 arithmetic, Math.fround,
 * rounded by the tested rounding functions; the values PyTorch 2.15 printed are in the comments);
 * beside an integer tensor a fractional number gives float32, and integer division is true
 * division; int64 creation truncates, and fills refuse values the dtype cannot hold. Also a half mean and variance rounded once.
 */
import { describe, expect, it } from 'vitest';
import {
  add, autocast, div, eq, fromTypedArray, full, fullLike, getBackend, maximum, mean, mul, pow, roundBFloat16, roundFloat16, sub, tensor,
  variance, zeros,
} from '@nodegrad/autograd';

const f = Math.fround;

describe('a plain number beside a half tensor: the op in float32, rounded once', () => {
  it('float16: 65536 x 1e-3 is 65.5625, not inf; 10 / 1e5 is 1e-4, not 0', () => {
    const x = full([], 1e-3, { dtype: 'float16' });
    const y = mul(x, 65536); // PyTorch: 65.5625
    expect([y.dtype, y.item()]).toEqual(['float16', roundFloat16(f(roundFloat16(1e-3) * 65536))]);
    expect(y.item()).toBe(65.5625);
    const q = div(tensor([10], { dtype: 'float16' }), 1e5); // PyTorch: 1.0002e-04
    expect(q.item()).toBe(roundFloat16(f(10 / f(1e5))));
    expect(q.item()).toBeGreaterThan(0);
    // 1e5 after the tensor: the same rule on either side.
    expect(div(1e5, tensor([1e4], { dtype: 'float16' })).item()).toBe(roundFloat16(f(1e5 / roundFloat16(1e4))));
  });

  it('bfloat16: 200 x 1.00390625 is 201 (the number rounded first would give 200); x / 3 and x - 1/3', () => {
    const x = tensor([200, 3, 1], { dtype: 'bfloat16' });
    const y = mul(x, 1.00390625);
    expect(y.toArray()).toEqual([200, 3, 1].map((v) => roundBFloat16(f(v * 1.00390625))));
    expect((y.toArray() as number[])[0]).toBe(201); // PyTorch: 201
    expect(mul(x, 1 / 3).toArray()).toEqual([200, 3, 1].map((v) => roundBFloat16(f(v * f(1 / 3)))));
    expect(sub(x, 1 / 3).toArray()).toEqual([200, 3, 1].map((v) => roundBFloat16(f(v - f(1 / 3)))));
    expect(maximum(x, 2.001).toArray()).toEqual([200, 3, roundBFloat16(2.001)]);
  });

  it('a number that fits is lifted as it is; the gradient flows to the half tensor, rounded once', () => {
    const x = tensor([1.5, -2], { dtype: 'float16', requiresGrad: true });
    expect(add(x, 0.5).toArray()).toEqual([2, -1.5]);
    mul(x, 1 / 3).sum().backward();
    expect(x.grad!.dtype).toBe('float16');
    expect(x.grad!.toArray()).toEqual([roundFloat16(f(1 / 3)), roundFloat16(f(1 / 3))]);
  });

  it('the number rides as a float32 scalar beside the half tensor: no float32 copy, forward or backward', () => {
    const table = getBackend('ts').kernels as unknown as Record<string, (...a: unknown[]) => unknown>;
    const calls: string[] = [];
    const saved = { ...table };
    for (const k of ['Cast', 'Mul', 'Div', 'Pow']) table[k] = (...a) => { calls.push(k); return saved[k]!(...a); };
    try {
      const x = tensor([1.5, -2], { dtype: 'bfloat16', requiresGrad: true });
      // None of 1/3, 0.1 fits bfloat16; 2 does. PyTorch 2.15: y [25, 44.75], x.grad [33.25, -44.75].
      const y = pow(div(mul(x, 1 / 3), 0.1), 2);
      y.sum().backward();
      expect(calls.filter((k) => k === 'Cast')).toEqual([]);
      expect([y.dtype, x.grad!.dtype]).toEqual(['bfloat16', 'bfloat16']);
      const third = f(1 / 3), tenth = f(0.1);
      const z = [1.5, -2].map((v) => roundBFloat16(f(roundBFloat16(f(v * third)) / tenth)));
      expect(y.toArray()).toEqual(z.map((v) => roundBFloat16(v * v)));
      // d/dx: 2z, then / 0.1, then x 1/3, each rounded once.
      expect(x.grad!.toArray()).toEqual(z.map((v) => roundBFloat16(f(roundBFloat16(f(roundBFloat16(2 * v) / tenth)) * third))));
      expect([y.toArray(), x.grad!.toArray()]).toEqual([[25, 44.75], [33.25, -44.75]]);
    } finally {
      Object.assign(table, saved);
    }
  });

  // PyTorch 2.15 rounds the number to the half type for pow (and clamp's bounds): bf16 [2.5, 3,
  // 200, 0.333984375] ** 0.3 is [1.3203125, 1.390625, 4.90625, 0.71875], its gradient [0.158203125,
  // 0.138671875, 0.00738525390625, 0.6484375]; 0.3 ** bf16(2.5) is 0.049560546875, gradient
  // -0.0595703125. Under autocast eq(x, tensor(1/3)) compares with 1/3 rounded: [F, F, F, T].
  it('pow, maximum and minimum take the number rounded to the half type, as PyTorch; comparisons too', () => {
    const x = tensor([2.5, 3, 200, 0.333984375], { dtype: 'bfloat16', requiresGrad: true });
    const y = pow(x, 0.3);
    y.sum().backward();
    expect([y.dtype, y.toArray()]).toEqual(['bfloat16', [1.3203125, 1.390625, 4.90625, 0.71875]]);
    // Within a bfloat16 step: PyTorch's backward multiplies by the unrounded 0.3 (its Scalar), here
    // by the rounded exponent the forward used.
    (x.grad!.toArray() as number[]).forEach((v, i) =>
      expect(Math.abs(v - [0.158203125, 0.138671875, 0.00738525390625, 0.6484375][i]!)).toBeLessThanOrEqual(2 ** -7 * Math.abs(v)));
    const z = tensor(2.5, { dtype: 'bfloat16', requiresGrad: true });
    const w = pow(0.3, z);
    w.backward();
    expect([w.item(), z.grad!.item()]).toEqual([0.049560546875, -0.0595703125]);
    expect(maximum(x, 1 / 3).toArray()).toEqual([2.5, 3, 200, 0.333984375]);
    autocast({ device: 'cpu', dtype: 'bfloat16' }, () => {
      expect(eq(x, tensor(1 / 3, { device: 'ts' })).toArray()).toEqual([0, 0, 0, 1]);
    });
  });

  // PyTorch 2.15: bf16 [3, 200] * tensor(1/3) is bfloat16 [1, 66.5] (the scalar rounded first: 67);
  // tensor(1/3) - x is [-2.671875, -200].
  it('a float32 0-d tensor beside a half tensor with dimensions keeps its value, as PyTorch; two 0-d ones are a mix', () => {
    const x = tensor([3, 200], { dtype: 'bfloat16' });
    const s = tensor(1 / 3);
    expect([mul(x, s).dtype, mul(x, s).toArray()]).toEqual(['bfloat16', [1, 66.5]]);
    expect(sub(s, x).toArray()).toEqual([-2.671875, -200]);
    expect(() => mul(x.sum(), s)).toThrow("mul: 'input' has dtype bfloat16 but 'other' has dtype float32");
    expect(() => mul(x, tensor([1 / 3]))).toThrow("mul: 'input' has dtype bfloat16 but 'other' has dtype float32");
  });
});

describe('integer tensors beside fractional numbers, integer division, int64 creation', () => {
  const a = () => tensor([1, 2, 3, 7], { dtype: 'int64' });

  it('a fractional number makes float32 (PyTorch: [2.5, 3.5, 4.5, 8.5], [0.5, 1, 1.5, 3.5])', () => {
    expect([add(a(), 1.5).dtype, add(a(), 1.5).toArray()]).toEqual(['float32', [2.5, 3.5, 4.5, 8.5]]);
    expect(mul(a(), 0.5).toArray()).toEqual([0.5, 1, 1.5, 3.5]);
    expect(pow(a(), 0.5).toArray()).toEqual([1, 2, 3, 7].map((v) => f(Math.sqrt(v))));
    expect([add(a(), 2).dtype, add(a(), 2).toArray()]).toEqual(['int64', [3, 4, 5, 9]]);
  });

  it('a NaN or an infinity beside an integer tensor gives float32; so does division by any number', () => {
    const i = tensor([1], { dtype: 'int32' });
    expect([add(i, NaN).dtype, Number.isNaN(add(i, NaN).item())]).toEqual(['float32', true]);
    expect(add(i, Infinity).item()).toBe(Infinity);
    expect(mul(i, -Infinity).item()).toBe(-Infinity);
    const seven = tensor([7], { dtype: 'int32' });
    expect(div(seven, 2.5).item()).toBeCloseTo(2.8, 6); // PyTorch: 2.8 (the number lifted into int32 first gave 3.5)
    expect(div(2.5, seven).item()).toBeCloseTo(2.5 / 7, 6);
    expect(div(tensor([7], { dtype: 'int64' }), 2).toArray()).toEqual([3.5]);
  });

  it('integer / integer is true division, in float32', () => {
    const q = div(a(), tensor([2, 2, 2, 2], { dtype: 'int64' }));
    expect([q.dtype, q.toArray()]).toEqual(['float32', [0.5, 1, 1.5, 3.5]]);
    expect(div(tensor([7], { dtype: 'int32' }), 2).toArray()).toEqual([3.5]);
  });

  it('int64 from fractional values truncates toward zero, as int32 and PyTorch do', () => {
    expect(tensor([2.5, -1.7], { dtype: 'int64' }).toArray()).toEqual([2, -1]);
    expect(fromTypedArray(new Float64Array([2.5, -1.7]), [2], { dtype: 'int64' }).toArray()).toEqual([2, -1]);
    expect(tensor([2.5, -1.7], { dtype: 'int32' }).toArray()).toEqual([2, -1]);
    expect(Object.is(tensor([-0.5], { dtype: 'int64' }).item(), 0)).toBe(true); // no -0 in an integer
    expect(() => tensor([1, NaN], { dtype: 'int64' })).toThrow('tensor: value NaN at index 1 cannot be converted to int64');
    expect(() => tensor([Infinity], { dtype: 'int32' })).toThrow('tensor: value Infinity at index 0 cannot be converted to int32');
    expect(() => tensor([1, 2 ** 31], { dtype: 'int32' })).toThrow('tensor: value 2147483648 at index 1 cannot be converted to int32 without overflow');
    expect(tensor([-(2 ** 31)], { dtype: 'int32' }).item()).toBe(-(2 ** 31));
    expect(tensor([1e39]).item()).toBe(Infinity); // torch.tensor([1e39]) is inf: only fills check float32
  });

  // PyTorch 2.15: torch.full / fill_ convert their value with an overflow check ("value cannot be
  // converted to type int without overflow"); fractional values truncate toward zero.
  it('full, fullLike and fill_ refuse a value the dtype cannot hold, as PyTorch', () => {
    expect(() => full([2], 2 ** 40, { dtype: 'int32' })).toThrow('full: value 1099511627776 cannot be converted to int32 without overflow');
    expect(() => full([2], NaN, { dtype: 'int32' })).toThrow('full: value NaN cannot be converted to int32 without overflow');
    expect(() => full([2], 2 ** 63, { dtype: 'int64' })).toThrow('full: value 9223372036854776000 cannot be converted to int64 without overflow');
    expect(() => full([2], -3.5e38)).toThrow('full: value -3.5e+38 cannot be converted to float32 without overflow');
    expect(() => full([1], -2147483648.5, { dtype: 'int32' })).toThrow('full: value -2147483648.5 cannot be converted to int32');
    expect(() => zeros([2], { dtype: 'int32' }).fill_(Infinity)).toThrow('fill_: value Infinity cannot be converted to int32 without overflow');
    expect(() => fullLike(zeros([1], { dtype: 'int32' }), 2 ** 31)).toThrow('fullLike: value 2147483648 cannot be converted to int32 without overflow');
    expect(full([2], -2.7, { dtype: 'int32' }).toArray()).toEqual([-2, -2]);
    expect(zeros([1], { dtype: 'int64' }).fill_(-(2 ** 63)).item()).toBe(-(2 ** 63));
    expect(full([1], Infinity).item()).toBe(Infinity);
    expect(Number.isNaN(full([1], NaN).item())).toBe(true);
    expect(full([1], -70000, { dtype: 'float16' }).item()).toBe(-Infinity); // torch: -inf (its half check is one-sided)
  });
});

describe('a half activation\'s gradient', () => {
  it('gelu and softplus of bfloat16: g * df(x) computed in float32 and rounded once', () => {
    const xs = [0.3, -1.2, 2.5];
    const phi = (v: number) => Math.exp(-v * v / 2) / Math.sqrt(2 * Math.PI);
    const Phi = (v: number) => 0.5 * (1 + tensor([v / Math.SQRT2], { dtype: 'float64' }).erf().item());
    const x = tensor(xs, { dtype: 'bfloat16', requiresGrad: true });
    x.gelu().sum().backward();
    expect(x.grad!.dtype).toBe('bfloat16');
    expect(x.grad!.toArray()).toEqual(xs.map((v) => roundBFloat16(roundBFloat16(v) * phi(roundBFloat16(v)) + Phi(roundBFloat16(v)))));
    const y = tensor(xs, { dtype: 'bfloat16', requiresGrad: true });
    y.softplus(2).sum().backward(); // d/dx softplus(x; beta) = sigmoid(beta x)
    expect(y.grad!.toArray()).toEqual(xs.map((v) => roundBFloat16(1 / (1 + Math.exp(-2 * roundBFloat16(v))))));
  });
});

describe('half reductions and autocast promotion', () => {
  it('a bfloat16 mean and variance are computed in float32 and rounded once (a rounded sum would be a step off)', () => {
    const n = 10000;
    const v = Float32Array.from({ length: n }, (_, i) => roundBFloat16(((i * 7919) % 10007) / 10007 * 0.997722));
    const x = fromTypedArray(v, [n], { dtype: 'bfloat16' });
    const exact = v.reduce((s, e) => s + e, 0) / n;
    const exactVar = v.reduce((s, e) => s + (e - exact) ** 2, 0) / (n - 1);
    expect(mean(x).item()).toBe(roundBFloat16(exact)); // 0.498046875; the sum rounded first gives 0.5
    expect(variance(x).item()).toBe(roundBFloat16(exactVar));
  });

  it('under autocast a float32-list op beside a float64 input promotes to float64 (pow, mse)', () => {
    autocast({ device: 'cpu', dtype: 'bfloat16' }, () => {
      const p = pow(tensor([1.5, 2], { dtype: 'bfloat16', device: 'ts' }), tensor([2, 0.5], { dtype: 'float64', device: 'ts' }));
      expect([p.dtype, p.toArray()]).toEqual(['float64', [2.25, Math.SQRT2]]);
      // A number beside a tensor autocast widens stays exact: 1/3 is not first rounded to bfloat16.
      const q = pow(tensor([2], { dtype: 'bfloat16', device: 'ts' }), 1 / 3);
      expect(q.dtype).toBe('float32');
      expect(q.item()).toBeCloseTo(Math.cbrt(2), 6); // 2 ** bfloat16(1/3) would be 1.26049
      // A 0-d float64 does not widen (PyTorch 2.15: pow(float32[2], tensor(0.5, float64)) is float32).
      const r = pow(tensor([4, 9], { device: 'ts' }), tensor(0.5, { dtype: 'float64', device: 'ts' }));
      expect([r.dtype, r.toArray()]).toEqual(['float32', [2, 3]]);
    });
  });
});
