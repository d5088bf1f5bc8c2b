/**
 * Element types. Float types carry gradients; integer types hold indices and counters. The half
 * types (bfloat16, float16) are held on the host as Float32Array whose values are exactly
 * representable in the type: every upload rounds to it, and `toArray` gives float32 values.
 */
export type HalfDType = 'bfloat16' | 'float16';
export type FloatDType = 'float32' | 'float64' | HalfDType;
export type IntDType = 'int32' | 'int64';
export type DType = FloatDType | IntDType;

/** Every dtype name, in the order errors list them. */
export const DTYPES: readonly DType[] = ['float32', 'float64', 'bfloat16', 'float16', 'int32', 'int64'];

export type FloatArray = Float32Array | Float64Array;
/** int64 is kept in a Float64Array: exact for |n| < 2^53, which covers indices and counters. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'bfloat16' || dtype === 'float16';
}

export function isHalf(dtype: DType): dtype is HalfDType {
  return dtype === 'bfloat16' || dtype === 'float16';
}

/** The type ops on `dtype` compute in: float32 for the half types (PyTorch's opmath type), else itself. */
export function opmathType(dtype: DType): DType {
  return isHalf(dtype) ? 'float32' : dtype;
}

export function isDType(name: string): name is DType {
  return (DTYPES as readonly string[]).includes(name);
}

/**
 * Why `value` cannot be stored as `dtype` by a fill (full, fill_), as PyTorch's checked scalar
 * conversion decides, or null when it can. An integer type refuses NaN, infinities and values
 * beyond its range (compared before truncation: -2147483648.5 is refused for int32); float32
 * refuses finite values beyond its largest (torch raises for both). The half types are not
 * checked: PyTorch 2.15's rule for them is not symmetric (torch.full of 70000 in float16 raises,
 * of -70000 gives -inf), and nodegrad gives the rounded value.
 */
export function fillOverflow(value: number, dtype: DType): string | null {
  const fits = dtype === 'int32' ? value >= -(2 ** 31) && value <= 2 ** 31 - 1
    : dtype === 'int64' ? value >= -(2 ** 63) && value < 2 ** 63
    : dtype === 'float32' ? !(Math.abs(value) > 3.4028234663852886e38 && Number.isFinite(value))
    : true;
  return fits ? null : `value ${value} cannot be converted to ${dtype} without overflow`;
}

export function allocArray(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case 'float32': case 'bfloat16': case 'float16': return new Float32Array(size);
    case 'float64': case 'int64': return new Float64Array(size);
    case 'int32': return new Int32Array(size);
  }
}

export function dtypeOfArray(arr: TypedArray): DType {
  if (arr instanceof Float32Array) return 'float32';
  if (arr instanceof Int32Array) return 'int32';
  return 'float64';
}

/** Bytes one element of `dtype` takes in a device buffer (torch's element_size()). */
export function bytesPerElement(dtype: DType): number {
  return isHalf(dtype) ? 2 : dtype === 'float32' || dtype === 'int32' ? 4 : 8;
}

/** The array type that holds dtype on the host (`allocArray`'s): Float64Array for int64, Float32Array for halves. */
export function arrayTypeName(dtype: DType): string {
  return dtype === 'float64' || dtype === 'int64' ? 'Float64Array' : dtype === 'int32' ? 'Int32Array' : 'Float32Array';
}

/** Throws unless `data` is dtype's host array type: an Int32Array is never read as float32 bits. */
export function checkHostArray(op: string, data: TypedArray, dtype: DType): void {
  const want = arrayTypeName(dtype);
  if (data?.constructor?.name !== want) {
    throw new Error(`${op}: ${dtype} data must be a ${want}, got ${data?.constructor?.name ?? typeof data}`);
  }
}

/** The floating type two float operands promote to, as torch.promote_types: the wider, and float32 for bf16 with f16. */
export function promoteFloat(a: FloatDType, b: FloatDType): FloatDType {
  if (a === b) return a;
  if (a === 'float64' || b === 'float64') return 'float64';
  return 'float32';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x rounded to bfloat16, to nearest even (float32's top 16 bits); NaN stays NaN. */
export function roundBFloat16(x: number): number {
  f32[0] = x;
  u32[0] = floatBitsToBFloat16(u32[0]!) << 16;
  return f32[0]!;
}

/** float32 bits of IEEE half bits (exact; NaN payloads kept). */
export function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal half: normalise the mantissa into a normal float32.
  let e = 113;
  while (!(mant & 0x400)) { mant <<= 1; e--; }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** IEEE half bits of a float32 (given as bits), rounded to nearest even; NaN becomes sign|0x7e00 as in c10::Half. */
export function floatBitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const he = exp - 112; // exponent rebiased from 127 to 15
  if (he >= 0x1f) return sign | 0x7c00;
  if (he >= 1) {
    // Normal half: drop 13 mantissa bits; a carry out of the mantissa bumps the exponent (to inf at the top).
    const base = (he << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    return sign | (base + (rem > 0x1000 || (rem === 0x1000 && (base & 1)) ? 1 : 0));
  }
  // Subnormal half, in units of 2^-24: the 24-bit significand shifted right by 126 - exp >= 14.
  const shift = 126 - exp;
  if (shift > 24) return sign;
  const m = mant | 0x800000;
  const q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (q + (rem > half || (rem === half && (q & 1)) ? 1 : 0));
}

/** bfloat16 bits of a float32 (given as bits), rounded to nearest even; NaN becomes 0x7fc0 as in c10::BFloat16. */
export function floatBitsToBFloat16(x: number): number {
  if ((x & 0x7fffffff) >>> 0 > 0x7f800000) return 0x7fc0;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** x rounded to IEEE binary16, to nearest even (through float32, as a float32 value handed to a half kernel). */
export function roundFloat16(x: number): number {
  f32[0] = x;
  u32[0] = halfToFloatBits(floatBitsToHalf(u32[0]!));
  return f32[0]!;
}

/**
 * Rounds every element of a half tensor's host array (a Float32Array) to its type, in place. A NaN
 * the type can hold keeps its payload (a loaded checkpoint's bits survive); any other NaN becomes
 * the type's quiet NaN, as c10's conversions.
 */
export function roundInPlace(data: TypedArray, dtype: HalfDType): void {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const low = dtype === 'bfloat16' ? 0xffff : 0x1fff;
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) {
      if (b & low) bits[i] = dtype === 'bfloat16' ? 0x7fc00000 : ((b & 0x80000000) | 0x7fc00000) >>> 0;
    } else if (dtype === 'bfloat16') {
      bits[i] = (floatBitsToBFloat16(b) << 16) >>> 0;
    } else {
      data[i] = roundFloat16(data[i]!);
    }
  }
}

// To an integer dtype as PyTorch on x86 (native/src/core/int_cast.h): toward zero; NaN, the
// infinities and values outside the type's range become its minimum; int64 -> int32 wraps, which
// is JavaScript's ToInt32 (`| 0`: modulo 2^32, exact for every integer a double holds).
export const floatToInt64 = (v: number): number => (v >= -(2 ** 63) && v < 2 ** 63 ? Math.trunc(v) + 0 : -(2 ** 63));
export const floatToInt32 = (v: number): number => (v > -(2 ** 31) - 1 && v < 2 ** 31 ? Math.trunc(v) + 0 : -(2 ** 31));
export const int64ToInt32 = (v: number): number => v | 0;
