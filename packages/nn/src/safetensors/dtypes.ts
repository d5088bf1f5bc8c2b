/**
 * safetensors dtypes: element sizes, the writer's ordering, and conversion between the file's
 * little-endian bytes and nodegrad's arrays. F16 and BF16 load as float16 and bfloat16 tensors
 * (whose host arrays are float32: every half value is a float32 value), and half tensors store as
 * them. A float32 tensor stored as F16 or BF16 on request is rounded to nearest even, as PyTorch's
 * `.to(torch.float16 / torch.bfloat16)`; float64 is rounded to float32 first, as PyTorch does.
 */
import { floatBitsToBFloat16, floatBitsToHalf, halfToFloatBits, type DType, type TypedArray } from '@nodegrad/autograd';

// The conversions live beside the half dtypes in autograd; tests reach them here too.
export { floatBitsToBFloat16, floatBitsToHalf };

/** The dtypes nodegrad reads and writes. */
export type StoredDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32';

/**
 * Every dtype the format defines, in the order of the reference implementation's `Dtype` enum
 * (its writer sorts tensors by this order, last first), with its size in bits. Validation needs
 * them all: a file may be well-formed even where nodegrad cannot load one of its dtypes.
 */
const ALL_DTYPES: [string, number][] = [
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8],
  ['F8_E4M3', 8], ['F8_E8M0', 8], ['F8_E4M3FNUZ', 8], ['F8_E5M2FNUZ', 8], ['I16', 16], ['U16', 16],
  ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32], ['C64', 64], ['F64', 64],
  ['I64', 64], ['U64', 64],
];
const BITS = new Map(ALL_DTYPES);
const RANK = new Map(ALL_DTYPES.map(([name], i) => [name, i]));

/** Size in bits of a dtype the format defines; undefined for an unknown name. */
export function dtypeBits(dtype: string): number | undefined {
  return BITS.get(dtype);
}

/** The writer's order: higher ranks (wider, more aligned dtypes) come first in the file. */
export function dtypeRank(dtype: StoredDType): number {
  return RANK.get(dtype)!;
}

/** The nodegrad dtype a stored dtype loads as; undefined where nodegrad cannot load it. */
export function loadedDType(stored: string): DType | undefined {
  switch (stored) {
    case 'F32': return 'float32';
    case 'F16': return 'float16';
    case 'BF16': return 'bfloat16';
    case 'F64': return 'float64';
    case 'I64': return 'int64';
    case 'I32': return 'int32';
    default: return undefined;
  }
}

/** The stored dtype of a tensor of `dtype` when no conversion is asked for. */
export function storedDType(dtype: DType): StoredDType {
  return ({ float32: 'F32', float64: 'F64', bfloat16: 'BF16', float16: 'F16', int64: 'I64', int32: 'I32' } as const)[dtype];
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type ArrayOf<T> = { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

/**
 * `bytes` as elements of `Type`: a view where the offset is aligned for it, else a view of an
 * aligned copy (Uint8Array's own slice: a Node Buffer's `slice()` returns a view of its pool).
 */
function view<T>(bytes: Uint8Array, Type: ArrayOf<T>): T {
  const n = bytes.length / Type.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % Type.BYTES_PER_ELEMENT === 0) return new Type(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  return new Type(Uint8Array.prototype.slice.call(bytes).buffer as ArrayBuffer, 0, n);
}

/** float32 bit patterns of all 65536 halves, built on first use. */
let halfTable: Uint32Array | null = null;

/**
 * The bytes of entry `name` (dtype `stored`) as the array nodegrad holds; throws naming the
 * problem. F32, F64 and I32 may be views of `bytes` (no copy of a whole checkpoint in JavaScript
 * memory): the tensor made from one copies it (Backend.fromArray) before `bytes` is reused.
 */
export function decode(bytes: Uint8Array, stored: StoredDType, fail: (msg: string) => never): TypedArray {
  if (!LITTLE_ENDIAN) fail('big-endian hosts are not supported');
  switch (stored) {
    case 'F32': return view(bytes, Float32Array);
    case 'F64': return view(bytes, Float64Array);
    case 'I32': return view(bytes, Int32Array);
    case 'BF16': {
      const src = view(bytes, Uint16Array);
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
      return out;
    }
    case 'F16': {
      if (!halfTable) {
        halfTable = new Uint32Array(65536);
        for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloatBits(h);
      }
      const src = view(bytes, Uint16Array);
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = halfTable[src[i]!]!;
      return out;
    }
    case 'I64': {
      // int64 lives in a Float64Array, exact below 2^53 in magnitude: refuse what would round.
      const words = view(bytes, Int32Array);
      const out = new Float64Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = words[2 * i]! >>> 0;
        const hi = words[2 * i + 1]!;
        const v = hi * 4294967296 + lo;
        if (hi < -0x200000 || hi >= 0x200000 || !Number.isSafeInteger(v)) {
          fail(`I64 element ${i} is beyond 2^53 in magnitude, which nodegrad's int64 cannot hold exactly`);
        }
        out[i] = v;
      }
      return out;
    }
  }
}

/** The little-endian bytes of `arr` (a tensor's elements) stored as `stored`. */
export function encode(arr: TypedArray, stored: StoredDType, fail: (msg: string) => never): Uint8Array {
  if (!LITTLE_ENDIAN) fail('big-endian hosts are not supported');
  const bytesOf = (a: TypedArray | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (stored) {
    case 'F32': return bytesOf(arr instanceof Float32Array ? arr : Float32Array.from(arr));
    case 'F64': return bytesOf(arr instanceof Float64Array ? arr : Float64Array.from(arr));
    case 'I32': return bytesOf(arr instanceof Int32Array ? arr : Int32Array.from(arr));
    case 'F16': case 'BF16': {
      const f32 = arr instanceof Float32Array ? arr : Float32Array.from(arr);
      const bits = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
      const out = new Uint16Array(f32.length);
      const round = stored === 'F16' ? floatBitsToHalf : floatBitsToBFloat16;
      for (let i = 0; i < out.length; i++) out[i] = round(bits[i]!);
      return bytesOf(out);
    }
    case 'I64': {
      const words = new Int32Array(arr.length * 2);
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i]!;
        if (!Number.isSafeInteger(v)) fail(`int64 element ${i} is ${v}, not an integer below 2^53 in magnitude`);
        const hi = Math.floor(v / 4294967296);
        words[2 * i] = v - hi * 4294967296;
        words[2 * i + 1] = hi;
      }
      return bytesOf(words);
    }
  }
}
