/**
 * The weight formula of scripts/fixtures/make_resnet_goldens.py, bit for bit: tests rebuild the
 * exact float32 tensors PyTorch used instead of committing 45-100 MB checkpoints. See the
 * script's docstring for the rules; each function below mirrors one of its functions.
 */
import { fromTypedArray, type Tensor } from '@nodegrad/autograd';

/** murmur3's 32-bit finalizer, in uint32 arithmetic. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** u in [0, 1) for elements 0..n-1 of tensor number k (exact: a uint32 over 2^32). */
export function uniform01(k: number, n: number): Float64Array {
  const seed = Math.imul(k + 1, 0x85ebca77) >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = fmix32((Math.imul(i, 0x9e3779b1) + seed) >>> 0) / 2 ** 32;
  return out;
}

/**
 * A residual branch's last BatchNorm weight (bn2 of a BasicBlock, bn3 of a Bottleneck; norm3 of a
 * pre-activation Bottleneck, the norm before its last conv).
 */
export function isLastBranchBn(name: string, names: ReadonlySet<string>): boolean {
  const m = /^(layer\d+\.\d+)\.(bn)(\d+)\.weight$/.exec(name) ?? /^(stages\.\d+\.blocks\.\d+)\.(norm)(\d+)\.weight$/.exec(name);
  return m !== null && !names.has(`${m[1]}.${m[2]}${Number(m[3]) + 1}.weight`);
}

/** The float64 value of element i before the single rounding to float32. */
function rule(name: string, shape: readonly number[], names: ReadonlySet<string>): (u: number) => number {
  if (name.endsWith('.weight') && shape.length >= 2) {
    const scale = Math.sqrt(6 / shape.slice(1).reduce((a, b) => a * b, 1));
    return (u) => (2 * u - 1) * scale;
  }
  if (name.endsWith('.weight') && isLastBranchBn(name, names)) return (u) => 0.2 * (1 + 0.1 * (2 * u - 1));
  if (name.endsWith('.weight')) return (u) => 1 + 0.1 * (2 * u - 1);
  if (name.endsWith('.bias') || name.endsWith('.running_mean')) return (u) => 0.1 * (2 * u - 1);
  if (name.endsWith('.running_var')) return (u) => 1 + 0.5 * u;
  throw new Error(`golden_weights: no formula for '${name}'`);
}

/** State-dict entry `name` (number k of `names`): float32, or the int64 counter k. */
export function formulaTensor(name: string, shape: readonly number[], k: number, names: ReadonlySet<string>): Tensor {
  if (name.endsWith('.num_batches_tracked')) return fromTypedArray(new Float64Array([k]), [], { dtype: 'int64' });
  const n = shape.reduce((a, b) => a * b, 1);
  const f = rule(name, shape, names);
  const u = uniform01(k, n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(u[i]!);
  return fromTypedArray(out, shape, { dtype: 'float32' });
}

/** A whole state dict from its [name, shape] entries in torchvision's order. */
export function formulaStateDict(entries: readonly (readonly [string, readonly number[]])[]): Record<string, Tensor> {
  const names = new Set(entries.map(([n]) => n));
  const out: Record<string, Tensor> = {};
  entries.forEach(([name, shape], k) => { out[name] = formulaTensor(name, shape, k, names); });
  return out;
}

/** The input image: 2u - 1 for tensor number `key`, float32. */
export function formulaInput(key: number, shape: readonly number[]): Tensor {
  const u = uniform01(key, shape.reduce((a, b) => a * b, 1));
  return fromTypedArray(Float32Array.from(u, (v) => 2 * v - 1), shape, { dtype: 'float32' });
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let j = 0; j < 8; j++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as zlib computes it (the reflected 0xEDB88320 polynomial). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** CRC-32 of a tensor's little-endian bytes as PyTorch stores them: float32, or int64 for counters. */
export function tensorCrc32(t: Tensor): number {
  const data = t.toTypedArray();
  if (t.dtype === 'int64') {
    const v = new DataView(new ArrayBuffer(8 * data.length));
    data.forEach((x, i) => v.setBigInt64(8 * i, BigInt(x), true));
    return crc32(new Uint8Array(v.buffer));
  }
  if (t.dtype !== 'float32') throw new Error(`tensorCrc32: expected float32 or int64, got ${t.dtype}`);
  if (LITTLE_ENDIAN) return crc32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const v = new DataView(new ArrayBuffer(4 * data.length));
  data.forEach((x, i) => v.setFloat32(4 * i, x, true));
  return crc32(new Uint8Array(v.buffer));
}
