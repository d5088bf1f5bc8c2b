/**
 * Without a usable GPU (this machine, CI) the 'cuda' side says why everywhere a user meets it:
 * backends(), every cuda.* call, and a move to 'cuda:0'; Tensor.cpu() stays on the host.
 */
import { describe, expect, it } from 'vitest';
import { backends, tensor } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native';

const gpu = backends().find((b) => b.name === 'cuda:0');
const reason = gpu?.reason ?? '';

describe(`cuda without a GPU${gpu?.available ? ' (skipped: a GPU is here)' : ''}`, () => {
  (gpu?.available ? it.skip : it)("reports 'cuda:0' unavailable with one reason, in backends(), cuda.* and moves", () => {
    expect(gpu).toEqual({ name: 'cuda:0', available: false, reason: cuda.reason() });
    expect(reason.length).toBeGreaterThan(0);
    expect(cuda.isAvailable()).toBe(false);
    expect(cuda.deviceCount()).toBe(0);
    expect(() => cuda.synchronize()).toThrow(`cuda.synchronize: CUDA is unavailable: ${reason}`);
    expect(() => cuda.memoryStats('cuda:0')).toThrow(`cuda.memoryStats: CUDA is unavailable: ${reason}`);
    expect(() => cuda.setCudnnBenchmark(true)).toThrow(`cuda.setCudnnBenchmark: CUDA is unavailable: ${reason}`);
    expect(() => tensor([1, 2], { device: 'ts' }).to('cuda:0')).toThrow(`device 'cuda:0' is not available: ${reason}`);
    expect(cuda.describe()).toMatchObject({ available: false, reason, devices: [] });
  });

  it('Tensor.cpu() keeps a host tensor where it is, and moves to the host otherwise', () => {
    const t = tensor([1, 2, 3], { device: 'ts' });
    expect(t.cpu()).toBe(t);
    if (backends().some((b) => b.name === 'cpu' && b.available)) {
      const c = tensor([1, 2, 3], { device: 'cpu' });
      expect(c.cpu()).toBe(c);
    }
    // A device tensor comes back to the host with its values ('cuda-emu' stands in for a GPU).
    if (backends().some((b) => b.name === 'cuda-emu' && b.available)) {
      const g = tensor([1, 2, 3], { device: 'cuda-emu' }).cpu();
      expect(['cpu', 'ts']).toContain(g.device);
      expect(g.toArray()).toEqual([1, 2, 3]);
    }
  });
});
