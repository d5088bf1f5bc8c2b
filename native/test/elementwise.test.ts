// The 'cpu' backend's elementwise kernels against the 'ts' backend (float32 vs the float64 reference).
import { describe, expect, it } from 'vitest';
import { backends, manualSeed, randn, type Tensor } from '@nodegrad/autograd';
import { checkParity } from '@nodegrad/autograd/testing';
import { describeBuild, memoryStats } from '@nodegrad/native';

const cpu = backends().find((b) => b.name === 'cpu');
const suite = cpu?.available ? describe : describe.skip;
const why = cpu?.available ? '' : ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`;

suite(`cpu backend: elementwise kernels vs ts${why}`, () => {
  it('unary, binary with broadcasting, where and clamp agree with the ts backend', () => {
    manualSeed(3);
    const a = randn([3, 4, 5], { requiresGrad: true });
    const b = randn([4, 1], { requiresGrad: true });
    const fn = (x: Tensor, y: Tensor) => [
      x.mul(y).add(y.exp()).tanh(), x.abs().add(1).log().sqrt(), x.sigmoid().div(y.abs().add(1)),
      x.maximum(y).sub(x.minimum(y)), x.clamp(-0.5, 0.5).relu(), x.gt(y).mul(x),
    ];
    expect(checkParity(fn, [a, b], { backends: ['ts', 'cpu'] })).toBe(true);
  });
  it('reports its build and counts live handles', () => {
    expect(describeBuild().loaded).toBe(true);
    const before = memoryStats().liveHandles;
    const x = randn([1000], { device: 'cpu' });
    expect(memoryStats().liveHandles).toBe(before + 1);
    x.dispose();
    expect(memoryStats().liveHandles).toBe(before);
  });
});
