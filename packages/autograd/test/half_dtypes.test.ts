/**
 * The half types on the 'ts' reference (no backend beyond it): rounding against PyTorch's own casts
 * (fixtures/half_rounding.json, scripts/fixtures/make_half_fixtures.py), creation and read-back,
 * casts, and the emulation rule every native kernel is held to: an elementwise result is the
 * float32 result rounded once to the type, an accumulating one is within the type's tolerance of
 * the float64 value.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  add, batchNorm, conv2d, exp, fromTypedArray, grad, manualSeed, matmul, mul, rand, randn, relu, roundBFloat16,
  roundFloat16, softmax, sum, tanh, tensor, zeros, type HalfDType, type Tensor,
} from '@nodegrad/autograd';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/half_rounding.json', import.meta.url), 'utf8')) as
  { torch: string; float32: (number | string)[]; bfloat16: (number | string)[]; float16: (number | string)[] };
const num = (v: number | string) => (typeof v !== 'string' ? v : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN);
const HALVES: HalfDType[] = ['bfloat16', 'float16'];
const ROUND = { bfloat16: roundBFloat16, float16: roundFloat16 };
const host = (t: Tensor) => Array.from(t.toTypedArray());

describe(`half rounding equals PyTorch ${fixture.torch}'s casts`, () => {
  const xs = fixture.float32.map(num);
  for (const dtype of HALVES) {
    it(`${dtype}: ${xs.length} values, ties, subnormals, overflow and infinities`, () => {
      const want = fixture[dtype].map(num);
      const bad = xs.map((x, i) => [x, ROUND[dtype](x), want[i]!] as const).filter(([, g, w]) => !Object.is(g, w));
      expect(bad.slice(0, 8)).toEqual([]);
      // The same through an upload: tensor() rounds, toArray gives the float32 values back.
      const t = fromTypedArray(Float32Array.from(xs), [xs.length], { dtype });
      expect(t.dtype).toBe(dtype);
      expect(t.toTypedArray()).toBeInstanceOf(Float32Array);
      expect(host(t)).toEqual(want);
    });
  }
});

describe('half tensors: creation, casts, gradients', () => {
  it('tensor, zeros and to() round; float16 overflows to Infinity; bytes per element are 2', () => {
    expect(host(tensor([1.00390625, 3.14159, 70000], { dtype: 'bfloat16' }))).toEqual([1, 3.140625, 70144]);
    expect(host(tensor([1.00390625, 3.14159, 70000], { dtype: 'float16' }))).toEqual([1.00390625, 3.140625, Infinity]);
    expect(host(tensor([0.1]).to('bfloat16').to('float64'))).toEqual([0.10009765625]);
    expect(host(tensor([2.7]).to('float16').to('int64'))).toEqual([2]);
    expect(zeros([2, 3], { dtype: 'float16' }).dtype).toBe('float16');
  });

  it('rand in a half type is exact in it and below 1; randn is float32 rounded', () => {
    manualSeed(3);
    for (const dtype of HALVES) {
      const u = host(rand([4000], { dtype }));
      expect(Math.max(...u)).toBeLessThan(1);
      expect(u.every((v) => ROUND[dtype](v) === v && v >= 0)).toBe(true);
    }
    manualSeed(4);
    const f = host(randn([100]));
    manualSeed(4);
    expect(host(randn([100], { dtype: 'bfloat16' }))).toEqual(f.map(roundBFloat16));
  });

  it('the gradient of a half leaf is half, and of a cast float32 leaf float32', () => {
    const h = tensor([0.5, -1.25, 2], { dtype: 'bfloat16', requiresGrad: true });
    sum(mul(h, h)).backward();
    expect(h.grad!.dtype).toBe('bfloat16');
    expect(host(h.grad!)).toEqual([1, -2.5, 4]);
    const f = tensor([0.1, 0.2], { requiresGrad: true });
    sum(mul(f.to('bfloat16'), 3)).backward();
    expect(f.grad!.dtype).toBe('float32');
    expect(host(f.grad!)).toEqual([3, 3]);
  });
});

describe("the 'ts' emulation: elementwise exact, accumulations within tolerance", () => {
  for (const dtype of HALVES) {
    it(`${dtype}: unary and binary results are the float32 results rounded once`, () => {
      manualSeed(11);
      const a = randn([64]).toTypedArray(), b = randn([64]).toTypedArray();
      const ha = fromTypedArray(a, [64], { dtype }), hb = fromTypedArray(b, [64], { dtype });
      const ra = host(ha), rb = host(hb);
      const f32 = Math.fround;
      expect(host(add(ha, hb))).toEqual(ra.map((v, i) => ROUND[dtype](f32(v + rb[i]!))));
      expect(host(mul(ha, hb))).toEqual(ra.map((v, i) => ROUND[dtype](f32(v * rb[i]!))));
      expect(host(relu(ha))).toEqual(ra.map((v) => (v > 0 ? v : 0)));
      // exp and tanh: the float32 result rounded (Math.exp is float64, rounded to float32 on store).
      expect(host(exp(ha))).toEqual(ra.map((v) => ROUND[dtype](f32(Math.exp(v)))));
      expect(host(tanh(ha))).toEqual(ra.map((v) => ROUND[dtype](f32(Math.tanh(v)))));
    });

    it(`${dtype}: matmul, conv2d, softmax and batchNorm within the type's tolerance of float64`, () => {
      manualSeed(12);
      const rel = dtype === 'bfloat16' ? 2 ** -7 : 2 ** -10; // two units in the last place
      const check = (got: Tensor, want: Tensor) => {
        expect(got.dtype).toBe(dtype);
        const g = host(got), w = host(want);
        const scale = Math.max(...w.map(Math.abs));
        g.forEach((v, i) => expect(Math.abs(v - w[i]!)).toBeLessThanOrEqual(rel * Math.max(Math.abs(w[i]!), scale / 8)));
      };
      const pair = (shape: number[]) => {
        const t = randn(shape).to(dtype);
        return [t, t.to('float64')] as const;
      };
      const [a, a64] = pair([5, 16]), [b, b64] = pair([16, 7]);
      check(matmul(a, b), matmul(a64, b64));
      const [x, x64] = pair([2, 3, 6, 6]), [w, w64] = pair([4, 3, 3, 3]);
      check(conv2d(x, w, null, { padding: 1 }), conv2d(x64, w64, null, { padding: 1 }));
      check(softmax(a, 1), softmax(a64, 1));
      // Mixed batch norm: a half input with float32 parameters and statistics; the output is half.
      const wt = randn([3]), bs = randn([3]);
      const rm = zeros([3]), rv = zeros([3]).add(1);
      const y = batchNorm(x, rm, rv, wt, bs, { training: true });
      check(y, batchNorm(x64, null, null, wt.to('float64'), bs.to('float64'), { training: true }));
      expect(rm.dtype).toBe('float32');
    });
  }

  // PyTorch 2.15, x bf16 [2, 2, 1, 2], g bf16, float32 w [1.3, 0.7], b [0.1, -0.2], running mean
  // [0.3, 0.6], var [1.7, 0.9]: eval dw [0.9451093673706055, 1.1905827522277832], db [1.40185546875,
  // 2.201171875]; training dw [-0.177965447306633, -0.10021844506263733]. The half products and sums
  // gave dw [0.9453125, 1.1875] in eval and [-0.177734, -0.101563] in training under createGraph.
  // PyTorch 2.15: softmax of bf16 [0.5, -1.25, 2, 0.75, -0.5] along 0, backward of g = [0.3, -0.7,
  // 0.2, 0.9, -0.1]; rounded at every step, g - sum(g y) cancelled to dx[0] = 0, dx[2] = -0.061768.
  it('a half softmax\'s gradient is computed in float32 and rounded once, as PyTorch\'s', () => {
    const x = tensor([0.5, -1.25, 2, 0.75, -0.5], { dtype: 'bfloat16', requiresGrad: true });
    const [dx] = grad([softmax(x, 0)], [x], { gradOutputs: [tensor([0.3, -0.7, 0.2, 0.9, -0.1], { dtype: 'bfloat16' })] });
    expect([dx!.dtype, host(dx!)]).toEqual(['bfloat16', [8.630752563476562e-05, -0.0238037109375, -0.061279296875, 0.10498046875, -0.0201416015625]]);
  });

  it('batchNorm of a half input: float32 parameter gradients from float32 sums in eval and under createGraph', () => {
    const x = tensor([[[[1, 2]], [[3, -1]]], [[[0.5, 1.5]], [[2.5, 0.25]]]], { dtype: 'bfloat16', requiresGrad: true });
    const g = tensor([[[[0.1, 0.2]], [[0.3, 0.4]]], [[[0.5, 0.6]], [[0.7, 0.8]]]], { dtype: 'bfloat16' });
    const w = tensor([1.3, 0.7], { requiresGrad: true }), b = tensor([0.1, -0.2], { requiresGrad: true });
    const near = (t: Tensor, want: number[]) => host(t).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    const [dx, dw, db] = grad([batchNorm(x, tensor([0.3, 0.6]), tensor([1.7, 0.9]), w, b)], [x, w, b], { gradOutputs: [g] });
    near(dw!, [0.9451093673706055, 1.1905827522277832]);
    near(db!, [1.40185546875, 2.201171875]);
    expect([dx!.dtype, dw!.dtype]).toEqual(['bfloat16', 'float32']);
    expect(host(dx!)).toEqual([0.099609375, 0.19921875, 0.2216796875, 0.294921875, 0.498046875, 0.6015625, 0.515625, 0.58984375]);
    const [dx2, dw2] = grad([batchNorm(x, null, null, w, b, { training: true })], [x, w], { gradOutputs: [g], createGraph: true });
    near(dw2!, [-0.177965447306633, -0.10021844506263733]);
    expect(host(dx2!)).toEqual([-0.62890625, -0.2109375, -0.09521484375, -0.07861328125, 0.208984375, 0.62890625, 0.072265625, 0.10107421875]);
  });
});
