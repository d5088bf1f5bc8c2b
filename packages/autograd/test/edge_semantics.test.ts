/**
 * Edge cases where nodegrad once parted from PyTorch, each against the value PyTorch 2.15 gives
 * (quoted beside it): reductions over dim=[] and over a 0-d tensor's dim, the gradient of a NaN
 * maximum. float64 on every device that has the kernels.
 */
import { describe, expect, it } from 'vitest';
import { amax, argmax, logSumExp, max, mean, min, norm, ones, sum, tensor, variance, type Tensor } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

const f64 = { dtype: 'float64' } as const;
const vals = (t: Tensor) => Array.from(t.dataSync());

describeBackends(describe, 'reductions at their edges, as PyTorch 2.15', (device) => {
  const o = { ...f64, device };

  it('dim=[] reduces every dim (x.sum([]) has shape [], x.sum([], keepdim=True) [1, 1])', () => {
    const x = ones([2, 3], o);
    for (const [y, v] of [[sum(x, []), 6], [mean(x, []), 1], [amax(x, []), 1], [variance(x, []), 0], [norm(x, 2, []), Math.sqrt(6)]] as const) {
      expect([y.shape, vals(y)]).toEqual([[], [v]]);
    }
    expect(sum(x, [], true).shape).toEqual([1, 1]);
  });

  it("a 0-d tensor's dim 0 or -1 reduces nothing: z = tensor(2.5)", () => {
    const z = tensor(2.5, o);
    // z.sum(0), z.mean(-1), z.amax(0, keepdim=True), logsumexp(z, 0), vector_norm(z, 2, 0): 2.5, 0-d; z.var(0): nan.
    for (const y of [sum(z, 0), mean(z, -1), amax(z, 0, true), logSumExp(z, 0), norm(z, 2, 0)]) expect([y.shape, vals(y)]).toEqual([[], [2.5]]);
    expect(vals(variance(z, 0))).toEqual([NaN]);
    // z.max(0): values 2.5, indices 0, both 0-d; z.argmax(0) 0.
    const m = max(z, 0);
    expect([m.values.shape, vals(m.values), m.indices.shape, vals(m.indices)]).toEqual([[], [2.5], [], [0]]);
    expect([argmax(z, 0).shape, vals(argmax(z, 0))]).toEqual([[], [0]]);
    const zg = tensor(2.5, { ...o, requiresGrad: true });
    max(zg, 0).values.mul(3).backward();
    expect(vals(zg.grad!)).toEqual([3]);
    // "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
    expect(() => sum(z, 1)).toThrow(/^sum: dim 1 is out of range for a tensor of rank 0 \(expected in \[-1, 0\]\)$/);
  });

  it('max() of a tensor holding NaN sends the gradient to the NaNs; amax gives NaN; ties share', () => {
    // x = [1, nan, 3]: x.max().backward() gives [0, 1, 0]; x.amax().backward() [nan, nan, nan].
    const x = tensor([1, NaN, 3], { ...o, requiresGrad: true });
    max(x).backward();
    expect(vals(x.grad!)).toEqual([0, 1, 0]);
    const y = tensor([1, NaN, 3], { ...o, requiresGrad: true });
    amax(y).backward();
    expect(vals(y.grad!)).toEqual([NaN, NaN, NaN]);
    // (-[1, 3, 3]).min().backward(): [0, -0.5, -0.5].
    const t = tensor([1, 3, 3], { ...o, requiresGrad: true });
    min(t.neg()).backward();
    expect(vals(t.grad!)).toEqual([-0, -0.5, -0.5]);
    expect(() => amax(tensor([], o))).toThrow(/^amax: cannot reduce over dim 0 of size 0 \(shape \[0\]\)$/);
  });
}, { needs: [['Sum', 'float64'], ['Max', 'float64'], ['ArgMax', 'float64']] });
