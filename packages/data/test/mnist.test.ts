import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { mnist, sampleRng } from '@nodegrad/data';
import { largestRemainder } from '../src/mnist.js';

const rng = sampleRng(0, 0, 0);
const require = createRequire(import.meta.url);
// The package's per-digit arrays, read independently of the dataset code.
const raw = Array.from({ length: 10 }, (_, d) => (JSON.parse(readFileSync(require.resolve(`mnist/src/digits/${d}.json`), 'utf8')) as { data: number[] }).data);
const perDigit = raw.map((a) => a.length / 784);

function labelCounts(ds: ReturnType<typeof mnist>): number[] {
  const c = new Array<number>(10).fill(0);
  for (let i = 0; i < ds.length; i++) c[(ds.get(i, rng) as { label: number }).label]! += 1;
  return c;
}

describe('mnist', () => {
  it('splits 8,000 / 2,000, stratified by digit with largest remainders', () => {
    const train = mnist('train');
    const val = mnist('val');
    expect(train.length).toBe(8000);
    expect(val.length).toBe(2000);
    expect(perDigit.reduce((a, b) => a + b)).toBe(10000);
    const tc = labelCounts(train);
    const vc = labelCounts(val);
    // Hand-computed: floor(0.8 n) per digit sums to 7,996; the four largest fractions (.8, .8, .6, .6) get one more.
    expect(tc).toEqual([801, 902, 793, 826, 784, 690, 811, 856, 755, 782]);
    expect(tc.map((n, d) => n + vc[d]!)).toEqual(perDigit);
    for (let d = 0; d < 10; d++) expect(Math.abs(tc[d]! - 0.8 * perDigit[d]!)).toBeLessThan(1);
  });

  it('train holds the first samples of each digit and val the rest, with no overlap', () => {
    const train = mnist('train');
    const val = mnist('val');
    const key = (s: { image: { data: Float32Array }; label: number }) => `${s.label}:${Array.from(s.image.data).join(',')}`;
    const seen = new Set<string>();
    for (let i = 0; i < train.length; i++) seen.add(key(train.get(i, rng) as never));
    let shared = 0;
    for (let i = 0; i < val.length; i++) if (seen.has(key(val.get(i, rng) as never))) shared++;
    // Identical images could exist in the source itself; count them there to tell a leak from a duplicate.
    const dupSource = new Set<string>();
    let dups = 0;
    raw.forEach((a, d) => {
      for (let k = 0; k < a.length / 784; k++) {
        const s = `${d}:${Array.from(Float32Array.from(a.slice(k * 784, (k + 1) * 784))).join(',')}`;
        if (dupSource.has(s)) dups++;
        dupSource.add(s);
      }
    });
    expect(shared).toBeLessThanOrEqual(dups);
    // The first val sample of digit 0 is the package's sample 801 of digit 0.
    const v0 = val.get(0, rng) as { image: { data: Float32Array }; label: number };
    expect(v0.label).toBe(0);
    expect(Array.from(v0.image.data)).toEqual(Array.from(Float32Array.from(raw[0]!.slice(801 * 784, 802 * 784))));
  });

  it('gives 1x28x28 float images in [0, 1], the same on every call', () => {
    const ds = mnist('val');
    for (const i of [0, 1234, 1999]) {
      const s = ds.get(i, rng) as { image: { data: Float32Array; channels: number; height: number; width: number }; label: number };
      expect([s.image.channels, s.image.height, s.image.width]).toEqual([1, 28, 28]);
      expect(s.image.data.length).toBe(784);
      expect(Math.min(...s.image.data)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...s.image.data)).toBeLessThanOrEqual(1);
      expect(Math.max(...s.image.data)).toBeGreaterThan(0.5);
      expect((ds.get(i, rng) as typeof s).image.data).toEqual(s.image.data);
    }
    expect(ds.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('limit keeps the first samples of the split, stratified', () => {
    const ds = mnist('train', { limit: 100 });
    expect(ds.length).toBe(100);
    expect(labelCounts(ds)).toEqual(largestRemainder([801, 902, 793, 826, 784, 690, 811, 856, 755, 782], 100));
    expect(labelCounts(ds).every((c) => c >= 8 && c <= 12)).toBe(true);
    const first = ds.get(0, rng) as { image: { data: Float32Array } };
    expect(first.image.data).toEqual((mnist('train').get(0, rng) as typeof first).image.data);
  });

  it('largestRemainder hits the total exactly and breaks ties toward the lower group', () => {
    expect(largestRemainder([1, 1, 1], 2)).toEqual([1, 1, 0]);
    expect(largestRemainder([5, 3, 2], 7)).toEqual([4, 2, 1]); // 3.5, 2.1, 1.4 -> floors 3,2,1 + one to .5
    expect(largestRemainder([1001, 1127], 1700).reduce((a, b) => a + b)).toBe(1700);
  });

  it('rejects a bad split, limit or index', () => {
    expect(() => mnist('test' as 'val')).toThrow(/split 'test' must be 'train' or 'val'/);
    expect(() => mnist('train', { limit: 0 })).toThrow(/limit 0/);
    expect(() => mnist('val').get(2000, rng)).toThrow(/index 2000 is out of range \[0, 2000\)/);
  });
});
