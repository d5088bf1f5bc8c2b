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

export function isDType(name: string): name is DType {
  return (DTYPES as readonly string[]).includes(name);
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

export function bytesPerElement(dtype: DType): number {
  return isHalf(dtype) ? 2 : dtype === 'float32' || dtype === 'int32' ? 4 : 8;
}

/** The array type that holds dtype on the host (`allocArray`'s): Float64Array for int64, Float32Array for halves. */
export function arrayTypeName(dtype: DType): string {
  const a = allocArray(dtype, 0);
  return a.constructor.name;
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
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return NaN;
  u32[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return f32[0]!;
}

/** v rounded to an integer, ties to even. */
function rint(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

const F16_MAX = 65504;
const F16_MIN_NORMAL = 2 ** -14;

/** x rounded to IEEE binary16, to nearest even: subnormals below 2^-14, ±Infinity from 65520 up. */
export function roundFloat16(x: number): number {
  f32[0] = x; // float32 first, as a float32 value handed to a half kernel would be
  const v = f32[0]!;
  if (!Number.isFinite(v) || v === 0) return v;
  const a = Math.abs(v);
  let r: number;
  if (a < F16_MIN_NORMAL) {
    r = rint(a * 2 ** 24) * 2 ** -24; // subnormal spacing
  } else {
    // Drop float32's 13 low mantissa bits with ties to even; a carry moves into the exponent.
    u32[0] = (u32[0]! & 0x7fffffff) + 0xfff + ((u32[0]! >>> 13) & 1);
    u32[0] = u32[0]! & 0xffffe000;
    r = f32[0]!;
    if (r > F16_MAX) r = Infinity;
  }
  return v < 0 ? -r : r;
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
      bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
    } else {
      data[i] = roundFloat16(data[i]!);
    }
  }
}
