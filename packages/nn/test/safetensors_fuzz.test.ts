/**
 * Fuzzing the safetensors reader: thousands of corrupted files derived from valid ones (byte
 * flips in the length and the header, truncations, rewritten length fields, and mutations of the
 * header JSON: offsets, shapes, dtypes, duplicated keys, huge numbers, wrong types). Each parse
 * must either throw a SafetensorsError (never a RangeError/TypeError from a typed array, a stack
 * overflow or a hang) or return tensors that are self-consistent and survive a round trip.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualSeed, numel, randn, tensor, zeros, type Tensor } from '@nodegrad/autograd';
import { SafetensorsError, loadSafetensors, parseSafetensors, serializeSafetensors } from '@nodegrad/nn';

/** mulberry32: a small seeded generator, so every run fuzzes the same files. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REF = new Uint8Array(readFileSync(new URL('./fixtures/reference.safetensors', import.meta.url)));

function bases(): Uint8Array[] {
  manualSeed(3);
  return [
    REF,
    serializeSafetensors({ w: randn([3, 4]), b: randn([4], { dtype: 'float64' }), n: tensor(5, { dtype: 'int64' }) }, { epoch: '1' }),
    serializeSafetensors({ h: randn([7]), g: randn([2, 2]), e: zeros([0, 2]), s: tensor(1) }, null,
      { storeAs: (name) => (name === 'h' ? 'F16' : name === 'g' ? 'BF16' : undefined) }),
    serializeSafetensors({ i: tensor([[1, -2], [3, 4]], { dtype: 'int32' }) }, {}),
  ];
}

interface Split { n: number; header: string; data: Uint8Array }

function split(bytes: Uint8Array): Split {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, header: new TextDecoder().decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
}

function join8(header: string, data: Uint8Array, n?: bigint): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const DTYPES = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F4', 'C64', 'F8_E4M3', 'f32', 'F33', '', 'constructor'];
const NUMBERS = [0, 1, 2, 3, 4, 7, 8, 16, -1, -8, 1.5, 1e300, 2 ** 53, 2 ** 53 + 2, 2 ** 64, -(2 ** 63), 4294967296];

/** Mutations of the header JSON, re-encoded with a correct length field. */
function mutateJson(s: Split, r: () => number): Uint8Array {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const obj = JSON.parse(s.header) as Record<string, any>;
  const names = Object.keys(obj).filter((k) => k !== '__metadata__');
  const name = pick(names);
  const e = obj[name];
  let text: string | null = null;
  switch (Math.floor(r() * 12)) {
    case 0: e.data_offsets[Math.floor(r() * 2)] += pick([-8, -4, -2, -1, 1, 2, 4, 8]); break;
    case 1: e.data_offsets[Math.floor(r() * 2)] = pick(NUMBERS); break;
    case 2: e.data_offsets = pick([[], [0], [0, 4, 8], 'x', null, e.data_offsets.slice().reverse()]); break;
    case 3: e.shape = e.shape.length && r() < 0.7 ? e.shape.map((d: number) => (r() < 0.5 ? pick(NUMBERS) : d)) : [pick(NUMBERS)]; break;
    case 4: e.shape = pick([[], [0], null, 5, ['1'], e.shape.concat([1]), e.shape.concat([2])]); break;
    case 5: e.dtype = pick(DTYPES); break;
    case 6: delete e[pick(['dtype', 'shape', 'data_offsets'])]; break;
    case 7: obj[name] = pick([5, 'x', null, [], true, { ...e, extra: [1, { a: null }] }]); break;
    case 8: obj.__metadata__ = pick([{ k: 1 }, { k: 'v' }, [], 'x', null, { a: 'b', c: { d: 'e' } }]); break;
    case 9: { // a duplicated key, made in the text since objects cannot hold one
      const entry = JSON.stringify(e);
      text = s.header.trimEnd().replace(/\}$/, `,${JSON.stringify(name)}:${entry}}`);
      break;
    }
    case 10: { // a huge or odd number spliced in as text
      text = s.header.replace(/\d+/, pick(['18446744073709551616', '1e3', '-0', '00', '9'.repeat(400), '1.0']));
      break;
    }
    default: { // the entry moved under a new name, possibly a prototype key
      obj[pick(['__proto__', 'constructor', name + 'x', '\u{1d6fc}'])] = e;
      if (r() < 0.5) delete obj[name];
    }
  }
  return join8(text ?? JSON.stringify(obj), s.data);
}

/** Raw corruptions: byte flips (length field, header or data), truncation, bad lengths, extra or missing data. */
function mutateBytes(bytes: Uint8Array, s: Split, r: () => number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  switch (Math.floor(r() * 7)) {
    case 0: for (let k = 1 + Math.floor(r() * 4); k > 0; k--) out[8 + Math.floor(r() * s.n)] ^= 1 << Math.floor(r() * 8); return out;
    case 1: out[Math.floor(r() * 8)] ^= 1 << Math.floor(r() * 8); return out;
    case 2: return out.subarray(0, Math.floor(r() * out.length));
    case 3: dv.setBigUint64(0, BigInt(Math.max(0, s.n + Math.floor(r() * 33) - 16)), true); return out;
    case 4: dv.setBigUint64(0, BigInt.asUintN(64, BigInt(Math.floor(r() * 2 ** 32)) << BigInt(Math.floor(r() * 33))), true); return out;
    case 5: // data bytes: any value is a valid float, but an I64 may leave nodegrad's exact range
      if (s.data.length) out[8 + s.n + Math.floor(r() * s.data.length)] ^= 1 << Math.floor(r() * 8);
      return out;
    default: return r() < 0.5 ? join8(s.header, new Uint8Array([...s.data, 0, 0, 0, 0])) : out.subarray(0, out.length - 1 - Math.floor(r() * 4));
  }
}

/** A parsed result must be self-consistent and come back unchanged through the writer. */
function checkConsistent(bytes: Uint8Array, tensors: Record<string, Tensor>): void {
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true)))));
  let covered = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const info = Object.getOwnPropertyDescriptor(header, name)!.value;
    expect([...t.shape]).toEqual(info.shape);
    expect(t.toTypedArray().length).toBe(numel(t.shape));
    covered += info.data_offsets[1] - info.data_offsets[0];
  }
  expect(8 + split(bytes).n + covered).toBe(bytes.length);
  const storeAs = (name: string) => {
    const d = Object.getOwnPropertyDescriptor(header, name)!.value.dtype;
    return d === 'F16' || d === 'BF16' ? d : undefined;
  };
  const again = parseSafetensors(serializeSafetensors(tensors, null, { storeAs })).tensors;
  expect(Object.keys(again).sort()).toEqual(Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const a = Array.from(t.toTypedArray());
    const b = Array.from(Object.getOwnPropertyDescriptor(again, name)!.value.toTypedArray() as ArrayLike<number>);
    expect(b.map((x, i) => Object.is(x, a[i]) || (Number.isNaN(x) && Number.isNaN(a[i])))).not.toContain(false);
  }
}

function outcome(bytes: Uint8Array): { ok: true; tensors: Record<string, Tensor> } | { ok: false; message: string } {
  try {
    return { ok: true, tensors: parseSafetensors(bytes).tensors };
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw new Error(`not a SafetensorsError: ${String(e)}`, { cause: e });
    return { ok: false, message: e.message };
  }
}

describe('safetensors fuzz', () => {
  it('3000 corrupted files: a SafetensorsError or a consistent result, never a crash or a hang', () => {
    const r = rng(20240611);
    const files = bases().map((b) => ({ bytes: b, s: split(b) }));
    const stats = { json: [0, 0], bytes: [0, 0] };
    const t0 = performance.now();
    for (let i = 0; i < 3000; i++) {
      const { bytes, s } = files[i % files.length]!;
      const kind = r() < 0.5 ? 'json' : 'bytes';
      const f = kind === 'json' ? mutateJson(s, r) : mutateBytes(bytes, s, r);
      const t = performance.now();
      const res = outcome(f);
      expect(performance.now() - t, `case ${i}`).toBeLessThan(200);
      stats[kind][res.ok ? 0 : 1]!++;
      if (res.ok) checkConsistent(f, res.tensors);
    }
    // Both outcomes occur for both kinds of mutation, so neither check above is vacuous.
    expect(Math.min(...stats.json, ...stats.bytes)).toBeGreaterThan(20);
    expect(performance.now() - t0).toBeLessThan(10_000);
  }, 20_000);

  it('loadSafetensors agrees with parseSafetensors on corrupted files on disk', async () => {
    const r = rng(7);
    const dir = await mkdtemp(join(tmpdir(), 'nodegrad-stfuzz-'));
    try {
      const files = bases().map((b) => ({ bytes: b, s: split(b) }));
      for (let i = 0; i < 120; i++) {
        const { bytes, s } = files[i % files.length]!;
        const f = i % 2 ? mutateJson(s, r) : mutateBytes(bytes, s, r);
        const path = join(dir, `f${i}`);
        await writeFile(path, f);
        const mem = outcome(f);
        let disk: typeof mem;
        try {
          disk = { ok: true, tensors: (await loadSafetensors(path)).tensors };
        } catch (e) {
          expect(e).toBeInstanceOf(SafetensorsError);
          disk = { ok: false, message: (e as Error).message };
        }
        expect(disk.ok, `case ${i}`).toBe(mem.ok);
        if (!mem.ok && !disk.ok) expect(disk.message.replace(/^loadSafetensors\(.*?\): /, '')).toBe(mem.message.replace(/^parseSafetensors: /, ''));
        if (mem.ok && disk.ok) {
          for (const k of Object.keys(mem.tensors)) expect(disk.tensors[k]!.toArray()).toEqual(mem.tensors[k]!.toArray());
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
