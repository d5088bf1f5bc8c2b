/** Element types. Float types carry gradients; integer types hold indices and counters. */
export type FloatDType = 'float32' | 'float64';
export type IntDType = 'int32' | 'int64';
export type DType = FloatDType | IntDType;

export type FloatArray = Float32Array | Float64Array;
/** int64 is kept in a Float64Array: exact for |n| < 2^53, which covers indices and counters. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}

export function allocArray(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(size);
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
  return dtype === 'float32' || dtype === 'int32' ? 4 : 8;
}

/** The array type that holds dtype on the host (`allocArray`'s): Float64Array for int64. */
export function arrayTypeName(dtype: DType): string {
  return dtype === 'float32' ? 'Float32Array' : dtype === 'int32' ? 'Int32Array' : 'Float64Array';
}

/** Throws unless `data` is dtype's host array type: an Int32Array is never read as float32 bits. */
export function checkHostArray(op: string, data: TypedArray, dtype: DType): void {
  const want = arrayTypeName(dtype);
  if (data?.constructor?.name !== want) {
    throw new Error(`${op}: ${dtype} data must be a ${want}, got ${data?.constructor?.name ?? typeof data}`);
  }
}
