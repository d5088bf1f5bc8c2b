/**
 * Native memory is owned: a training step wrapped in tidy() leaves exactly the handles it should
 * (parameters, buffers, gradients, momentum) and nothing else, step after step.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { backends, cachedScalarCount, crossEntropy, keep, manualSeed, randn, tensor, tidy, type Tensor } from '@nodegrad/autograd';
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

  it('a tensor used after its slot went to another tensor still says it was disposed, and the other is intact', () => {
    const old = randn([4], { device: 'cpu' });
    old.dispose();
    // The next handles take the freed slot over (handle_table.h): only the generation tells them apart.
    const fresh = Array.from({ length: 4 }, (_, i) => tensor([i, i, i, i], { device: 'cpu' }));
    expect(() => old.add(1)).toThrow(/was disposed/);
    fresh.forEach((t, i) => expect(Array.from(t.dataSync())).toEqual([i, i, i, i]));
    for (const t of fresh) t.dispose();
  });
});

// A kernel's handle has no finalizer while a tidy holds it (handle_table.h): the garbage collector
// frees only what no tidy owns, and never what one does.
suite(`cpu backend: what the garbage collector frees${why}`, () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const live = () => mem().liveHandles;
  const settle = () => { for (let i = 0; i < 3; i++) gc(); };

  it('frees tensors made outside every tidy, kept out of one, or returned from the outermost, once unreachable', () => {
    const x = randn([8], { device: 'cpu' });
    settle();
    const start = live();
    // Made and dropped in a function of its own, so that no frame of this one still points at one.
    const makeAndDrop = () => {
      const held: Tensor[] = [];
      for (let i = 0; i < 50; i++) { const e = x.exp(); held.push(e, e.add(1)); } // outside any tidy
      tidy(() => { for (let i = 0; i < 50; i++) held.push(keep(x.mul(2))); });
      for (let i = 0; i < 50; i++) held.push(tidy(() => x.neg()));
      settle();
      return live() - start;
    };
    expect(makeAndDrop()).toBe(200);
    settle();
    expect(live() - start).toBe(0);
    x.dispose();
  });

  it('leaves what a tidy holds to the tidy, however unreachable', () => {
    const x = randn([8], { device: 'cpu' });
    settle();
    const start = live();
    tidy(() => {
      for (let i = 0; i < 50; i++) x.exp();
      settle();
      expect(live() - start).toBe(50);
    });
    expect(live() - start).toBe(0);
    x.dispose();
  });
});
