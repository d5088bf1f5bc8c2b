/**
 * init: PyTorch's fan and gain formulas by hand; sample statistics of each initializer on large
 * tensors (mean, std, bounds) against the formula's target; reproducibility under manualSeed; the
 * fill happens in place on a parameter without recording or turning it into a non-leaf.
 */
import { describe, expect, it } from 'vitest';
import { getRngState, manualSeed, zeros, type Tensor } from '@nodegrad/autograd';
import {
  BatchNorm2d, Linear, calculateFanInAndFanOut, calculateGain, constant_, dirac_, eye_, kaimingNormal_, kaimingUniform_,
  normal_, ones_, orthogonal_, skipInit, truncNormal_, uniform_, xavierNormal_, xavierUniform_, zeros_,
} from '@nodegrad/nn';

function stats(t: Tensor): { mean: number; std: number; min: number; max: number } {
  const v = t.toTypedArray();
  let s = 0, q = 0, min = Infinity, max = -Infinity;
  for (const x of v) { s += x; min = Math.min(min, x); max = Math.max(max, x); }
  const mean = s / v.length;
  for (const x of v) q += (x - mean) ** 2;
  return { mean, std: Math.sqrt(q / v.length), min, max };
}

/** A normal sample's std is within 1% of the target and its mean within 4 standard errors. */
function expectNormal(t: Tensor, mean: number, std: number): void {
  const s = stats(t);
  expect(Math.abs(s.std / std - 1)).toBeLessThan(0.01);
  expect(Math.abs(s.mean - mean)).toBeLessThan((4 * std) / Math.sqrt(t.size));
}

/** A uniform sample stays in [-bound, bound], reaches near both ends and has std bound/sqrt(3). */
function expectUniform(t: Tensor, lo: number, hi: number): void {
  const s = stats(t);
  const w = hi - lo;
  expect(s.min).toBeGreaterThanOrEqual(lo);
  expect(s.max).toBeLessThanOrEqual(hi);
  expect(s.min).toBeLessThan(lo + 0.001 * w);
  expect(s.max).toBeGreaterThan(hi - 0.001 * w);
  expect(Math.abs(s.std / (w / Math.sqrt(12)) - 1)).toBeLessThan(0.01);
  expect(Math.abs(s.mean - (lo + hi) / 2)).toBeLessThan((4 * w) / Math.sqrt(12 * t.size));
}

describe('fans and gains', () => {
  it('computes fan in and fan out as in (times) the receptive field', () => {
    expect(calculateFanInAndFanOut(zeros([64, 3, 7, 7]))).toEqual([3 * 49, 64 * 49]);
    expect(calculateFanInAndFanOut(zeros([10, 512]))).toEqual([512, 10]);
    expect(calculateFanInAndFanOut(zeros([8, 4, 3]))).toEqual([12, 24]);
    expect(() => calculateFanInAndFanOut(zeros([5]))).toThrow(/fewer than 2 dimensions \(shape \[5\]\)/);
  });

  it("has PyTorch's gains", () => {
    expect(calculateGain('linear')).toBe(1);
    expect(calculateGain('conv2d')).toBe(1);
    expect(calculateGain('sigmoid')).toBe(1);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3, 15);
    expect(calculateGain('relu')).toBeCloseTo(Math.SQRT2, 15);
    expect(calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / (1 + 0.01 ** 2)), 15);
    expect(calculateGain('leaky_relu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 15);
    expect(calculateGain('leaky_relu', 0)).toBeCloseTo(Math.SQRT2, 15);
    expect(calculateGain('selu')).toBe(0.75);
    expect(() => calculateGain('gelu' as never)).toThrow(/unsupported nonlinearity 'gelu'/);
  });
});

describe('initializers', () => {
  it('kaimingNormal_ (fanOut, relu), as torchvision initializes convs: std = sqrt(2 / fanOut)', () => {
    manualSeed(1);
    const w = kaimingNormal_(zeros([128, 64, 3, 3]), { mode: 'fanOut', nonlinearity: 'relu' });
    expectNormal(w, 0, Math.sqrt(2 / (128 * 9)));
  });

  it('kaimingNormal_ defaults to fanIn and leaky_relu with a = 0: std = sqrt(2 / fanIn)', () => {
    manualSeed(2);
    expectNormal(kaimingNormal_(zeros([256, 100, 2, 2])), 0, Math.sqrt(2 / 400));
    expectNormal(kaimingNormal_(zeros([400, 300]), { a: 0.2 }), 0, Math.sqrt(2 / 1.04) / Math.sqrt(300));
  });

  it('kaimingUniform_: bound = gain * sqrt(3 / fan); with a = sqrt(5) it is 1 / sqrt(fanIn)', () => {
    manualSeed(3);
    const b = Math.SQRT2 * Math.sqrt(3 / (64 * 9));
    expectUniform(kaimingUniform_(zeros([256, 64, 3, 3]), { nonlinearity: 'relu' }), -b, b);
    const c = 1 / Math.sqrt(200);
    expectUniform(kaimingUniform_(zeros([500, 200]), { a: Math.sqrt(5) }), -c, c);
    const d = Math.SQRT2 * Math.sqrt(3 / 500);
    expectUniform(kaimingUniform_(zeros([500, 200], { dtype: 'float64' }), { mode: 'fanOut' }), -d, d);
  });

  it('uniform_ and normal_ follow their arguments', () => {
    manualSeed(4);
    expectUniform(uniform_(zeros([100000]), -2, 5), -2, 5);
    expectUniform(uniform_(zeros([100000])), 0, 1);
    expectNormal(normal_(zeros([100000]), 3, 0.5), 3, 0.5);
    expectNormal(normal_(zeros([100000], { dtype: 'float64' })), 0, 1);
    expect(() => uniform_(zeros([2]), 1, 0)).toThrow(/uniform_: expected a <= b/);
    expect(() => normal_(zeros([2]), 0, -1)).toThrow(/std must be non-negative/);
  });

  it('xavierUniform_ and xavierNormal_ use 2 / (fanIn + fanOut)', () => {
    manualSeed(5);
    const b = Math.sqrt(6 / (300 + 200));
    expectUniform(xavierUniform_(zeros([200, 300])), -b, b);
    expectNormal(xavierNormal_(zeros([200, 300]), 2), 0, 2 * Math.sqrt(2 / 500));
  });

  it('constant_, zeros_ and ones_ fill', () => {
    expect(Array.from(constant_(zeros([3]), 2.5).toTypedArray())).toEqual([2.5, 2.5, 2.5]);
    expect(Array.from(ones_(zeros([2, 2])).toTypedArray())).toEqual([1, 1, 1, 1]);
    expect(Array.from(zeros_(ones_(zeros([2]))).toTypedArray())).toEqual([0, 0]);
  });

  it('is reproducible under manualSeed and independent of the dtype', () => {
    const draw = (seed: number, dtype: 'float32' | 'float64' = 'float32') => {
      manualSeed(seed);
      return Array.from(kaimingNormal_(zeros([16, 8, 3, 3], { dtype })).toTypedArray());
    };
    const a = draw(9);
    expect(draw(9)).toEqual(a);
    expect(draw(10)).not.toEqual(a);
    expect(draw(9, 'float64').map(Math.fround)).toEqual(a);
  });

  it('fills a parameter in place: same tensor, still a leaf, nothing recorded', () => {
    const p = zeros([4, 3], { requiresGrad: true });
    const v = p.version;
    expect(kaimingUniform_(p)).toBe(p);
    expect(p.isLeaf && p.requiresGrad).toBe(true);
    expect(p.gradFn).toBeNull();
    expect(p.version).toBeGreaterThan(v);
    expect(stats(p).max).toBeGreaterThan(0);
    expect(constant_(p, 1)).toBe(p);
    expect(p.isLeaf).toBe(true);
  });

  it('rejects integer tensors and bad modes; kaiming on a tensor with no elements does nothing, as PyTorch', () => {
    expect(() => uniform_(zeros([2], { dtype: 'int64' }))).toThrow(/uniform_: expected a floating-point tensor, got dtype int64/);
    expect(() => kaimingNormal_(zeros([2, 2]), { mode: 'fan_in' as never })).toThrow(/mode must be 'fanIn' or 'fanOut'/);
    // torch: "Initializing zero-element tensors is a no-op", for [2, 0] and [0, 5] in either mode.
    for (const shape of [[2, 0], [0, 5]]) {
      expect(kaimingNormal_(zeros(shape), { mode: 'fanOut' }).shape).toEqual(shape);
      expect(kaimingUniform_(zeros(shape)).shape).toEqual(shape);
    }
  });

  it('fills bfloat16 and float16 tensors (the values rounded from float32), as PyTorch', () => {
    manualSeed(5);
    for (const dtype of ['bfloat16', 'float16'] as const) {
      const w = kaimingUniform_(zeros([64, 100], { dtype }));
      const { min, max, std } = stats(w);
      expect(w.dtype).toBe(dtype);
      expect(Math.max(-min, max)).toBeLessThanOrEqual(Math.sqrt(2) * Math.sqrt(3 / 100) * 1.01);
      expect(std).toBeCloseTo(Math.sqrt(2 / 100), 2);
    }
  });

  it('truncNormal_: within [a, b], with the truncated normal\'s mean and std', () => {
    manualSeed(6);
    const [mu, sigma, a, b] = [0.5, 2, -1, 3];
    const t = truncNormal_(zeros([400, 500], { dtype: 'float64' }), mu, sigma, a, b);
    // The truncated normal's moments: alpha, beta standardized bounds, Z = Phi(beta) - Phi(alpha).
    const phi = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
    const Phi = (x: number) => { let s = 0; const n = 20000, lo = -12; for (let i = 0; i < n; i++) s += phi(lo + ((x - lo) * (i + 0.5)) / n); return (s * (x - lo)) / n; };
    const [al, be] = [(a - mu) / sigma, (b - mu) / sigma];
    const Z = Phi(be) - Phi(al);
    const mean = mu + (sigma * (phi(al) - phi(be))) / Z;
    const variance = sigma ** 2 * (1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2);
    const st = stats(t);
    expect(st.min).toBeGreaterThanOrEqual(a);
    expect(st.max).toBeLessThanOrEqual(b);
    expect(Math.abs(st.mean - mean)).toBeLessThan(0.01); // standard error ~0.0024
    expect(Math.abs(st.std - Math.sqrt(variance))).toBeLessThan(0.01);
  });

  it('orthogonal_: rows (or columns) orthonormal times gain, dims after the first flattened', () => {
    manualSeed(7);
    for (const shape of [[5, 8], [8, 5], [4, 3, 2]]) {
      const w = orthogonal_(zeros(shape, { dtype: 'float64' }), 2).reshape([shape[0]!, -1]);
      const [r, c] = w.shape as [number, number];
      const g = Array.from((r < c ? w.matmul(w.t()) : w.t().matmul(w)).toTypedArray());
      const n = Math.min(r, c);
      g.forEach((v, k) => expect(Math.abs(v - (Math.floor(k / n) === k % n ? 4 : 0))).toBeLessThan(1e-12));
    }
  });

  it('eye_ and dirac_ as torch.nn.init (the patterns PyTorch 2.15 wrote)', () => {
    expect(Array.from(eye_(zeros([2, 3])).toTypedArray())).toEqual([1, 0, 0, 0, 1, 0]);
    // torch.nn.init.dirac_(torch.zeros(4, 2, 3), groups=2), flattened.
    expect(Array.from(dirac_(zeros([4, 2, 3]), 2).toTypedArray()).join('')).toBe('010000000010010000000010');
    expect(() => dirac_(zeros([3, 2, 3]), 2)).toThrow('dirac_: dim 0 (3) must be divisible by groups (2)');
    expect(calculateGain('conv_transpose2d')).toBe(1);
  });

  it('skipInit: layers built inside keep their allocated values and draw nothing; init works again after, even after a throw', () => {
    manualSeed(3);
    const rng = getRngState();
    const [lin, bn] = skipInit(() => [new Linear(4, 3), new BatchNorm2d(2)] as const);
    expect(getRngState()).toEqual(rng);
    expect([...Array.from(lin.weight.toTypedArray()), ...Array.from(lin.bias!.toTypedArray())]).toEqual(new Array(15).fill(0));
    expect(Array.from(bn.weight!.toTypedArray())).toEqual([1, 1]);
    expect(Array.from(skipInit(() => constant_(zeros([2]), 5)).toTypedArray())).toEqual([0, 0]);
    expect(() => skipInit(() => { throw new Error('inside'); })).toThrow('inside');
    expect(stats(new Linear(4, 3).weight).max).toBeGreaterThan(0);
    expect(getRngState()).not.toEqual(rng);
  });
});
