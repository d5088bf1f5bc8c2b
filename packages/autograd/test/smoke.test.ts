import { describe, expect, it } from 'vitest';
import { tensor, grad, randn, manualSeed, type Tensor } from '@nodegrad/autograd';
import { gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

describe('smoke', () => {
  it('differentiates a small expression', () => {
    const x = tensor([[1, 2], [3, 4]], { dtype: 'float64', requiresGrad: true });
    const y = x.mul(x).add(tensor([1, 2], { dtype: 'float64' })).sum();
    y.backward();
    expect(Array.from(x.grad!.toTypedArray())).toEqual([2, 4, 6, 8]);
    const [g] = grad(x.exp().sum(), [x]);
    expect(g!.toTypedArray()[0]).toBeCloseTo(Math.E, 12);
  });
  it('gradchecks broadcasting arithmetic and catches a wrong gradient', () => {
    manualSeed(0);
    const a = randn([3, 4], { dtype: 'float64', requiresGrad: true });
    const b = randn([4], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((x: Tensor, y: Tensor) => x.mul(y).div(y.exp()).tanh(), [a, b])).toBe(true);
    expect(gradgradcheck((x: Tensor, y: Tensor) => x.mul(y).sigmoid(), [a, b])).toBe(true);
    expect(gradcheck((x: Tensor, y: Tensor) => x.mul(y).div(y.exp()).tanh(), [a, b], { fastMode: true })).toBe(true);
  });
});
