/**
 * Activations with PyTorch's definitions, defaults and gradients at the kinks: softplus, gelu
 * (exact and tanh), silu, elu, leakyRelu, hardtanh. Each forward composes the native elementwise
 * kernels and records one node that saves only its input; each VJP is written in differentiable
 * ops, so double backward works.
 */
import { autocastInputs } from '../autocast.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import type { Tensor } from '../tensor.js';
import { add, mul, sub } from './arith.js';
import { greater, less, where } from './compare.js';
import { clamp, erf, exp, expm1, log1p, sigmoid, tanh } from './unary.js';
import { checkFloat } from './util.js';

/** An op y = f(x, params) whose VJP is g * df(x, params): saves x only. */
function activation<P extends object>(name: string, f: (x: Tensor, p: P) => Tensor, df: (x: Tensor, p: P) => Tensor) {
  const op = defineOp({
    name,
    forward(ctx: Ctx<{ p: P }>, x: Tensor, p: P) {
      checkFloat(name, 'input', x);
      ctx.save(x);
      ctx.p = p;
      return f(x, p);
    },
    backward(ctx, g) {
      const [x] = ctx.saved as [Tensor];
      return [mul(g, df(x, ctx.p)), null];
    },
    jvp: (ctx, [t], _out, x) => mul(t!, df(x, ctx.p)),
  });
  return (x: Tensor, p: P) => op(x, p);
}

function checkNumber(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${op}: ${name} must be a number, got ${v}`);
}

const softplusOp = activation<{ beta: number; threshold: number }>('softplus',
  // Linear above threshold / beta, where log1p(exp(beta x)) / beta equals x to float precision.
  (x, { beta, threshold }) => { const bx = mul(x, beta); return where(greater(bx, threshold), x, mul(log1p(exp(bx)), 1 / beta)); },
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

const geluExact = activation<object>('gelu',
  (x) => mul(mul(x, 0.5), add(erf(mul(x, SQRT1_2)), 1)),
  // Phi(x) + x phi(x)
  (x) => add(mul(add(erf(mul(x, SQRT1_2)), 1), 0.5), mul(x, mul(exp(mul(mul(x, x), -0.5)), INV_SQRT_2PI))));

const geluTanh = activation<object>('gelu',
  (x) => mul(mul(x, 0.5), add(tanh(mul(add(x, mul(mul(x, mul(x, x)), C)), K)), 1)),
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

const siluOp = activation<object>('silu',
  (x) => mul(x, sigmoid(x)),
  (x) => { const s = sigmoid(x); return mul(s, add(mul(x, sub(1, s)), 1)); });

/** x sigmoid(x) (torch.nn.functional.silu, also called swish). */
export const silu = (x: Tensor): Tensor => siluOp(x, {});

const eluOp = activation<{ alpha: number }>('elu',
  (x, { alpha }) => where(greater(x, 0), x, mul(expm1(x), alpha)),
  (x, { alpha }) => where(greater(x, 0), 1, mul(exp(x), alpha)));

/** x for x > 0, alpha (exp(x) - 1) otherwise (torch.nn.functional.elu). */
export function elu(x: Tensor, alpha = 1): Tensor {
  checkNumber('elu', 'alpha', alpha);
  return eluOp(x, { alpha });
}

const leakyReluOp = activation<{ slope: number }>('leakyRelu',
  (x, { slope }) => where(greater(x, 0), x, mul(x, slope)),
  (x, { slope }) => where(greater(x, 0), 1, slope));

/** x for x > 0, negativeSlope x otherwise (torch.nn.functional.leaky_relu). */
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  checkNumber('leakyRelu', 'negativeSlope', negativeSlope);
  return leakyReluOp(x, { slope: negativeSlope });
}

const hardtanhOp = activation<{ min: number; max: number }>('hardtanh',
  (x, { min, max }) => clamp(x, min, max),
  // PyTorch passes no gradient at the bounds themselves (clamp passes it there).
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
