/** Tensor construction: from data, constants, ranges and the seeded generator. */
import type { Kernels, Raw } from '../backend.js';
import { getBackend } from '../registry.js';
import { allocArray, dtypeOfArray, fillOverflow, floatToInt32, floatToInt64, type DType, type TypedArray } from '../dtype.js';
import { takeOffset } from '../random.js';
import { checkShape, fmt, numel, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';

export interface TensorOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

let defaultDev = 'ts';

/** The device new tensors go to when none is named: 'cpu' once the native addon registers it. */
export function defaultDevice(): string {
  return defaultDev;
}

export function setDefaultDevice(device: string): void {
  getBackend(device);
  defaultDev = device;
}

function make(data: TypedArray, shape: Shape, opts: TensorOptions, dtype: DType): Tensor {
  const t = Tensor.fromData(data, shape, dtype, opts.device ?? defaultDev);
  if (opts.requiresGrad) requiresGradChecked('tensor', t);
  return t;
}

function requiresGradChecked(op: string, t: Tensor): void {
  if (t.dtype === 'int32' || t.dtype === 'int64') {
    throw new Error(`${op}: only float tensors can require gradients, got dtype ${t.dtype}`);
  }
  t.requiresGrad = true;
}

/** A tensor made on its device by a creation kernel: nothing is uploaded. */
function create(opts: TensorOptions, kernel: (k: Kernels, dtype: DType) => Raw): Tensor {
  const dtype = opts.dtype ?? 'float32';
  const backend = getBackend(opts.device ?? defaultDev);
  const t = Tensor.fromRaw(kernel(backend.kernels, dtype), backend);
  if (opts.requiresGrad) requiresGradChecked('tensor', t);
  return t;
}

function fill(op: string, shape: Shape, value: number, opts: TensorOptions): Tensor {
  checkShape(op, shape);
  const overflow = fillOverflow(value, opts.dtype ?? 'float32');
  if (overflow) throw new Error(`${op}: ${overflow}`);
  return create(opts, (k, dtype) => k.Fill(shape, value, dtype));
}

type Nested = number | readonly Nested[];

/** Any typed array of numbers: the storage types, and the byte and short ones (image data), converted. */
export type NumericArray = TypedArray | Uint8Array | Uint8ClampedArray | Int8Array | Uint16Array | Int16Array | Uint32Array;

/** A tensor from a (nested) array or a number, float32 unless `dtype` says otherwise. */
export function tensor(data: Nested | NumericArray, opts: TensorOptions = {}): Tensor {
  // A typed array is one dim (torch.tensor of a NumPy array): float32, float64 and int32 arrays keep
  // their dtype, the byte and short ones become float64, unless told.
  if (ArrayBuffer.isView(data)) return fromTypedArray(data, [data.length], opts);
  const shape: number[] = [];
  for (let d: Nested = data; Array.isArray(d); d = (d as readonly Nested[])[0]!) shape.push((d as readonly Nested[]).length);
  const flat: number[] = [];
  const walk = (d: Nested, depth: number) => {
    if (typeof d === 'number') {
      if (depth !== shape.length) throw new Error(`tensor: ragged nested array (expected shape ${fmt(shape)})`);
      flat.push(d);
      return;
    }
    if (!Array.isArray(d)) {
      throw new Error(`tensor: expected numbers in (nested) arrays, got ${ArrayBuffer.isView(d) ? 'a typed array nested in an array' : typeof d}` +
        ' (there is no bool dtype: give 1 and 0)');
    }
    if (d.length !== shape[depth]) throw new Error(`tensor: ragged nested array at depth ${depth} (expected shape ${fmt(shape)})`);
    for (const x of d) walk(x, depth + 1);
  };
  walk(data, 0);
  const dtype = opts.dtype ?? 'float32';
  if (dtype === 'int32' || dtype === 'int64') {
    // As PyTorch: an integer tensor cannot hold NaN, an infinity or a value out of its range (an
    // Int32Array would wrap it).
    const bad = flat.findIndex((v) => fillOverflow(v, dtype));
    if (bad >= 0) throw new Error(`tensor: value ${flat[bad]} at index ${bad} cannot be converted to ${dtype} without overflow`);
  }
  const arr = allocArray(dtype, flat.length);
  arr.set(flat);
  return make(dtype === 'int64' ? converted(arr, dtype) : arr, shape, opts, dtype);
}

/** The dtype a storage array holds, or null for typed arrays no dtype is stored in (Uint8Array, ...). */
function storedDType(arr: NumericArray): DType | null {
  return arr instanceof Float32Array || arr instanceof Float64Array || arr instanceof Int32Array ? dtypeOfArray(arr) : null;
}

/**
 * The array's values as `dtype` holds them: integers as PyTorch converts floats (toward zero;
 * NaN, the infinities and values out of range the type's minimum; -0 made 0). The array itself
 * when nothing changes, else a converted copy.
 */
function converted(arr: NumericArray, dtype: DType): TypedArray {
  const int = dtype === 'int64' ? floatToInt64 : dtype === 'int32' ? floatToInt32 : null;
  // int64 is held in a Float64Array: one whose values are already int64's is kept.
  const kept = dtype === 'int64' ? arr instanceof Float64Array && arr.every((v) => floatToInt64(v) === v && !Object.is(v, -0))
    : storedDType(arr) === dtype;
  if (kept) return arr as TypedArray;
  const out = allocArray(dtype, arr.length);
  if (int && !(arr instanceof Int32Array)) for (let i = 0; i < arr.length; i++) out[i] = int(arr[i]!);
  else out.set(arr);
  return out;
}

/** Wraps a copy of a typed array; dtype follows the array (Float32Array -> float32, ...) unless given. */
export function fromTypedArray(arr: NumericArray, shape: Shape, opts: TensorOptions = {}): Tensor {
  checkShape('fromTypedArray', shape);
  if (numel(shape) !== arr.length) {
    throw new Error(`fromTypedArray: ${arr.length} elements do not fill shape ${fmt(shape)} (${numel(shape)} elements)`);
  }
  const dtype = opts.dtype ?? storedDType(arr) ?? 'float64';
  return make(converted(arr, dtype), shape, opts, dtype);
}

export function zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
  return fill('zeros', shape, 0, opts);
}

export function ones(shape: Shape, opts: TensorOptions = {}): Tensor {
  return fill('ones', shape, 1, opts);
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  return fill('full', shape, value, opts);
}

/** A constant tensor with the shape, dtype and device of `like` (a Tensor or its description). */
export function fullLike(like: { shape: Shape; dtype: string; device: string }, value: number): Tensor {
  return fill('fullLike', like.shape, value, { dtype: like.dtype as DType, device: like.device });
}

export function zerosLike(like: Tensor): Tensor {
  return fullLike(like, 0);
}

export function onesLike(like: Tensor): Tensor {
  return fullLike(like, 1);
}

/** Standard normal samples from the seeded device stream (random.ts), drawn on the device. */
export function randn(shape: Shape, opts: TensorOptions = {}): Tensor {
  checkShape('randn', shape);
  const { seed, offset } = takeOffset(numel(shape));
  return create(opts, (k, dtype) => k.RandomNormal(shape, dtype, seed, offset));
}

/** Uniform samples in [0, 1) from the seeded device stream (random.ts), drawn on the device. */
export function rand(shape: Shape, opts: TensorOptions = {}): Tensor {
  checkShape('rand', shape);
  const { seed, offset } = takeOffset(numel(shape));
  return create(opts, (k, dtype) => k.RandomUniform(shape, dtype, seed, offset));
}

/** start, start+step, ... below end, as `torch.arange`. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (![start, end, step].every(Number.isFinite)) throw new Error(`arange: unsupported range: ${start} -> ${end} by ${step}`);
  if (step === 0) throw new Error('arange: step must be nonzero');
  if ((step > 0 && end < start) || (step < 0 && end > start)) {
    throw new Error(`arange: upper bound and lower bound inconsistent with step sign (${start} -> ${end} by ${step})`);
  }
  const n = Math.ceil((end - start) / step);
  const dtype = opts.dtype ?? 'float32';
  // An integer dtype counts in integers from the truncated start and step, as PyTorch (the length
  // still comes from the real range): arange(0.5, 5, 1, int64) is 0..4.
  const integral = dtype === 'int32' || dtype === 'int64';
  const [s0, ds] = integral ? [Math.trunc(start), Math.trunc(step)] : [start, step];
  const arr = allocArray(dtype, n);
  for (let i = 0; i < n; i++) arr[i] = s0 + ds * i;
  return make(arr, [n], opts, dtype);
}
