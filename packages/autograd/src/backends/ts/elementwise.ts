/** Elementwise kernels: unary maps, broadcasting binary maps, where, clamp, cast. */
import type { ActivationKind, BinaryKernel, Kernels, Raw, UnaryKernel } from '../../backend.js';
import { allocArray, floatToInt32, floatToInt64, int64ToInt32, isHalf } from '../../dtype.js';
import { broadcastShapes, numel, sameShape } from '../../shape.js';
import { arr, broadcastStrides, forEachBroadcast, out } from './util.js';

function unary(f: (v: number) => number): UnaryKernel {
  return (x) => {
    const a = arr(x);
    const r = out(x.shape, x.dtype);
    const o = arr(r);
    for (let i = 0; i < a.length; i++) o[i] = f(a[i]!);
    return r;
  };
}

function binary(f: (a: number, b: number) => number): BinaryKernel {
  return (x, y) => {
    const a = arr(x), b = arr(y);
    const shape = sameShape(x.shape, y.shape) ? x.shape : broadcastShapes('kernel', x.shape, y.shape);
    // A float32 scalar beside a half tensor (either way round): the half type's result.
    const r = out(shape, x.dtype === y.dtype || isHalf(x.dtype) ? x.dtype : y.dtype);
    const o = arr(r);
    if (a.length === o.length && b.length === o.length) {
      for (let i = 0; i < o.length; i++) o[i] = f(a[i]!, b[i]!);
    } else if (b.length === 1 && a.length === o.length) {
      const bv = b[0]!;
      for (let i = 0; i < o.length; i++) o[i] = f(a[i]!, bv);
    } else {
      forEachBroadcast(shape, broadcastStrides(x.shape, shape), broadcastStrides(y.shape, shape),
        (i, ia, ib) => { o[i] = f(a[ia]!, b[ib]!); });
    }
    return r;
  };
}

function where(c: Raw, x: Raw, y: Raw): Raw {
  const shape = broadcastShapes('where', broadcastShapes('where', c.shape, x.shape), y.shape);
  const cc = arr(c), a = arr(x), b = arr(y);
  const r = out(shape, x.dtype);
  const o = arr(r);
  // Two passes of the two-operand iterator: first the condition's mask, then the pick.
  const mask = new Uint8Array(numel(shape));
  forEachBroadcast(shape, broadcastStrides(c.shape, shape), broadcastStrides(c.shape, shape),
    (i, ic) => { mask[i] = cc[ic] !== 0 ? 1 : 0; });
  forEachBroadcast(shape, broadcastStrides(x.shape, shape), broadcastStrides(y.shape, shape),
    (i, ia, ib) => { o[i] = mask[i] ? a[ia]! : b[ib]!; });
  return r;
}

/**
 * The error function to within a few ulp in float64 (JavaScript has none): below 2.5 the series
 * erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1)), whose terms are all
 * positive, so nothing cancels; above, 1 - erfc(x) with erfc from its continued fraction
 * (Abramowitz & Stegun 7.1.14), evaluated from the tail.
 */
export function erf(x: number): number {
  if (x !== x || x === 0) return x; // NaN, and -0 stays -0 as in C's erf
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    const twoX2 = 2 * a * a;
    let term = a, sum = a;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= twoX2 / (2 * n + 1);
      sum += term;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
  } else if (a < 6) {
    let f = a;
    for (let n = 80; n >= 1; n--) f = a + n / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  } else {
    r = 1; // erfc(6) < 2.2e-17, below half an ulp of 1
  }
  return x < 0 ? -r : r;
}

const SQRT1_2 = Math.SQRT1_2;
const K = Math.sqrt(2 / Math.PI);
/** The activations, as native/src/core/elementwise_math.h computes them. */
const ACTIVATIONS: Record<ActivationKind, (v: number, a: number, b: number) => number> = {
  softplus: (v, a, b) => (v * a > b ? v : Math.log1p(Math.exp(v * a)) / a),
  gelu: (v) => v * 0.5 * (erf(v * SQRT1_2) + 1),
  geluTanh: (v) => v * 0.5 * (Math.tanh((v + v * v * v * 0.044715) * K) + 1),
  silu: (v) => v * sigmoid(v),
  elu: (v, a) => (v > 0 ? v : Math.expm1(v) * a),
  leakyRelu: (v, a) => (v > 0 ? v : v * a),
  hardtanh: (v, a, b) => (v < a ? a : v > b ? b : v),
};

const sigmoid = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

export const elementwiseKernels: Pick<Kernels,
  'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Rsqrt' | 'Abs' | 'Sign' | 'Relu' | 'Sigmoid' | 'Tanh' |
  'Log1p' | 'Expm1' | 'Sin' | 'Cos' | 'Erf' |
  'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Maximum' | 'Minimum' |
  'Equal' | 'NotEqual' | 'Less' | 'LessEqual' | 'Greater' | 'GreaterEqual' | 'ReluBackward' | 'Where' | 'Clamp' | 'Activation' |
  'Cast'> = {
  Neg: unary((v) => -v),
  Exp: unary(Math.exp),
  Log: unary(Math.log),
  Sqrt: unary(Math.sqrt),
  Rsqrt: unary((v) => 1 / Math.sqrt(v)),
  Abs: unary(Math.abs),
  Sign: unary((v) => (v > 0 ? 1 : v < 0 ? -1 : 0)),
  // As PyTorch: NaN passes through (a NaN must not vanish into a 0), and -0 stays -0.
  Relu: unary((v) => (v < 0 ? 0 : v)),
  Sigmoid: unary(sigmoid),
  Tanh: unary(Math.tanh),
  Log1p: unary(Math.log1p),
  Expm1: unary(Math.expm1),
  Sin: unary(Math.sin),
  Cos: unary(Math.cos),
  Erf: unary(erf),
  Add: binary((a, b) => a + b),
  Sub: binary((a, b) => a - b),
  Mul: binary((a, b) => a * b),
  Div: binary((a, b) => a / b),
  // C's pow, as the native kernels and PyTorch: 1 ** anything and (-1) ** +-inf are 1 (Math.pow gives NaN).
  Pow: binary((a, b) => (a === 1 || (a === -1 && Math.abs(b) === Infinity) ? 1 : Math.pow(a, b))),
  // NaN propagates through maximum/minimum, as in PyTorch.
  Maximum: binary((a, b) => (a !== a || b !== b ? NaN : a > b ? a : b)),
  Minimum: binary((a, b) => (a !== a || b !== b ? NaN : a < b ? a : b)),
  Equal: binary((a, b) => (a === b ? 1 : 0)),
  NotEqual: binary((a, b) => (a !== b ? 1 : 0)),
  Less: binary((a, b) => (a < b ? 1 : 0)),
  LessEqual: binary((a, b) => (a <= b ? 1 : 0)),
  Greater: binary((a, b) => (a > b ? 1 : 0)),
  GreaterEqual: binary((a, b) => (a >= b ? 1 : 0)),
  ReluBackward: binary((g, y) => (y <= 0 ? 0 : g)),
  Where: where,
  Clamp: (x, lo, hi) => unary((v) => (v < lo ? lo : v > hi ? hi : v))(x),
  Activation: (x, kind, a, b) => {
    const f = ACTIVATIONS[kind];
    if (!f) throw new Error(`Activation: unknown kind '${kind}'`);
    return unary((v) => f(v, a, b))(x);
  },
  Cast: (x, dtype) => {
    const a = arr(x);
    const o = allocArray(dtype, a.length);
    if (dtype === 'int64') for (let i = 0; i < a.length; i++) o[i] = floatToInt64(a[i]!);
    else if (dtype === 'int32') for (let i = 0; i < a.length; i++) o[i] = x.dtype === 'int64' ? int64ToInt32(a[i]!) : floatToInt32(a[i]!);
    else o.set(a);
    return out(x.shape, dtype, o);
  },
};
