import { afterEach, describe, expect, it, vi } from 'vitest';
import { fromTypedArray } from '@nodegrad/autograd';
import { DataLoader, DistributedSampler, mnist, TensorDataset, type Batch } from '@nodegrad/data';

// 10 images 1x2x2 whose pixels all equal their index, labels index % 3.
const n = 10;
const tiny = () => new TensorDataset(Float32Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4)), Array.from({ length: n }, (_, i) => i % 3), { shape: [1, 2, 2] });

async function collect(dl: DataLoader, start = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of dl.batches(start)) out.push(b);
  return out;
}
const order = (bs: Batch[]): number[] => bs.flatMap((b) => b.indices);

afterEach(() => vi.restoreAllMocks());

describe('DataLoader', () => {
  it('without shuffle yields the dataset in order, x as [B, C, H, W] float32 and y as int64', async () => {
    const bs = await collect(new DataLoader(tiny(), { batchSize: 4 }));
    expect(bs.map((b) => b.x.shape)).toEqual([[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]]);
    expect(order(bs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(bs[1]!.x.dtype).toBe('float32');
    expect(bs[1]!.y.dtype).toBe('int64');
    expect(Array.from(bs[1]!.x.toTypedArray())).toEqual([4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7]);
    expect(Array.from(bs[1]!.y.toTypedArray())).toEqual([1, 2, 0, 1]);
  });

  it('is async-iterable: for await gives the epoch that batches() gives, then moves to the next (each pass reshuffles, as torch)', async () => {
    const dl = new DataLoader(tiny(), { batchSize: 3, shuffle: true, seed: 5 });
    dl.setEpoch(2);
    const expected = await collect(dl);
    const seen: Batch[] = [];
    for await (const b of dl) seen.push(b);
    expect(seen.map((b) => b.indices)).toEqual(expected.map((b) => b.indices));
    expect(seen.map((b) => Array.from(b.x.toTypedArray()))).toEqual(expected.map((b) => Array.from(b.x.toTypedArray())));
    // The pass moved the loader to epoch 3: the next pass is epoch 3's order.
    const again: number[][] = [];
    for await (const b of dl) again.push(b.indices);
    dl.setEpoch(3);
    expect(again).toEqual((await collect(dl)).map((b) => b.indices));
    expect(again).not.toEqual(expected.map((b) => b.indices));
  });

  it("refuses options it does not know (torch's drop_last would be ignored) and a sampler made for another dataset", () => {
    expect(() => new DataLoader(tiny(), { batchSize: 3, drop_last: true } as never)).toThrow(/^DataLoader: unknown option drop_last \(known: batchSize, /);
    const sampler = new DistributedSampler(20, { numReplicas: 2, rank: 0 });
    expect(() => new DataLoader(tiny(), { batchSize: 3, sampler })).toThrow(`DataLoader: the sampler was made for 20 items, the dataset has ${tiny().length}`);
    expect(() => new DistributedSampler(20, { numReplicas: 2, rank: 0, drop_last: true } as never)).toThrow(/^DistributedSampler: unknown option drop_last/);
    // Fewer items than replicas with dropLast: torch's sampler has length 0; a loader over it says why it has nothing.
    const few = new DistributedSampler(tiny().length, { numReplicas: tiny().length + 1, rank: 0, dropLast: true });
    expect(few.length).toBe(0);
    expect(() => new DataLoader(tiny(), { batchSize: 3, sampler: few }))
      .toThrow(`DataLoader: this rank's shard is empty (${tiny().length} items over ${tiny().length + 1} replicas, dropLast)`);
  });

  it("takes the augmentation epoch from the sampler, so torch's sampler.set_epoch(e) idiom varies it", async () => {
    const ds = mnist('val', { limit: 12, transform: [{ name: 'randomCrop', size: 28, padding: 3 }] });
    const sampler = new DistributedSampler(ds.length, { numReplicas: 1, rank: 0, shuffle: false });
    const dl = new DataLoader(ds, { batchSize: 6, sampler });
    const pixels = async () => (await collect(dl)).map((b) => Array.from(b.x.toTypedArray()));
    const epoch0 = await pixels();
    sampler.setEpoch(4);
    const viaSampler = await pixels();
    expect(viaSampler).not.toEqual(epoch0);
    dl.setEpoch(4);
    expect(await pixels()).toEqual(viaSampler);
  });

  it('shuffles as a pure function of (seed, epoch)', async () => {
    const make = (seed: number) => new DataLoader(tiny(), { batchSize: 3, shuffle: true, seed });
    const a = make(1);
    const e0 = order(await collect(a));
    expect([...e0].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(order(await collect(a))).toEqual(e0); // same epoch, same order
    a.setEpoch(1);
    const e1 = order(await collect(a));
    expect(e1).not.toEqual(e0);
    const b = make(1);
    b.setEpoch(1);
    expect(order(await collect(b))).toEqual(e1); // a fresh loader (a resumed run) repeats it
    expect(order(await collect(make(2)))).not.toEqual(e0);
    // The pixels follow the indices.
    const first = (await collect(a))[0]!;
    expect(Array.from(first.x.toTypedArray()).filter((_, i) => i % 4 === 0)).toEqual(first.indices);
  });

  it('dropLast drops the partial batch; batches(start) resumes mid-epoch', async () => {
    const dl = new DataLoader(tiny(), { batchSize: 4, dropLast: true, shuffle: true, seed: 3 });
    expect(dl.batchesPerEpoch).toBe(2);
    const all = await collect(dl);
    expect(all.map((b) => b.indices.length)).toEqual([4, 4]);
    expect(new DataLoader(tiny(), { batchSize: 4 }).batchesPerEpoch).toBe(3);
    const tail = await collect(dl, 1);
    expect(order(tail)).toEqual(all[1]!.indices);
    expect(await collect(dl, 2)).toEqual([]);
    await expect(collect(dl, 3)).rejects.toThrow(/start 3 must lie in \[0, 2\]/);
  });

  it('takes its order from a DistributedSampler and passes the epoch on', async () => {
    const sampler = new DistributedSampler(n, { numReplicas: 3, rank: 1, seed: 4 });
    const dl = new DataLoader(tiny(), { batchSize: 2, sampler });
    dl.setEpoch(2);
    expect(dl.batchesPerEpoch).toBe(2);
    const ref = new DistributedSampler(n, { numReplicas: 3, rank: 1, seed: 4 });
    ref.setEpoch(2);
    expect(order(await collect(dl))).toEqual(ref.indices());
    expect(() => new DataLoader(tiny(), { batchSize: 2, sampler, shuffle: true })).toThrow(/mutually exclusive/);
  });

  it('places batches on the requested device', async () => {
    const [b] = await collect(new DataLoader(tiny(), { batchSize: 10, device: 'ts' }));
    expect(b!.x.device).toBe('ts');
    expect(b!.y.device).toBe('ts');
  });

  it('gives identical augmented batches with workers 0 and 1 (worker thread, prefetching)', async () => {
    const ds = mnist('train', { limit: 150, transform: [{ name: 'randomCrop', size: 28, padding: 2 }, { name: 'randomHorizontalFlip' }] });
    const run = async (workers: 0 | 1, epoch: number, start = 0) => {
      const dl = new DataLoader(ds, { batchSize: 32, shuffle: true, seed: 9, workers, prefetch: 2 });
      dl.setEpoch(epoch);
      try {
        return (await collect(dl, start)).map((b) => ({ x: Array.from(b.x.toTypedArray()), y: Array.from(b.y.toTypedArray()), i: b.indices }));
      } finally {
        await dl.close();
      }
    };
    const main = await run(0, 1);
    expect(main.length).toBe(5);
    expect(await run(1, 1)).toEqual(main);
    expect(await run(1, 1, 3)).toEqual(main.slice(3));
    expect(await run(1, 2)).not.toEqual(main);
  });

  it('notes once that a dataset without workerSpec loads on the main thread', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const dl = new DataLoader(tiny(), { batchSize: 4, workers: 1 });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/TensorDataset has no workerSpec .* main thread/);
    expect(order(await collect(dl))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(warn).toHaveBeenCalledTimes(1);
    await dl.close();
  });

  it('reads a TensorDataset from tensors and rejects mismatched ones', () => {
    const x = fromTypedArray(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 2, 2]);
    const y = fromTypedArray(Float64Array.from([1, 0]), [2], { dtype: 'int64' });
    const ds = new TensorDataset(x, y);
    expect(ds.length).toBe(2);
    expect(ds.classes).toEqual(['0', '1']);
    const s = ds.get(1, Math.random);
    expect([s instanceof Promise, (s as { label: number }).label]).toEqual([false, 0]);
    expect(Array.from((s as { image: { data: Float32Array } }).image.data)).toEqual(Array.from({ length: 12 }, (_, i) => 12 + i));
    expect(() => new TensorDataset(x, fromTypedArray(Float64Array.from([1, 0, 1]), [3], { dtype: 'int64' }))).toThrow(/x holds 2 images but y has 3 labels/);
    expect(() => new DataLoader(ds, { batchSize: 0 })).toThrow(/batchSize 0 must be a positive integer/);
  });
});
