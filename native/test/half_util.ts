/**
 * Shared by the half-type tests of the 'cpu' backend (half_kernels.test.ts, half_ops.test.ts):
 * kernel calls on 'cpu' and on the 'ts' reference with the same host data, deterministic inputs
 * that reach the half types' edges, and comparisons that report the first elements that differ.
 */
import { expect } from 'vitest';
import { backends, getBackend, roundBFloat16, roundFloat16, type Backend, type DType, type HalfDType, type Raw } from '@nodegrad/autograd';
import { describeBuild } from '@nodegrad/native'; // importing it registers the 'cpu' backend

export const HALVES: readonly HalfDType[] = ['bfloat16', 'float16'];
export const ROUND: Record<HalfDType, (x: number) => number> = { bfloat16: roundBFloat16, float16: roundFloat16 };

/** Tolerances of the accumulating kernels, per dtype: parity.ts's DEFAULT_TOLERANCE for the half types. */
export const TOL: Record<HalfDType, { atol: number; rtol: number }> = {
  bfloat16: { atol: 1e-2, rtol: 1.6e-2 }, float16: { atol: 1e-3, rtol: 2e-3 },
};

const cpuStatus = backends().find((b) => b.name === 'cpu');
/** Why the suites cannot run ('' when they can): no 'cpu' backend, or one without oneDNN. */
export const skipReason = !cpuStatus?.available ? ` (skipped: ${cpuStatus?.reason ?? "'cpu' not registered"})`
  : !describeBuild().features.onednn.enabled ? ' (skipped: built without oneDNN)' : '';

export const cpu = (): Backend => getBackend('cpu');
export const ts = (): Backend => getBackend('ts');

// mulberry32: a generator of our own, so the inputs never depend on the library's RNG.
export function rng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal values scaled by `scale`, from a seed. */
export function normals(n: number, seed: number, scale = 1): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));
}

/**
 * Values that reach the half types' edges: zeros of both signs, infinities, NaN, ties at 1 for
 * both types, float16's largest finite value and its overflow threshold, subnormals of both,
 * then random float32 bit patterns (every exponent) and normals across scales.
 */
export function edgeValues(n: number, seed: number): Float32Array {
  const special = [0, -0, Infinity, -Infinity, NaN, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11, 1 + 3 * 2 ** -11,
    65504, 65519.99, 65520, -65520, 2 ** -14, 2 ** -24, 3 * 2 ** -25, 2 ** -25, 2 ** -126, 2 ** -133, 3.4e38, -1e-40];
  const u = rng(seed), bits = new Uint32Array(1), f = new Float32Array(bits.buffer);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (i < special.length) out[i] = special[i]!;
    else if (i % 3 === 0) { bits[0] = Math.floor(u() * 2 ** 32); out[i] = f[0]!; }
    else out[i] = (u() * 2 - 1) * 10 ** (Math.floor(u() * 12) - 6);
  }
  return out;
}

/**
 * The value of every bit pattern of the type as float32, in bit-pattern order; NaNs as the float32
 * bits that hold their payload (sign, quiet bit and payload above float32's low 16 or 13 bits).
 */
export function everyValue(dtype: HalfDType): Float32Array {
  const f = new Float32Array(65536), u32 = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    if (dtype === 'bfloat16') { u32[h] = h << 16; continue; }
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0x1f) u32[h] = ((h & 0x8000) << 16 | 0x7f800000 | m << 13) >>> 0;
    else f[h] = e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return f;
}

/** The same float32 bits (NaN payloads included); reports the first 5 that differ, in hex. */
export function expectBits(got: Float32Array, want: Float32Array, what: string): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  expect(g.length, `${what}: length`).toBe(w.length);
  const bad: string[] = [];
  for (let i = 0; i < w.length && bad.length < 5; i++) {
    if (g[i] !== w[i]) bad.push(`[${i}] 0x${g[i]!.toString(16)} vs 0x${w[i]!.toString(16)}`);
  }
  expect(bad, what).toEqual([]);
}

/** A Raw on backend `b` holding `data` (a float32 array for the float and half types). */
export function put(b: Backend, data: ArrayLike<number>, shape: readonly number[], dtype: DType): Raw {
  const arr = dtype === 'int32' ? Int32Array.from(data) : dtype === 'float64' || dtype === 'int64' ? Float64Array.from(data)
    : Float32Array.from(data);
  return b.fromArray(arr, shape, dtype);
}

export const read = (b: Backend, r: Raw): number[] => Array.from(b.readSync(r));

/** The same host data uploaded to 'cpu' and to 'ts'. */
export interface Pair { cpu: Raw; ts: Raw }
export const pair = (data: ArrayLike<number>, shape: readonly number[], dtype: DType): Pair =>
  ({ cpu: put(cpu(), data, shape, dtype), ts: put(ts(), data, shape, dtype) });

/** Bit-identical values (Object.is: NaN equals NaN, 0 and -0 differ); reports the first 5 that differ. */
export function expectIdentical(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < 5; i++) {
    if (!Object.is(got[i], want[i])) bad.push(`[${i}] ${got[i]} vs ${want[i]}`);
  }
  expect(bad, what).toEqual([]);
}

export type Tol = { atol: number; rtol: number };

/** |got - want| <= atol + rtol |want| elementwise (NaN where NaN); reports the first 5 that differ. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < 5; i++) {
    const g = got[i]!, w = want[i]!;
    if (Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w))) continue;
    if (!(Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w))) bad.push(`[${i}] ${g} vs ${w}`);
  }
  expect(bad, what).toEqual([]);
}

type Args = (at: (p: Pair) => Raw, b: Backend) => unknown[];

/**
 * Kernel `name` on 'cpu' (or `dev`, whose Raws a Pair holds where it says cpu) and on 'ts', each
 * with its own side of the pairs `args` picks.
 */
export function runBoth(name: string, args: Args, dev: Backend = cpu()): { cpu: unknown; ts: unknown } {
  const call = (b: Backend, side: 'cpu' | 'ts') =>
    (b.kernels as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args((p) => p[side], b));
  return { cpu: call(dev, 'cpu'), ts: call(ts(), 'ts') };
}

/** The Raws of a kernel's result (a Raw, or an object of Raws) by name. */
function raws(r: unknown): [string, Raw][] {
  if (r && typeof r === 'object' && 'buf' in r) return [['', r as Raw]];
  return Object.entries(r as Record<string, Raw>);
}

/**
 * Kernel `name` on 'cpu' against 'ts' on the same inputs: every result of the same shape and
 * dtype, and bit-identical (no `tol`) or within `tol`.
 */
export function expectKernel(name: string, args: Args, tol?: Tol, dev: Backend = cpu()): void {
  const r = runBoth(name, args, dev);
  const got = raws(r.cpu), want = raws(r.ts);
  expect(got.map(([k, t]) => [k, t.dtype, t.shape]), name).toEqual(want.map(([k, t]) => [k, t.dtype, t.shape]));
  got.forEach(([k, t], i) => {
    const g = read(dev, t), w = read(ts(), want[i]![1]);
    const what = `${name}${k ? `.${k}` : ''} (${t.dtype})`;
    if (tol) expectClose(g, w, tol, what);
    else expectIdentical(g, w, what);
  });
}

/**
 * pair, expectKernel and the device itself for a device under test other than 'cpu' ('cuda-emu'):
 * suites written against 'cpu' run on it unchanged.
 */
export function helpersFor(device: string): {
  dev: () => Backend;
  pair: (data: ArrayLike<number>, shape: readonly number[], dtype: DType) => Pair;
  expectKernel: (name: string, args: Args, tol?: Tol) => void;
} {
  const dev = () => getBackend(device);
  return {
    dev,
    pair: (data, shape, dtype) => ({ cpu: put(dev(), data, shape, dtype), ts: put(ts(), data, shape, dtype) }),
    expectKernel: (name, args, tol) => expectKernel(name, args, tol, dev()),
  };
}

const emu = backends().find((b) => b.name === 'cuda-emu');
/**
 * The devices the half-type suites run on, each with why it is skipped ('' when it runs): 'cpu',
 * and 'cuda-emu', the 'cuda' kernel families compiled for the host (native/lib/emulation.ts),
 * whose half-type code is the GPU's.
 */
export const DEVICES_UNDER_TEST: readonly [string, string][] = [
  ['cpu', skipReason],
  ['cuda-emu', emu?.available ? '' : ` (skipped: ${emu?.reason ?? "'cuda-emu' not registered"})`],
];
