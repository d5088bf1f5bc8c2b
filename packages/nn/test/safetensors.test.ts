/**
 * safetensors checkpoints: agreement with the official writer (a file written by the Python
 * `safetensors` package, scripts/fixtures/make_safetensors_fixture.py), F16/BF16 rounding,
 * round trips of every dtype, atomic saves, and a clear error for each kind of malformed file.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fromTypedArray, manualSeed, randn, tensor, zeros, type Tensor } from '@nodegrad/autograd';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, SafetensorsError, Sequential, loadSafetensors, parseSafetensors, saveSafetensors, serializeSafetensors,
} from '@nodegrad/nn';
import { floatBitsToBFloat16, floatBitsToHalf } from '../src/safetensors/dtypes.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const REF = new Uint8Array(readFileSync(fixture('reference.safetensors')));
interface RefTensor { dtype: string; shape: number[]; data: (number | 'inf' | '-inf')[] }
const REF_JSON = JSON.parse(readFileSync(fixture('reference.json'), 'utf8')) as {
  metadata: Record<string, string>; tensors: Record<string, RefTensor>;
};
const num = (v: number | string) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : (v as number));

/** A file from a header (JSON text or object) and a data buffer; `n` overrides the length field. */
function file(header: string | object, data: Uint8Array | number = 0, n?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const f32 = (shape: number[], begin = 0) => ({ dtype: 'F32', shape, data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)] });
const f32Bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;

/** Where entry `name` of a parsed header sits in `bytes`. */
function rawBytes(bytes: Uint8Array, name: string): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  const [b, e] = header[name]!.data_offsets;
  return bytes.subarray(8 + n + b, 8 + n + e);
}

describe('the reference file written by the official safetensors package', () => {
  const { tensors, metadata } = parseSafetensors(REF);

  it('parses every tensor with the values torch wrote', () => {
    expect(metadata).toEqual(REF_JSON.metadata);
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(REF_JSON.tensors).sort());
    const loadedAs: Record<string, string> = { float32: 'float32', float16: 'float16', bfloat16: 'bfloat16', float64: 'float64', int64: 'int64', int32: 'int32' };
    for (const [name, ref] of Object.entries(REF_JSON.tensors)) {
      const t = tensors[name]!;
      expect(t.dtype, name).toBe(loadedAs[ref.dtype]);
      expect([...t.shape], name).toEqual(ref.shape);
      // Exact: F16/BF16 values are float32 values, and JSON holds the doubles torch read.
      expect(Array.from(t.toTypedArray()), name).toEqual(ref.data.map(num));
    }
    expect(Object.is(tensors['round.f16']!.toTypedArray()[1], -0)).toBe(true);
  });

  it('is reproduced byte for byte by our writer (dtype order, UTF-8 name order, escaping, padding)', () => {
    const storeAs = (name: string) => (name === 'round.f16' ? 'F16' : name === 'round.bf16' ? 'BF16' : undefined);
    const ours = serializeSafetensors(tensors, metadata, { storeAs });
    expect(Buffer.from(ours).equals(Buffer.from(REF))).toBe(true);
  });

  it('our F16 and BF16 rounding of float32 matches torch bit for bit', () => {
    const src = tensors['round.f32']!;
    const h = serializeSafetensors({ x: src }, null, { storeAs: 'F16' });
    const b = serializeSafetensors({ x: src }, null, { storeAs: 'BF16' });
    expect(Buffer.from(rawBytes(h, 'x')).equals(Buffer.from(rawBytes(REF, 'round.f16')))).toBe(true);
    expect(Buffer.from(rawBytes(b, 'x')).equals(Buffer.from(rawBytes(REF, 'round.bf16')))).toBe(true);
  });
});

describe('parsing a Node Buffer', () => {
  it('reads tensors from a Buffer that is a view into a larger pool (as small readFileSync results are)', () => {
    const bytes = serializeSafetensors({ a: tensor([1.5, -2, 3], { dtype: 'float32' }), n: tensor([7, 2 ** 40], { dtype: 'int64' }) });
    // Buffer.from(array) of a small size lands in Node's shared 8 KiB pool at a nonzero offset.
    const pooled = Buffer.concat([Buffer.alloc(3), Buffer.from(bytes)]).subarray(3);
    expect(pooled.byteOffset).toBeGreaterThan(0);
    const { tensors } = parseSafetensors(pooled);
    expect(Array.from(tensors.a!.toTypedArray())).toEqual([1.5, -2, 3]);
    expect(Array.from(tensors.n!.toTypedArray())).toEqual([7, 2 ** 40]);
  });
});

describe('F16 and BF16 conversion', () => {
  it('rounds hand-computed cases to nearest even, with overflow, subnormals and NaN as c10', () => {
    const cases: [number, number, number][] = [ // value, F16 bits, BF16 bits
      [1, 0x3c00, 0x3f80], [-2, 0xc000, 0xc000], [-0, 0x8000, 0x8000],
      [1 + 2 ** -11, 0x3c00, 0x3f80], [1 + 3 * 2 ** -11, 0x3c02, 0x3f80], // F16 ties to even
      [1 + 2 ** -8, 0x3c04, 0x3f80], [1 + 3 * 2 ** -8, 0x3c0c, 0x3f82], // BF16 ties to even
      [65504, 0x7bff, 0x4780], [65519.99, 0x7bff, 0x4780], [65520, 0x7c00, 0x4780],
      [2 ** -24, 0x0001, 0x3380], [2 ** -25, 0x0000, 0x3300], [3 * 2 ** -25, 0x0002, 0x33c0],
      [2 ** -14, 0x0400, 0x3880], [2 ** -14 - 2 ** -25, 0x0400, 0x3880], // rounds up to the smallest normal
      [Infinity, 0x7c00, 0x7f80], [-Infinity, 0xfc00, 0xff80], [3.4e38, 0x7c00, 0x7f80],
      [NaN, 0x7e00, 0x7fc0], // BF16 NaN as c10::BFloat16's scalar path (torch's vectorised path gives 0xffff)
    ];
    for (const [v, h, b] of cases) {
      const bits = f32Bits(v);
      expect(floatBitsToHalf(bits), `F16(${v})`).toBe(h);
      expect(floatBitsToBFloat16(bits), `BF16(${v})`).toBe(b);
    }
    expect(floatBitsToHalf(0xffc00000)).toBe(0xfe00); // negative NaN keeps its sign in F16
  });

  it('matches a nearest-neighbour search over all finite halves on random float32', () => {
    // Every finite half, ascending, from the IEEE formula in float64 (independent of the code).
    const halves: [number, number][] = [];
    for (let e = 0; e < 31; e++) {
      for (let m = 0; m < 1024; m++) halves.push([e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15), (e << 10) | m]);
    }
    manualSeed(1);
    const xs = randn([4000], { dtype: 'float64' }).toTypedArray();
    for (let i = 0; i < xs.length; i++) {
      const x = Math.fround(Math.abs(xs[i]!) * 2 ** ((i % 40) - 26));
      let lo = 0;
      let hi = halves.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (halves[mid]![0] <= x) lo = mid; else hi = mid; }
      const [a, ab] = halves[lo]!;
      const [b, bb] = halves[hi]!;
      let want: number;
      if (x >= 65520) want = 0x7c00;
      else if (x - a < b - x) want = ab;
      else if (x - a > b - x) want = bb;
      else want = ab & 1 ? bb : ab;
      expect(floatBitsToHalf(f32Bits(x)), `F16(${x})`).toBe(want);
    }
  });

  it('loads every F16 and BF16 bit pattern as the value the formula gives, and stores it back unchanged', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    const header = { h: { dtype: 'F16', shape: [65536], data_offsets: [0, 131072] }, b: { dtype: 'BF16', shape: [65536], data_offsets: [131072, 262144] } };
    const { tensors } = parseSafetensors(file(header, Buffer.concat([bytes, bytes])));
    const h = tensors.h!.toTypedArray();
    const b = tensors.b!.toTypedArray();
    const hBits = new Uint32Array(h.buffer, h.byteOffset, h.length);
    const bBits = new Uint32Array(b.buffer, b.byteOffset, b.length);
    const wrong: string[] = []; // one expect per pattern would take seconds
    for (let i = 0; i < 65536; i++) {
      const e = (i >> 10) & 0x1f;
      const m = i & 0x3ff;
      const mag = e === 31 ? (m ? NaN : Infinity) : e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
      const halfNaN = Number.isNaN(mag);
      const bfNaN = (i & 0x7fff) > 0x7f80;
      // NaN payloads survive loading: F16's moves up 13 bits, BF16's 16.
      if (halfNaN ? hBits[i] !== ((i & 0x8000) << 16 | 0x7f800000 | m << 13) >>> 0 : !Object.is(h[i], i & 0x8000 ? -mag : mag)) wrong.push(`F16 load ${i}`);
      if (bBits[i] !== i << 16 >>> 0) wrong.push(`BF16 load ${i}`);
      if (floatBitsToHalf(hBits[i]!) !== (halfNaN ? (i & 0x8000) | 0x7e00 : i)) wrong.push(`F16 store ${i}`);
      if (floatBitsToBFloat16(bBits[i]!) !== (bfNaN ? 0x7fc0 : i)) wrong.push(`BF16 store ${i}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('round trips', () => {
  it('keeps every dtype, 0-d and zero-size shapes, and metadata', () => {
    const ts: Record<string, Tensor> = {
      a: tensor([[1.5, -2, 3e-8], [Infinity, -0, 7]]),
      b: tensor(Math.PI, { dtype: 'float64' }),
      counter: tensor(12345, { dtype: 'int64' }),
      i64: tensor([0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), -(2 ** 32), 2 ** 32 + 5], { dtype: 'int64' }),
      i32: tensor([[-(2 ** 31), 2 ** 31 - 1], [0, -7]], { dtype: 'int32' }),
      empty: zeros([0, 5]),
      emptyInt: zeros([3, 0], { dtype: 'int64' }),
    };
    const metadata = { format: 'pt', epoch: '3', 'ünï "q"': 'line\nbreak', '': '' };
    const { tensors, metadata: md } = parseSafetensors(serializeSafetensors(ts, metadata));
    expect(md).toEqual(metadata);
    for (const [k, t] of Object.entries(ts)) {
      const u = tensors[k]!;
      expect([u.dtype, ...u.shape], k).toEqual([t.dtype, ...t.shape]);
      expect(Array.from(u.toTypedArray()), k).toEqual(Array.from(t.toTypedArray()));
    }
    expect(Object.is(tensors.a!.toTypedArray()[4], -0)).toBe(true);
  });

  it('distinguishes no metadata (null) from empty metadata, and lays the data out 8-aligned', () => {
    const x = { x: tensor([1, 2, 3]) };
    expect(parseSafetensors(serializeSafetensors(x)).metadata).toBeNull();
    expect(parseSafetensors(serializeSafetensors(x, {})).metadata).toEqual({});
    for (const md of [undefined, { k: 'v' }, { long: 'x'.repeat(13) }] as (Record<string, string> | undefined)[]) {
      const bytes = serializeSafetensors(x, md);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      expect(bytes.length).toBe(8 + n + 12);
    }
  });

  it('stores float tensors as F16/BF16 on request, exactly when the values fit', () => {
    const x = tensor([1, -0.5, 65504, 2 ** -24]);
    const y = tensor([1, -0.5, 2 ** 100, 3], { dtype: 'float64' });
    const { tensors } = parseSafetensors(serializeSafetensors({ x, y, n: tensor([1], { dtype: 'int64' }) }, null,
      { storeAs: (name) => (name === 'x' ? 'F16' : name === 'y' ? 'BF16' : undefined) }));
    expect(Array.from(tensors.x!.toTypedArray())).toEqual([1, -0.5, 65504, 2 ** -24]);
    expect(Array.from(tensors.y!.toTypedArray())).toEqual([1, -0.5, 2 ** 100, 3]);
    expect([tensors.x!.dtype, tensors.y!.dtype, tensors.n!.dtype]).toEqual(['float16', 'bfloat16', 'int64']);
    // A half tensor stores as its own type by default, and loads back as it.
    const h = parseSafetensors(serializeSafetensors({ h: tensor([0.1, 3], { dtype: 'bfloat16' }) })).tensors.h!;
    expect([h.dtype, ...h.toTypedArray()]).toEqual(['bfloat16', 0.10009765625, 3]);
    expect(() => serializeSafetensors({ n: tensor([1], { dtype: 'int32' }) }, null, { storeAs: 'F16' }))
      .toThrow(/"n" has dtype int32; only float tensors can be stored as F16/);
  });

  it('keeps names that are Object.prototype keys as plain data', () => {
    const ts = record([['__proto__', tensor([1])], ['constructor', tensor([2])], ['toString', tensor([3])]]);
    const { tensors } = parseSafetensors(serializeSafetensors(ts));
    expect(Object.keys(tensors).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(tensors, '__proto__')!.value.item()).toBe(1);
  });

  it('refuses names and metadata that cannot be written', () => {
    expect(() => serializeSafetensors({ __metadata__: tensor([1]) })).toThrow(/'__metadata__' is reserved/);
    expect(() => serializeSafetensors({ 'bad\uD800': tensor([1]) })).toThrow(/tensor name "bad\\ud800" is not valid Unicode/);
    expect(() => serializeSafetensors({ a: tensor([1]) }, { k: 5 as unknown as string })).toThrow(/metadata value for "k" must be a string/);
    expect(() => serializeSafetensors({ a: [1, 2] as unknown as Tensor })).toThrow(/"a" is not a Tensor/);
    expect(() => serializeSafetensors({ a: tensor([2 ** 53], { dtype: 'int64' }) })).toThrow(/int64 element 0 is 9007199254740992/);
  });

  it('loads onto the requested device', () => {
    const { tensors } = parseSafetensors(REF, { device: 'ts' });
    expect(tensors['conv.weight']!.device).toBe('ts');
    expect(() => parseSafetensors(REF, { device: 'nope' })).toThrow(/nope/);
  });
});

function record<T>(pairs: [string, T][]): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of pairs) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

class Block extends Module {
  declare weight: Tensor;
  declare running_mean: Tensor;
  declare num_batches_tracked: Tensor;
  constructor(n: number) {
    super();
    this.registerParameter('weight', randn([n, n]));
    this.registerBuffer('running_mean', randn([n], { dtype: 'float64' }));
    this.registerBuffer('num_batches_tracked', tensor(0, { dtype: 'int64' }));
  }
  forward(x: Tensor): Tensor { return x; }
}

class Net extends Module {
  constructor() {
    super();
    this.registerModule('layer1', new Block(3));
    this.registerModule('fc', new Block(2));
    this.registerParameter('bias', randn([4]));
  }
  forward(x: Tensor): Tensor { return x; }
}

describe('files', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'nodegrad-st-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('saves a model stateDict and loads it into a fresh model', async () => {
    manualSeed(0);
    const a = new Net();
    (a as any).layer1.num_batches_tracked = tensor(42, { dtype: 'int64' });
    const path = join(dir, 'net.safetensors');
    await saveSafetensors(path, a.stateDict(), { arch: 'Net' });
    const b = new Net();
    const { tensors, metadata } = await loadSafetensors(path);
    expect(metadata).toEqual({ arch: 'Net' });
    expect(b.loadStateDict(tensors)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const sa = a.stateDict();
    for (const [k, t] of Object.entries(b.stateDict())) {
      expect([t.dtype, ...t.shape], k).toEqual([sa[k]!.dtype, ...sa[k]!.shape]);
      expect(Array.from(t.toTypedArray()), k).toEqual(Array.from(sa[k]!.toTypedArray()));
    }
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(sa).sort());
    expect((b as any).layer1.num_batches_tracked.item()).toBe(42);
    // The file on disk is exactly what serializeSafetensors gives, with no temp files beside it.
    expect((await readFile(path)).equals(Buffer.from(serializeSafetensors(a.stateDict(), { arch: 'Net' })))).toBe(true);
    expect(await readdir(dir)).toEqual(['net.safetensors']);
  });

  it('loads files whose data spans several reads (tensors are read in chunks of up to 16 MiB), in header order', async () => {
    // 7 MiB tensors, smaller ones between them, so chunks end at different tensors; one larger than a chunk.
    const sizes = { b: 7 << 18, a: 3, d: 7 << 18, c: 5, e: 17 << 18, f: 1 };
    const dict: Record<string, Tensor> = {};
    for (const [k, n] of Object.entries(sizes)) dict[k] = fromTypedArray(Float32Array.from({ length: n }, (_, i) => i * 0.5 + k.charCodeAt(0)), [n]);
    const path = join(dir, 'big.safetensors');
    await saveSafetensors(path, dict);
    const { tensors } = await loadSafetensors(path);
    expect(Object.keys(tensors)).toEqual(Object.keys(parseSafetensors(new Uint8Array(readFileSync(path))).tensors));
    for (const [k, t] of Object.entries(dict)) expect(Array.from(tensors[k]!.toTypedArray()), k).toEqual(Array.from(t.toTypedArray()));
  });

  it('round-trips a layer model: running statistics, num_batches_tracked (I64) and eval outputs', async () => {
    const make = () => new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(),
      new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 2));
    manualSeed(1);
    const a = make();
    const x = randn([2, 3, 5, 5]);
    a.call(x); // a training-mode forward moves running_mean/var and counts num_batches_tracked
    a.call(x);
    const path = join(dir, 'seq.safetensors');
    await saveSafetensors(path, a.stateDict());
    manualSeed(2);
    const b = make();
    b.loadStateDict((await loadSafetensors(path)).tensors);
    expect((b as any).at(1).num_batches_tracked.dtype).toBe('int64');
    expect((b as any).at(1).num_batches_tracked.item()).toBe(2);
    const ya = (a.eval().call(x) as Tensor).toTypedArray();
    expect(Array.from((b.eval().call(x) as Tensor).toTypedArray())).toEqual(Array.from(ya));
  });

  it('a save that fails midway leaves the previous file byte-identical and no temp file', async () => {
    const path = join(dir, 'ckpt.safetensors');
    await writeFile(path, REF);
    const bad = zeros([1000]);
    bad.toTypedArray = () => { throw new Error('device lost'); };
    // 'a' (F64) is written first, then 'b' (F32) fails after header and data went to the temp file.
    const tensors = { a: randn([100000], { dtype: 'float64' }), b: bad, c: zeros([3]) };
    await expect(saveSafetensors(path, tensors)).rejects.toThrow('device lost');
    expect((await readFile(path)).equals(Buffer.from(REF))).toBe(true);
    expect(await readdir(dir)).toEqual(['ckpt.safetensors']);
  });

  it('a failing rename (the target is a directory) removes the temp file', async () => {
    const path = join(dir, 'taken');
    await mkdir(path);
    await writeFile(join(path, 'inside'), 'x');
    await expect(saveSafetensors(path, { a: zeros([2]) })).rejects.toThrow(/EISDIR|EEXIST|ENOTEMPTY|EPERM/);
    expect(await readdir(dir)).toEqual(['taken']);
    expect(await readdir(path)).toEqual(['inside']);
  });

  it('a missing directory is an error that creates nothing', async () => {
    await expect(saveSafetensors(join(dir, 'no', 'x.safetensors'), { a: zeros([2]) })).rejects.toThrow(/ENOENT/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('concurrent saves to one path leave one complete file', async () => {
    const path = join(dir, 'c.safetensors');
    const versions = [1, 2, 3, 4].map((v) => ({ w: fromTypedArray(new Float32Array(50000).fill(v), [50000]) }));
    await Promise.all(versions.map((t) => saveSafetensors(path, t)));
    const w = (await loadSafetensors(path)).tensors.w!.toTypedArray();
    expect([1, 2, 3, 4]).toContain(w[0]);
    expect(w.every((x) => x === w[0])).toBe(true);
    expect(await readdir(dir)).toEqual(['c.safetensors']);
  });

  it('overwrites an existing file with the new contents', async () => {
    const path = join(dir, 'o.safetensors');
    await saveSafetensors(path, { a: zeros([1000]) });
    await saveSafetensors(path, { b: tensor([7]) }, { v: '2' });
    expect((await stat(path)).size).toBe(serializeSafetensors({ b: tensor([7]) }, { v: '2' }).length);
    const { tensors, metadata } = await loadSafetensors(path);
    expect([Object.keys(tensors), metadata, tensors.b!.item()]).toEqual([['b'], { v: '2' }, 7]);
  });

  it('load errors name the file; truncated and empty files are refused before reading data', async () => {
    const path = join(dir, 't.safetensors');
    await writeFile(path, REF.subarray(0, REF.length - 1));
    await expect(loadSafetensors(path)).rejects.toThrow(/loadSafetensors\(".*t\.safetensors"\): tensor "round.f16": data_offsets \[1050, 1304\] run past the end of the 1303-byte data buffer/);
    await writeFile(path, new Uint8Array(0));
    await expect(loadSafetensors(path)).rejects.toThrow(/file is 0 bytes, too short/);
    await writeFile(path, REF.subarray(0, 500));
    await expect(loadSafetensors(path)).rejects.toThrow(/header length 976 runs past the end of the 500-byte file/);
    await expect(loadSafetensors(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });

  it('loads the reference file from disk as parseSafetensors does', async () => {
    const path = join(dir, 'r.safetensors');
    await writeFile(path, REF);
    const { tensors, metadata } = await loadSafetensors(path);
    const mem = parseSafetensors(REF);
    expect(metadata).toEqual(mem.metadata);
    expect(Object.keys(tensors)).toEqual(Object.keys(mem.tensors));
    for (const k of Object.keys(tensors)) expect(tensors[k]!.toArray()).toEqual(mem.tensors[k]!.toArray());
  });
});

describe('malformed files: each a SafetensorsError naming the problem', () => {
  const ok = { a: f32([2]), b: f32([1], 8) };
  const bad: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /file is 5 bytes, too short for the 8-byte header length/],
    ['header length beyond the file', file(ok, 12, 200n), /header length 200 runs past the end of the \d+-byte file/],
    ['header length over the limit', file(ok, 12, 100_000_001n), /header length 100000001 is over the 100000000-byte limit/],
    ['header length 2^64-1', file(ok, 12, 2n ** 64n - 1n), /header length 18446744073709551615 is over/],
    ['empty header', file('', 0), /header does not begin with '\{'/],
    ['header not an object', file('[1]', 0), /header does not begin with '\{'/],
    ['BOM before the header', file('\uFEFF{}', 0), /header does not begin with '\{'/],
    ['bad UTF-8', (() => { const f = file('{"a?":1}'); f[11] = 0xff; return f; })(), /header is not valid UTF-8/],
    ['bad JSON', file('{"a":{"dtype":"F32",}}'), /header is not valid JSON: expected a string key at character 20/],
    ['unterminated JSON', file('{"a":'), /header is not valid JSON: unexpected end of JSON/],
    ['trailing garbage', file('{} x'), /header is not valid JSON: unexpected data after the JSON value/],
    ['NUL padding', file('{}\0\0'), /unexpected data after the JSON value/],
    ['duplicate keys', file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), /duplicate key "a"/],
    ['lone surrogate escape', file('{"\\ud800":1}'), /lone high surrogate/],
    ['entry not an object', file({ a: 5 }), /tensor "a": entry must be an object, got the number 5/],
    ['missing dtype', file({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "a": missing field dtype/],
    ['missing shape', file({ a: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor "a": missing field shape/],
    ['missing data_offsets', file({ a: { dtype: 'F32', shape: [1] } }, 4), /tensor "a": missing field data_offsets/],
    ['dtype not a string', file({ a: { dtype: 32, shape: [1], data_offsets: [0, 4] } }, 4), /dtype must be a string, got the number 32/],
    ['unknown dtype', file({ a: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4), /tensor "a": unknown dtype "F33"/],
    ['prototype key as dtype', file({ a: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "constructor"/],
    ['dtype nodegrad cannot load', file({ m: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 4), /tensor "m": dtype U8 is valid safetensors but nodegrad does not load it/],
    ['negative dim', file({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /shape\[0\] must be a non-negative integer, got the number -1/],
    ['fractional dim', file('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', 4), /shape\[0\] must be a non-negative integer, got the non-integer 1.5/],
    ['exponent dim', file('{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', 4), /got the non-integer 1e0/],
    ['string dim', file({ a: { dtype: 'F32', shape: ['1'], data_offsets: [0, 4] } }, 4), /shape\[0\] must be a non-negative integer, got a string/],
    ['shape not an array', file({ a: { dtype: 'F32', shape: 4, data_offsets: [0, 4] } }, 4), /shape must be an array/],
    ['dim beyond 2^53', file('{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}', 4), /integer 18446744073709551616 is beyond 2\^53/],
    ['element count overflow', file({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30, 0], data_offsets: [0, 0] } }), /has more than 2\^53 elements/],
    ['byte count overflow', file({ a: { dtype: 'F64', shape: [2 ** 50], data_offsets: [0, 0] } }), /is too large for dtype F64/],
    ['three offsets', file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, 4), /data_offsets must be \[begin, end\], got 3 numbers/],
    ['reversed offsets', file({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 4), /tensor "a": data_offsets \[4, 0\] are reversed/],
    ['offsets past the buffer', file({ a: f32([2]) }, 4), /data_offsets \[0, 8\] run past the end of the 4-byte data buffer/],
    ['overlapping tensors', file({ a: f32([2]), b: f32([2], 4) }, 12), /tensor "b" at data_offsets \[4, 12\] overlaps tensor "a" at \[0, 8\]/],
    ['same offsets twice', file({ a: f32([1]), b: f32([1]) }, 4), /overlaps tensor "a"/],
    ['a gap', file({ a: f32([1]), b: f32([1], 8) }, 12), /data bytes \[4, 8\) belong to no tensor \(a gap before tensor "b"\)/],
    ['uncovered tail', file({ a: f32([1]) }, 8), /data bytes \[4, 8\) at the end of the buffer belong to no tensor/],
    ['byte length mismatch', file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /data_offsets \[0, 8\] hold 8 bytes, but F32 x shape \[3\] needs 12/],
    ['sub-byte dtype not filling bytes', file({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 1] } }, 1), /3 elements of F4 do not fill whole bytes/],
    ['metadata not string to string', file({ __metadata__: { epoch: 3 } }), /__metadata__ must map strings to strings, but "epoch" is the number 3/],
    ['metadata an array', file({ __metadata__: ['a'] }), /__metadata__ must be an object of strings, got an array/],
    ['deep nesting', file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":${'['.repeat(100000)}}}`, 4), /nesting deeper than 128 levels/],
    ['I64 beyond 2^53', file({ n: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(new BigInt64Array([2n ** 60n]).buffer)), /tensor "n": I64 element 0 is beyond 2\^53/],
    ['huge name in a message', file({ ['x'.repeat(10000)]: 5 }), /tensor "x{77}\.\.\.": entry must be an object/],
  ];
  it.each(bad)('%s', (_, bytes, message) => {
    let err: unknown;
    try { parseSafetensors(bytes); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as Error).message).toMatch(/^parseSafetensors: /);
    expect((err as Error).message).toMatch(message);
  });

  it('accepts what the reference reader accepts: any offset order, unknown fields, null metadata, unpadded headers', () => {
    const d = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    const h = '{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12],"extra":{"k":[1.5,null,true]}},"__metadata__":null,\n "a":{"shape":[2],"data_offsets":[0,8],"dtype":"F32"},"z":{"dtype":"F32","shape":[0,-0],"data_offsets":[8,8]}}  \t';
    const { tensors, metadata } = parseSafetensors(file(h, d));
    expect(metadata).toBeNull();
    expect(Object.keys(tensors)).toEqual(['a', 'z', 'b']);
    expect([tensors.a!.toArray(), tensors.b!.toArray(), tensors.z!.shape]).toEqual([[1, 2], [3], [0, 0]]);
    const escaped = parseSafetensors(file('{"\\u00fc\\ud835\\udefc\\n":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}', 4));
    expect(Object.keys(escaped.tensors)).toEqual(['ü\u{1d6fc}\n']);
  });
});
