/**
 * The safetensors header: reading and validating it (the rules of the reference implementation,
 * huggingface/safetensors `read_metadata` and `Metadata::validate`), and writing it as the
 * reference writer does. Layout: u64 little-endian N, N bytes of UTF-8 JSON padded with spaces,
 * then the data buffer, which the tensors must cover exactly, without gaps or overlaps.
 */
import { dtypeBits, type StoredDType } from './dtypes.js';
import { SafetensorsError, quote } from './error.js';
import { JsonError, JsonFloat, parseJson, type JsonValue } from './json.js';

/** The reference implementation's limit on N. */
export const MAX_HEADER_SIZE = 100_000_000;

/** One tensor's header entry; offsets are relative to the data buffer. */
export interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface Header {
  /** Entries in data order (by offsets). */
  entries: Entry[];
  metadata: Record<string, string> | null;
}

/** Throws a SafetensorsError prefixed by `where` (the function and file). */
export type Fail = (msg: string) => never;

export const failer = (where: string): Fail => (msg) => {
  throw new SafetensorsError(`${where}: ${msg}`);
};

/** Reads N from the first 8 bytes and checks it against the limit and the file size. */
export function headerLength(prefix: Uint8Array, fileSize: number, fail: Fail): number {
  if (fileSize < 8) fail(`file is ${fileSize} bytes, too short for the 8-byte header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) fail(`header length ${n} is over the ${MAX_HEADER_SIZE}-byte limit`);
  if (Number(n) > fileSize - 8) fail(`header length ${n} runs past the end of the ${fileSize}-byte file`);
  return Number(n);
}

/** A plain object with the given own properties (defineProperty, so a key like `__proto__` is data). */
export function record<T>(pairs: Iterable<[string, T]>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of pairs) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

function kind(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  if (v instanceof JsonFloat) return `the non-integer ${v.text}`;
  return typeof v === 'number' ? `the number ${v}` : `a ${typeof v}`;
}

function uintArray(v: JsonValue | undefined, what: string, fail: Fail): number[] {
  if (v === undefined) fail(`missing field ${what}`);
  if (!Array.isArray(v)) fail(`${what} must be an array of non-negative integers, got ${kind(v)}`);
  for (const [i, x] of v.entries()) {
    if (typeof x !== 'number' || x < 0) fail(`${what}[${i}] must be a non-negative integer, got ${kind(x)}`);
  }
  return v as number[];
}

function parseEntry(name: string, v: JsonValue, dataLength: number, fail: Fail): Entry {
  const f: Fail = (msg) => fail(`tensor ${quote(name)}: ${msg}`);
  if (!(v instanceof Map)) return f(`entry must be an object, got ${kind(v)}`);
  const dtype = v.get('dtype');
  if (dtype === undefined) f('missing field dtype');
  if (typeof dtype !== 'string') return f(`dtype must be a string, got ${kind(dtype)}`);
  const bits = dtypeBits(dtype);
  if (bits === undefined) f(`unknown dtype ${quote(dtype)}`);
  const shape = uintArray(v.get('shape'), 'shape', f);
  const offsets = uintArray(v.get('data_offsets'), 'data_offsets', f);
  if (offsets.length !== 2) f(`data_offsets must be [begin, end], got ${offsets.length} numbers`);
  const [begin, end] = offsets as [number, number];
  if (end < begin) f(`data_offsets [${begin}, ${end}] are reversed`);
  if (end > dataLength) f(`data_offsets [${begin}, ${end}] run past the end of the ${dataLength}-byte data buffer`);
  // Element count as the reference does it: an overflowing product is an error even before a 0.
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (count > Number.MAX_SAFE_INTEGER) f(`shape [${shape.join(', ')}] has more than 2^53 elements`);
  }
  const nbits = count * bits!;
  if (nbits > Number.MAX_SAFE_INTEGER) f(`shape [${shape.join(', ')}] is too large for dtype ${dtype}`);
  if (nbits % 8 !== 0) f(`${count} elements of ${dtype} do not fill whole bytes`);
  if (end - begin !== nbits / 8) {
    f(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} x shape [${shape.join(', ')}] needs ${nbits / 8}`);
  }
  return { name, dtype, shape: [...shape], begin, end };
}

function parseMetadata(v: JsonValue, fail: Fail): Record<string, string> | null {
  if (v === null) return null;
  if (!(v instanceof Map)) fail(`__metadata__ must be an object of strings, got ${kind(v)}`);
  for (const [k, x] of v) {
    if (typeof x !== 'string') fail(`__metadata__ must map strings to strings, but ${quote(k)} is ${kind(x)}`);
  }
  return record(v as Map<string, string>);
}

/** Parses and validates the N header bytes against a data buffer of `dataLength` bytes. */
export function parseHeader(bytes: Uint8Array, dataLength: number, fail: Fail): Header {
  if (bytes.length === 0 || bytes[0] !== 0x7b) fail("header does not begin with '{'");
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: JsonValue;
  try {
    json = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) fail(`header is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!(json instanceof Map)) return fail(`header must be a JSON object, got ${kind(json)}`);
  let metadata: Record<string, string> | null = null;
  const entries: Entry[] = [];
  for (const [name, v] of json) {
    if (name === '__metadata__') metadata = parseMetadata(v, fail);
    else entries.push(parseEntry(name, v, dataLength, fail));
  }
  // Tensors in offset order must tile the data buffer: each starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | null = null;
  for (const e of entries) {
    if (e.begin < pos) {
      fail(`tensor ${quote(e.name)} at data_offsets [${e.begin}, ${e.end}] overlaps tensor ${quote(prev!.name)} at [${prev!.begin}, ${prev!.end}]`);
    }
    if (e.begin > pos) fail(`data bytes [${pos}, ${e.begin}) belong to no tensor (a gap before tensor ${quote(e.name)})`);
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLength) fail(`data bytes [${pos}, ${dataLength}) at the end of the buffer belong to no tensor`);
  return { entries, metadata };
}

const ORPHAN_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function jsonString(s: string, what: string, fail: Fail): string {
  if (ORPHAN_SURROGATE.test(s)) fail(`${what} ${quote(s)} is not valid Unicode (lone surrogate)`);
  return JSON.stringify(s);
}

/** A writer's entry: the stored dtype and its place in the data buffer. */
export interface OutEntry {
  name: string;
  dtype: StoredDType;
  shape: readonly number[];
  begin: number;
  end: number;
}

/**
 * The header bytes as the reference writer makes them: compact JSON, `__metadata__` first, then
 * the entries in the given (data) order, padded with spaces to a multiple of 8 bytes so that the
 * data buffer starts 8-aligned.
 */
export function buildHeader(entries: readonly OutEntry[], metadata: Record<string, string> | null, fail: Fail): Uint8Array {
  const parts: string[] = [];
  if (metadata) {
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') fail(`metadata value for ${quote(k)} must be a string, got ${typeof v}`);
      return `${jsonString(k, 'metadata key', fail)}:${jsonString(v, 'metadata value', fail)}`;
    });
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  for (const e of entries) {
    parts.push(`${jsonString(e.name, 'tensor name', fail)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${e.begin},${e.end}]}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_SIZE) fail(`header would be ${n} bytes, over the ${MAX_HEADER_SIZE}-byte limit readers accept`);
  const out = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}
