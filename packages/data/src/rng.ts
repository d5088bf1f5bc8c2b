/**
 * Seeded randomness for data loading, separate from the autograd global RNG so that model init
 * and dropout streams do not depend on how many samples were loaded, and a resumed run sees the
 * same augmentations. Every stream is a pure function of its key: (seed, epoch, index) for one
 * sample's augmentation, (seed, epoch) for an epoch's shuffle.
 */
import type { Rng } from './types.js';

// murmur3's 32-bit finaliser: every input bit flips each output bit with probability ~1/2.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes a key of integers (each exact up to 2^53, negatives allowed) to one 32-bit word. */
function hashKey(key: readonly number[], salt: number): number {
  let h = fmix32(salt ^ 0x9e3779b9);
  for (const v of key) {
    if (!Number.isSafeInteger(v)) throw new Error(`rng: key part ${v} is not a safe integer`);
    const lo = v | 0;
    const hi = Math.floor(v / 0x100000000) | 0;
    h = fmix32(Math.imul(h ^ lo, 0xcc9e2d51) + 0x1b873593);
    h = fmix32(Math.imul(h ^ hi, 0x1b873593) + 0xe6546b64);
  }
  return h;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, from PractRand): 128 bits of state,
 * passes BigCrush. Returns doubles with 53 random bits, so Fisher–Yates on large n stays unbiased.
 */
function sfc32(a: number, b: number, c: number, d: number): Rng {
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next(); // mixes the hashed seed words before the first draw
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

/** A generator keyed by integers: equal keys give equal streams on any thread and after a resume. */
export function keyedRng(key: readonly number[]): Rng {
  return sfc32(hashKey(key, 1), hashKey(key, 2), hashKey(key, 3), hashKey(key, 4));
}

// Domain tags keep the shuffle stream and the per-sample streams apart for the same (seed, epoch).
const SAMPLE = 0x5a4d;
const SHUFFLE = 0x5348;

/** The augmentation RNG of one sample: deterministic per (seed, epoch, index). */
export function sampleRng(seed: number, epoch: number, index: number): Rng {
  return keyedRng([SAMPLE, seed, epoch, index]);
}

/** A permutation of 0..n-1 that is a pure function of (seed, epoch): Fisher–Yates (Durstenfeld). */
export function randomPermutation(n: number, seed: number, epoch: number): number[] {
  const rng = keyedRng([SHUFFLE, seed, epoch]);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** An integer uniform on [lo, hi) drawn from `rng` (Python's randint(lo, hi - 1)). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo));
}

/** A float uniform on [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}
