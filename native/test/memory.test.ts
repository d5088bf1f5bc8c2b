/**
 * Native memory is owned: a training step wrapped in tidy() leaves exactly the handles it should
 * (parameters, buffers, gradients, momentum) and nothing else, step after step.
 */
import { describe, expect, it } from 'vitest';
import { backends, cachedScalarCount, crossEntropy, manualSeed, randn, tensor, tidy, type Tensor } from '@nodegrad/autograd';
import { SGD, resnet18 } from '@nodegrad/nn';
import { emptyCache, memoryStats } from '@nodegrad/native';

const cpu = backends().find((b) => b.name === 'cpu');
const suite = cpu?.available ? describe : describe.skip;
const why = cpu?.available ? '' : ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`;
const bytes = (ts: Tensor[]) => ts.reduce((s, t) => s + t.size * 4, 0);
// Scalar operands (momentum, eps, 1/M, ...) are made once on the device and cached: one float32
// 0-d buffer each, created in the first step that uses them. Memory is counted without them.
const mem = () => {
  const m = memoryStats(), k = cachedScalarCount('cpu');
  return { liveHandles: m.liveHandles - k, liveBytes: m.liveBytes - 4 * k };
};

suite(`cpu backend: memory over 200 training steps${why}`, () => {
  it('live handles and bytes return to the same level after every step', { timeout: 180_000 }, async () => {
    manualSeed(0);
    const model = resnet18({ numClasses: 10, smallImageStem: true, widths: [4, 8, 8, 8] }).to('cpu');
    const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const x = randn([4, 3, 8, 8], { device: 'cpu' });
    const y = tensor([1, 7, 3, 0], { dtype: 'int64', device: 'cpu' });
    const params = model.parameters();
    const start = mem();
    const losses: number[] = [];
    for (let step = 0; step < 200; step++) {
      // Let the test runner's worker answer its RPC between steps (a long synchronous loop times it out).
      if (step % 10 === 0) await new Promise((r) => setImmediate(r));
      losses.push(tidy(() => {
        opt.zeroGrad();
        const loss = crossEntropy(model.call(x), y);
        loss.backward();
        opt.step();
        return loss.item();
      }));
      const now = mem();
      // After each step: one gradient and one momentum buffer per parameter, nothing more.
      expect(now.liveHandles - start.liveHandles, `handles after step ${step}`).toBe(2 * params.length);
      expect(now.liveBytes - start.liveBytes, `bytes after step ${step}`).toBe(2 * bytes(params));
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[199]!).toBeLessThan(losses[0]! * 0.5); // it trained on the fixed batch
  });

  it('backward frees intermediate gradients as it goes: it adds only the parameters\' gradients', () => {
    manualSeed(1);
    const model = resnet18({ numClasses: 10, smallImageStem: true, widths: [8, 16, 16, 16] }).to('cpu');
    const x = randn([8, 3, 16, 16], { device: 'cpu' });
    const y = tensor([1, 7, 3, 0, 1, 2, 3, 4], { dtype: 'int64', device: 'cpu' });
    tidy(() => {
      const loss = crossEntropy(model.call(x), y);
      const before = mem().liveBytes;
      loss.backward();
      const grown = mem().liveBytes - before;
      // Every parameter's gradient, plus the 4-byte seed gradient of the loss; the activations'
      // gradients (several times larger) are gone by the time backward returns.
      expect(grown).toBe(bytes(model.parameters()) + 4);
    });
  });

  it('emptyCache gives the pooled buffers back and keeps the live ones', () => {
    const kept = randn([1000], { device: 'cpu' });
    const values = Array.from(kept.dataSync());
    randn([300, 1000], { device: 'cpu' }).dispose();
    expect(memoryStats().poolCachedBytes).toBeGreaterThanOrEqual(300 * 1000 * 4);
    const live = memoryStats().liveBytes;
    emptyCache();
    expect(memoryStats().poolCachedBytes).toBe(0);
    expect(memoryStats().liveBytes).toBe(live);
    emptyCache();  // twice is harmless
    expect(Array.from(kept.dataSync())).toEqual(values);
  });

  it('a cached buffer up to twice the size serves a smaller request, and returns to its own size class', () => {
    emptyCache();
    randn([2 ** 21], { device: 'cpu' }).dispose(); // 8 MiB, cached
    const cached = memoryStats().poolCachedBytes;
    expect(cached).toBe(8 * 2 ** 20);
    const smaller = randn([3 * 2 ** 19], { device: 'cpu' }); // 6 MiB: the cached 8 MiB buffer, no new one
    expect(memoryStats().poolCachedBytes).toBe(0);
    smaller.dispose();
    expect(memoryStats().poolCachedBytes).toBe(cached);
    const exact = randn([2 ** 21], { device: 'cpu' }); // the 8 MiB class finds it again
    expect(memoryStats().poolCachedBytes).toBe(0);
    exact.dispose();
    randn([2 ** 19], { device: 'cpu' }).dispose(); // 2 MiB: more than twice smaller, a buffer of its own
    expect(memoryStats().poolCachedBytes).toBe(cached + 2 * 2 ** 20);
    emptyCache();
  });

  it("a module moved by to('cpu') owns its tensors alone: disposing them frees every byte, without the garbage collector", () => {
    // Handles the collector finds dead are finalized inside the collection, which may run while
    // the model is built: the counts can only fall by that, so the model's share is measured
    // across the disposal, and what is left may not exceed where it started.
    const start = memoryStats();
    const model = resnet18({ numClasses: 10, smallImageStem: true, widths: [8, 16, 32, 64] }).to('cpu');
    const tensors = [...model.parameters(), ...model.buffers()].filter((t) => t.device === 'cpu');
    const built = memoryStats();
    for (const t of tensors) t.dispose();
    const end = memoryStats();
    expect(built.liveHandles - end.liveHandles).toBe(tensors.length);
    expect(end.liveHandles).toBeLessThanOrEqual(start.liveHandles);
    expect(end.liveBytes).toBeLessThanOrEqual(start.liveBytes);
  });

  it('a tensor freed by tidy says so when used', () => {
    let escaped: Tensor | null = null;
    tidy(() => { escaped = randn([3], { device: 'cpu' }).exp(); });
    expect(() => escaped!.add(1)).toThrow(/was disposed/);
  });
});
