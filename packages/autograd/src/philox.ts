/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
 * counter-based generator, so element i of a draw is a pure function of (seed, offset + i) and any
 * backend, serial or one thread per element, produces the same numbers. Every random kernel
 * (RandomUniform, RandomNormal, Bernoulli) maps element i to one Philox block with
 * counter = [lo32(offset + i), hi32(offset + i), 0, 0] and key = [lo32(seed), hi32(seed)], and
 * uses the block's four words as written below; native backends implement the same mapping.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO32 = 4294967296;

/** High 32 bits of the 64-bit product a * b of two uint32, from 16-bit halves (exact in doubles). */
function mulhi(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const lolo = aLo * bLo;
  const mid1 = aHi * bLo + (lolo >>> 16);
  const mid2 = aLo * bHi + (mid1 % 65536);
  return (aHi * bHi + Math.floor(mid1 / 65536) + Math.floor(mid2 / 65536)) >>> 0;
}

/** Philox4x32-10 of a 128-bit counter (c0..c3) under a 64-bit key (k0, k1), into `out`. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number,
  out: Uint32Array): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/** The block of element counter `counter` (offset + i, below 2^53) under `seed` (below 2^53). */
export function philoxBlock(seed: number, counter: number, out: Uint32Array): void {
  philox4x32(counter >>> 0, Math.floor(counter / TWO32) >>> 0, 0, 0, seed >>> 0, Math.floor(seed / TWO32) >>> 0, out);
}

/** Uniform in [0, 1) with 53 random bits from words 0 and 1 (float64 draws, Bernoulli). */
export function uniform53(w: Uint32Array): number {
  return ((w[0]! >>> 5) * 67108864 + (w[1]! >>> 6)) / 9007199254740992;
}

/** Uniform in [0, 1) with 24 random bits from word 0: exactly representable in float32. */
export function uniform24(w: Uint32Array): number {
  return (w[0]! >>> 8) / 16777216;
}

/**
 * Uniform in [0, 1) with as many random bits as a half type's significand (8 for bfloat16, 11 for
 * float16), so the value is exact in the type and rounding can never reach 1.
 */
export function uniformHalf(w: Uint32Array, bits: number): number {
  return (w[0]! >>> (32 - bits)) / 2 ** bits;
}

/**
 * Standard normal by Box-Muller from the whole block: u1 in (0, 1] from words 0-1, u2 in [0, 1)
 * from words 2-3, z = sqrt(-2 ln u1) cos(2 pi u2), computed in float64.
 */
export function normal(w: Uint32Array): number {
  const u1 = 1 - uniform53(w);
  const u2 = ((w[2]! >>> 5) * 67108864 + (w[3]! >>> 6)) / 9007199254740992;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
