// The 'cpu' backend's reductions, data movement and softmax family against the 'ts' backend,
// forward and backward through the ops (float32 on cpu vs the float64 ts reference).
import { describe, expect, it } from 'vitest';
import {
  argmax, argmin, backends, cat, crossEntropy, fromTypedArray, getBackend, logSoftmax, manualSeed, oneHot, pad,
  randn, slice, softmax, stack, type Tensor,
} from '@nodegrad/autograd';
import { checkParity } from '@nodegrad/autograd/testing';
import '@nodegrad/native';

const cpu = backends().find((b) => b.name === 'cpu');
const suite = cpu?.available ? describe : describe.skip;
const why = cpu?.available ? '' : ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`;

suite(`cpu backend: reductions, movement, softmax vs ts${why}`, () => {
  it('sum, mean, max, min, var over dims with keepdim', () => {
    manualSeed(11);
    const x = randn([3, 4, 5], { requiresGrad: true });
    const fn = (t: Tensor) => [t.sum(), t.sum([0, 2]), t.mean(1, true), t.max(2), t.min([0, 1], true), t.var(1)];
    expect(checkParity(fn, [x], { backends: ['ts', 'cpu'] })).toBe(true);
  });
  it('permute, expand, slice with steps, pad, cat and stack', () => {
    manualSeed(12);
    const x = randn([2, 3, 4], { requiresGrad: true });
    const y = randn([2, 1, 4], { requiresGrad: true });
    const fn = (a: Tensor, b: Tensor) => [
      a.permute([2, 0, 1]), b.expand([2, 5, 4]), slice(a, 2, 1, 4, 2), pad(a, [1, 2, 0, 1], 0.5),
      cat([a, b, a], 1), stack([a, a.mul(2)], 1),
    ];
    expect(checkParity(fn, [x, y], { backends: ['ts', 'cpu'] })).toBe(true);
  });
  it('softmax, logSoftmax and crossEntropy with label smoothing along inner and outer dims', () => {
    manualSeed(13);
    const x = randn([4, 5, 3], { requiresGrad: true });
    const target = fromTypedArray(Float64Array.from([0, 4, 2, 1, 3, 3, 0, 1, 2, 4, 4, 0]), [4, 3], { dtype: 'int64' });
    const fn = (t: Tensor) => [softmax(t, 1), logSoftmax(t, -1), crossEntropy(t, target.to(t.device), { labelSmoothing: 0.1 })];
    expect(checkParity(fn, [x], { backends: ['ts', 'cpu'] })).toBe(true);
  });
  it('argmax/argmin (first index on ties) and oneHot agree exactly', () => {
    const data = Float32Array.from([1, 3, 3, 0, -1, -1, 2, 2, 5, 5, 1, 5]);
    for (const dev of ['ts', 'cpu']) {
      const t = fromTypedArray(data, [3, 4]).to(dev);
      expect(Array.from(argmax(t, 1).toTypedArray())).toEqual([1, 2, 0]);
      expect(Array.from(argmin(t, 0).toTypedArray())).toEqual([1, 1, 2, 0]);
    }
    const idx = fromTypedArray(Float64Array.from([2, 0, 1]), [3], { dtype: 'int64' });
    const a = oneHot(idx.to('cpu'), 4).toTypedArray();
    const b = oneHot(idx, 4).toTypedArray();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(() => getBackend('cpu').kernels.OneHot(idx.to('cpu'), 2, 'float32')).toThrow(/OneHot: index 2 .* out of range for 2 classes/);
  });
});
