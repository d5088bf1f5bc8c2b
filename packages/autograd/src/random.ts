/**
 * The global generator behind rand, randn, dropout and init: xoshiro128** seeded by splitmix32,
 * so `manualSeed(n)` makes every random op reproducible. (Streams differ from PyTorch's.)
 */
let s = new Uint32Array(4);
// Box-Muller yields normals in pairs; the second is kept for the next call (and in the state).
let spare: number | null = null;

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeds the global generator. */
export function manualSeed(seed: number): void {
  const next = splitmix32(seed);
  s = new Uint32Array([next(), next(), next(), next()]);
  spare = null;
}
manualSeed(Date.now() & 0xffffffff);

function nextU32(): number {
  const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
  const t = s[1]! << 9;
  s[2]! ^= s[0]!; s[3]! ^= s[1]!; s[1]! ^= s[2]!; s[0]! ^= s[3]!;
  s[2]! ^= t;
  s[3] = rotl(s[3]!, 11);
  return result;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Uniform in [0, 1) with 53 random bits. */
export function randomUniform(): number {
  return ((nextU32() >>> 5) * 67108864 + (nextU32() >>> 6)) / 9007199254740992;
}

/** Standard normal by Box-Muller, from two 32-bit uniforms in (0, 1). */
export function randomNormal(): number {
  if (spare !== null) {
    const z = spare;
    spare = null;
    return z;
  }
  const u1 = (nextU32() + 0.5) / 4294967296;
  const u2 = (nextU32() + 0.5) / 4294967296;
  const r = Math.sqrt(-2 * Math.log(u1));
  spare = r * Math.sin(2 * Math.PI * u2);
  return r * Math.cos(2 * Math.PI * u2);
}

/** The generator's state (4 words and the pending normal, if any), to resume a random stream exactly. */
export function getRngState(): number[] {
  return spare === null ? Array.from(s) : [...s, spare];
}

export function setRngState(state: readonly number[]): void {
  if (state.length !== 4 && state.length !== 5) {
    throw new Error(`setRngState: expected 4 words of state (and optionally a pending normal), got ${state.length} values`);
  }
  s = new Uint32Array(state.slice(0, 4));
  spare = state.length === 5 ? state[4]! : null;
}
