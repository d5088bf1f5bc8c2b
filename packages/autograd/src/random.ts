/**
 * The global random state, two streams seeded together by `manualSeed(n)`, as PyTorch keeps a CPU
 * and a CUDA generator (the streams differ from PyTorch's):
 * - the device stream behind rand, randn and dropout: a Philox seed and an offset that each draw
 *   advances by its element count; the kernels compute element i from (seed, offset + i)
 *   (philox.ts), so every backend draws the same numbers and nothing is generated on the host;
 * - the host stream behind parameter initialisation (hostUniform, hostNormal): xoshiro128**
 *   seeded by splitmix32, drawn once per parameter when a model is built.
 */
let philoxSeed = 0;
let philoxOffset = 0;
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
  philoxSeed = seed >>> 0;
  philoxOffset = 0;
}

/** @internal The (seed, offset) for a device draw of n elements; advances the offset past it. */
export function takeOffset(n: number): { seed: number; offset: number } {
  const r = { seed: philoxSeed, offset: philoxOffset };
  philoxOffset += n;
  return r;
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
function randomUniform(): number {
  return ((nextU32() >>> 5) * 67108864 + (nextU32() >>> 6)) / 9007199254740992;
}

/** Standard normal by Box-Muller, from two 32-bit uniforms in (0, 1). */
function randomNormal(): number {
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

/** n uniform samples in [0, 1) from the host stream, in float64 (parameter initialisation). */
export function hostUniform(n: number): Float64Array {
  return Float64Array.from({ length: n }, randomUniform);
}

/** n standard normal samples from the host stream, in float64 (parameter initialisation). */
export function hostNormal(n: number): Float64Array {
  return Float64Array.from({ length: n }, randomNormal);
}

/**
 * Both streams' state, to resume exactly: the host stream's 4 words, whether a normal is pending
 * and its value, then the device stream's seed and offset.
 */
export function getRngState(): number[] {
  return [...s, spare === null ? 0 : 1, spare ?? 0, philoxSeed, philoxOffset];
}

export function setRngState(state: readonly number[]): void {
  if (state.length !== 8 || !state.every(Number.isFinite)) {
    throw new Error(`setRngState: expected the 8 numbers getRngState returns, got ${state.length} values`);
  }
  s = new Uint32Array(state.slice(0, 4));
  spare = state[4] ? state[5]! : null;
  philoxSeed = state[6]!;
  philoxOffset = state[7]!;
}
