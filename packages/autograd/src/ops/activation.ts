/**
 * Activations with PyTorch's definitions, defaults and gradients at the kinks: softplus, gelu
 * (exact and tanh), silu, elu, leakyRelu, hardtanh. Each forward is one pass of the device's
 * Activation kernel, recorded as one node that saves only its input; each VJP (and JVP) is
 * written in differentiable ops, so double backward and forward mode work.
 */
import { autocastInputs } from '../autocast.js';
import { opmathType } from '../dtype.js';
import type { ActivationKind } from '../backend.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import type { Tensor } from '../tensor.js';
import { add, mul, sub } from './arith.js';
import { greater, less, where } from './compare.js';
import { erf, exp, sigmoid, tanh } from './unary.js';
import { checkFloat, kernels, wrap } from './util.js';

/**
 * An op y = f(x; a, b) by the Activation kernel, whose VJP is g * df(x, params): saves x only.
 * For a half x the product is computed in float32 and rounded once, as PyTorch's backward kernels
 * do (and one cast each way, not a widened copy per constant of df).
 */
function activation<P extends object>(name: string, kind: ActivationKind, ab: (p: P) => [number, number],
  df0: (x: Tensor, p: P) => Tensor) {
  const df = (t: Tensor, x: Tensor, p: P) => {
    const c = opmathType(x.dtype);
    return mul(t.to(c), df0(x.to(c), p)).to(x.dtype);
  };
  const op = defineOp({
    name,
    forward(ctx: Ctx<{ p: P }>, x: Tensor, p: P) {
      checkFloat(name, 'input', x);
      ctx.save(x);
      ctx.p = p;
      return wrap(kernels(x).Activation(x, kind, ...ab(p)), x);
    },
    backward(ctx, g) {
      const [x] = ctx.saved as [Tensor];
      return [df(g, x, ctx.p), null];
    },
    jvp: (ctx, [t], _out, x) => df(t!, x, ctx.p),
    jvpElementwise: true,
  });
  return (x: Tensor, p: P) => op(x, p);
}

function checkNumber(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${op}: ${name} must be a number, got ${v}`);
}

// Linear above threshold / beta, where log1p(exp(beta x)) / beta equals x to float precision.
const softplusOp = activation<{ beta: number; threshold: number }>('softplus', 'softplus', (p) => [p.beta, p.threshold],
  (x, { beta, threshold }) => { const bx = mul(x, beta); return where(greater(bx, threshold), 1, sigmoid(bx)); });

/** log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (torch.nn.functional.softplus). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  checkNumber('softplus', 'beta', beta);
  checkNumber('softplus', 'threshold', threshold);
  if (beta === 0) throw new Error('softplus: beta must not be 0');
  return softplusOp(autocastInputs('float32', x)[0], { beta, threshold }); // on torch's autocast fp32 list
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const K = Math.sqrt(2 / Math.PI); // the tanh approximation's sqrt(2 / pi)
const C = 0.044715;

const none = (): [number, number] => [0, 0];
// x Phi(x); its derivative Phi(x) + x phi(x).
const geluExact = activation<object>('gelu', 'gelu', none,
  (x) => add(mul(add(erf(mul(x, SQRT1_2)), 1), 0.5), mul(x, mul(exp(mul(mul(x, x), -0.5)), INV_SQRT_2PI))));

// x/2 (1 + tanh(k (x + c x^3))).
const geluTanh = activation<object>('gelu', 'geluTanh', none,
  (x) => {
    const t = tanh(mul(add(x, mul(mul(x, mul(x, x)), C)), K));
    const dInner = mul(add(mul(mul(x, x), 3 * C), 1), K);
    return add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), dInner));
  });

/** x Phi(x), or its tanh approximation with approximate = 'tanh' (torch.nn.functional.gelu). */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate === 'none') return geluExact(x, {});
  if (approximate === 'tanh') return geluTanh(x, {});
  throw new Error(`gelu: approximate must be 'none' or 'tanh', got '${String(approximate)}'`);
}

const siluOp = activation<object>('silu', 'silu', none,
  (x) => { const s = sigmoid(x); return mul(s, add(mul(x, sub(1, s)), 1)); });

/** x sigmoid(x) (torch.nn.functional.silu, also called swish). */
export const silu = (x: Tensor): Tensor => siluOp(x, {});

const eluOp = activation<{ alpha: number }>('elu', 'elu', (p) => [p.alpha, 0],
  // A NaN input gives a NaN gradient, as PyTorch's vectorized kernel (its scalar tail gives 1).
  (x, { alpha }) => where(greater(x, 0), 1, mul(exp(x), alpha)));

/** x for x > 0, alpha (exp(x) - 1) otherwise (torch.nn.functional.elu). */
export function elu(x: Tensor, alpha = 1): Tensor {
  checkNumber('elu', 'alpha', alpha);
  return eluOp(x, { alpha });
}

const leakyReluOp = activation<{ slope: number }>('leakyRelu', 'leakyRelu', (p) => [p.slope, 0],
  (x, { slope }) => where(greater(x, 0), 1, slope));

/** x for x > 0, negativeSlope x otherwise (torch.nn.functional.leaky_relu). */
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  checkNumber('leakyRelu', 'negativeSlope', negativeSlope);
  return leakyReluOp(x, { slope: negativeSlope });
}

const hardtanhOp = activation<{ min: number; max: number }>('hardtanh', 'hardtanh', (p) => [p.min, p.max],
  // PyTorch passes no gradient at or beyond the bounds, nor at a NaN input in its vectorized
  // kernel (the scalar tail of a short tensor passes it there).
  (x, { min, max }) => mul(greater(x, min), less(x, max)));

/** x clamped to [minVal, maxVal] (torch.nn.functional.hardtanh); no gradient at or beyond the bounds. */
export function hardtanh(x: Tensor, minVal = -1, maxVal = 1): Tensor {
  checkNumber('hardtanh', 'minVal', minVal);
  checkNumber('hardtanh', 'maxVal', maxVal);
  if (minVal > maxVal) throw new Error(`hardtanh: minVal ${minVal} is greater than maxVal ${maxVal}`);
  return hardtanhOp(x, { min: minVal, max: maxVal });
}

installMethods({ softplus, gelu, silu, elu, leakyRelu, hardtanh });

declare module '../tensor.js' {
  interface Tensor {
    softplus(beta?: number, threshold?: number): Tensor; gelu(approximate?: 'none' | 'tanh'): Tensor; silu(): Tensor;
    elu(alpha?: number): Tensor; leakyRelu(negativeSlope?: number): Tensor; hardtanh(minVal?: number, maxVal?: number): Tensor;
  }
}
