import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DistributedSampler, randomPermutation, sampleRng } from '@nodegrad/data';

const fx = JSON.parse(readFileSync(new URL('./fixtures/data_fixtures.json', import.meta.url), 'utf8')) as {
  distributedSampler: Array<{ length: number; numReplicas: number; epoch: number; shuffle: boolean; dropLast: boolean; numSamples: number; indices: number[][] }>;
};

const sorted = (a: number[]): number[] => [...a].sort((x, y) => x - y);

describe('DistributedSampler', () => {
  for (const c of fx.distributedSampler) {
    const name = `length ${c.length}, ${c.numReplicas} replicas, epoch ${c.epoch}, shuffle ${c.shuffle}, dropLast ${c.dropLast}`;
    it(`matches torch.utils.data.DistributedSampler: ${name}`, () => {
      const ours = Array.from({ length: c.numReplicas }, (_, rank) => {
        const s = new DistributedSampler(c.length, { numReplicas: c.numReplicas, rank, shuffle: c.shuffle, seed: 0, dropLast: c.dropLast });
        s.setEpoch(c.epoch);
        expect(s.length).toBe(c.numSamples);
        return s.indices();
      });
      if (!c.shuffle) {
        expect(ours).toEqual(c.indices);
        return;
      }
      // torch.randperm's stream is not ours: compare what the semantics fix (sizes, the multiset of indices).
      expect(ours.map((r) => r.length)).toEqual(c.indices.map((r) => r.length));
      const all = ours.flat();
      if (c.dropLast) {
        expect(new Set(all).size).toBe(all.length); // disjoint shards
      } else {
        expect(sorted([...new Set(all)])).toEqual(Array.from({ length: c.length }, (_, i) => i)); // cover every index
        expect(all.length - c.length).toBe(c.indices.flat().length - c.length); // the same amount of padding
      }
      expect(all.every((i) => i >= 0 && i < c.length)).toBe(true);
    });
  }

  it('shuffles per epoch, reproducibly, the same on every rank', () => {
    const make = (rank: number, seed = 0) => new DistributedSampler(50, { numReplicas: 2, rank, seed });
    const a = make(0);
    const b = make(1);
    a.setEpoch(3);
    b.setEpoch(3);
    expect(sorted([...a.indices(), ...b.indices()])).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const again = make(0);
    again.setEpoch(3);
    expect(again.indices()).toEqual(a.indices());
    again.setEpoch(4);
    expect(again.indices()).not.toEqual(a.indices());
    const otherSeed = make(0, 1);
    otherSeed.setEpoch(3);
    expect(otherSeed.indices()).not.toEqual(a.indices());
  });

  it('rejects a rank outside the group', () => {
    expect(() => new DistributedSampler(10, { numReplicas: 2, rank: 2 })).toThrow(/rank 2 must lie in \[0, 1\]/);
    expect(() => new DistributedSampler(10, { numReplicas: 0, rank: 0 })).toThrow(/numReplicas 0/);
  });
});

describe('seeded randomness', () => {
  it('randomPermutation is a permutation, a pure function of (seed, epoch)', () => {
    const p = randomPermutation(1000, 5, 2);
    expect(sorted(p)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(randomPermutation(1000, 5, 2)).toEqual(p);
    expect(randomPermutation(1000, 5, 3)).not.toEqual(p);
    expect(randomPermutation(1000, 6, 2)).not.toEqual(p);
    // Not the identity nor a rotation: few fixed points (expected 1 for a uniform permutation).
    expect(p.filter((v, i) => v === i).length).toBeLessThan(10);
  });

  it('sampleRng streams are keyed by (seed, epoch, index) and uniform on [0, 1)', () => {
    const draw = (s: number, e: number, i: number) => Array.from({ length: 4 }, sampleRng(s, e, i));
    expect(draw(1, 2, 3)).toEqual(draw(1, 2, 3));
    expect(draw(1, 2, 3)).not.toEqual(draw(1, 2, 4));
    expect(draw(1, 2, 3)).not.toEqual(draw(1, 3, 3));
    expect(draw(1, 2, 3)).not.toEqual(draw(2, 2, 3));
    const r = sampleRng(0, 0, 0);
    const xs = Array.from({ length: 20000 }, r);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((a, b) => a + b) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01); // 5 sigma of 1/sqrt(12 * 20000)
    const bins = new Array<number>(10).fill(0);
    for (const x of xs) bins[Math.floor(x * 10)]! += 1;
    const chi2 = bins.reduce((a, b) => a + (b - 2000) ** 2 / 2000, 0);
    expect(chi2).toBeLessThan(30); // chi-square, 9 d.o.f.: p < 0.001 beyond 27.9
  });
});
