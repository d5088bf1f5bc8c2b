/** Elementwise functions of one tensor, each with its VJP in terms of its input or output. */
import type { Kernels } from '../backend.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import type { Tensor } from '../tensor.js';
import { add, div, mul, neg, sub } from './arith.js';
import { greater, less } from './compare.js';
import { zerosLike } from './creation.js';
import { autocasting, checkFloat, checkSame, kernels, wrap } from './util.js';

type UnaryName = 'Exp' | 'Log' | 'Sqrt' | 'Rsqrt' | 'Abs' | 'Relu' | 'Sigmoid' | 'Tanh' | 'Sign' | 'Log1p' | 'Expm1' |
  'Sin' | 'Cos' | 'Erf';

/**
 * An op whose VJP needs either its input or its output; only that one is saved, so the other can
 * be freed as soon as nothing else uses it (relu keeps its output, as PyTorch's threshold_backward).
 */
function unary(name: string, kernel: UnaryName & keyof Kernels, uses: 'input' | 'output',
  vjp: (g: Tensor, saved: Tensor) => Tensor) {
  return defineOp({
    name,
    forward(ctx, x: Tensor) {
      checkFloat(name, 'input', x);
      const y = wrap(kernels(x)[kernel](x), x);
      ctx.save(uses === 'input' ? x : y);
      return y;
    },
    backward(ctx, g) {
      const [t] = ctx.saved as [Tensor];
      return [vjp(g, t)];
    },
    // Elementwise, so the JVP is the VJP's product with the tangent in place of the gradient.
    jvp: (_ctx, [t], y, x) => vjp(t!, uses === 'input' ? x : y),
    jvpElementwise: true,
  });
}

// exp and log run in float32 under autocast (torch's autocast fp32 list).
export const exp = autocasting('float32', unary('exp', 'Exp', 'output', (g, y) => mul(g, y)));
export const log = autocasting('float32', unary('log', 'Log', 'input', (g, x) => div(g, x)));
export const sqrt = unary('sqrt', 'Sqrt', 'output', (g, y) => div(g, mul(y, 2)));
// d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
export const rsqrt = unary('rsqrt', 'Rsqrt', 'output', (g, y) => mul(g, mul(mul(y, mul(y, y)), -0.5)));
export const abs = unary('abs', 'Abs', 'input', (g, x) => mul(g, sign(x)));
export const relu = unary('relu', 'Relu', 'output', (g, y) => reluBackward(g, y));

const reluBackwardOp = defineOp({
  name: 'reluBackward',
  forward(ctx, g: Tensor, y: Tensor) {
    checkSame('reluBackward', { grad: g, output: y });
    ctx.save(y);
    return wrap(kernels(g).ReluBackward(g, y), g);
  },
  backward(ctx, gg) {
    // Linear in g with the same mask; its derivative in y is zero wherever it is defined.
    const [y] = ctx.saved as [Tensor];
    return [ctx.needsInputGrad[0] ? reluBackward(gg, y) : null, null];
  },
  jvp: (_ctx, [tg], _out, _g, y) => (tg ? reluBackward(tg, y) : null),
});

/**
 * relu's VJP from its output y: g where y > 0, else 0 (PyTorch's threshold_backward at 0). One
 * kernel pass instead of a mask and a product, and a zero output passes no gradient at all, an
 * infinite one included.
 */
export function reluBackward(g: Tensor, y: Tensor): Tensor {
  return reluBackwardOp(g, y);
}
export const sigmoid = unary('sigmoid', 'Sigmoid', 'output', (g, y) => mul(g, mul(y, sub(1, y))));
export const tanh = unary('tanh', 'Tanh', 'output', (g, y) => mul(g, sub(1, mul(y, y))));

// log1p and expm1 run in float32 under autocast, as exp and log (torch's autocast fp32 list).
export const log1p = autocasting('float32', unary('log1p', 'Log1p', 'input', (g, x) => div(g, add(x, 1))));
export const expm1 = autocasting('float32', unary('expm1', 'Expm1', 'output', (g, y) => mul(g, add(y, 1))));
export const sin = unary('sin', 'Sin', 'input', (g, x) => mul(g, cos(x)));
export const cos = unary('cos', 'Cos', 'input', (g, x) => mul(g, neg(sin(x))));
// d erf(x) = 2/sqrt(pi) exp(-x^2)
export const erf = unary('erf', 'Erf', 'input', (g, x) => mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI))));

const signOp = defineOp({
  name: 'sign',
  forward: (_ctx, x: Tensor) => wrap(kernels(x).Sign(x), x),
  backward: (_ctx, g) => [zerosLike(g)],
  jvp: (_ctx, [t]) => zerosLike(t!),
  jvpElementwise: true,
});

/** -1, 0 or 1; its gradient is zero (recorded, as PyTorch's, so a loss through it still has a backward). */
export function sign(x: Tensor): Tensor {
  return signOp(x);
}

const clampOp = defineOp({
  name: 'clamp',
  forward(ctx: Ctx<{ min: number | null; max: number | null }>, x: Tensor, min: number | null, max: number | null) {
    checkFloat('clamp', 'input', x);
    ctx.save(x);
    ctx.min = min; ctx.max = max;
    const k = kernels(x);
    // As PyTorch's min(max(x, min), max): a NaN bound gives NaN, and with min > max every element is max.
    if (Number.isNaN(min) || Number.isNaN(max)) return wrap(k.Fill(x.shape, NaN, x.dtype), x);
    const hi = max ?? Infinity;
    return wrap(k.Clamp(x, Math.min(min ?? -Infinity, hi), hi), x);
  },
  backward(ctx, g) {
    const [x] = ctx.saved as [Tensor];
    return [mul(g, inside(x, ctx.min, ctx.max))];
  },
  jvp: (ctx, [t], _out, x) => mul(t!, inside(x, ctx.min, ctx.max)),
  jvpElementwise: true,
});

/**
 * 1 where x lies strictly between the bounds given, else 0. PyTorch 2.15 passes no gradient at a
 * bound itself (the minimum-norm subgradient, as relu and hardtanh; before 2.13 it passed it).
 */
function inside(x: Tensor, min: number | null, max: number | null): Tensor {
  const above = min === null ? null : greater(x, min);
  const below = max === null ? null : less(x, max);
  return above && below ? mul(above, below) : (above ?? below)!;
}

/** Limits x to [min, max]; either bound may be omitted (null). */
export function clamp(x: Tensor, min: number | null = null, max: number | null = null): Tensor {
  if (min === null && max === null) throw new Error('clamp: at least one of min and max must be given');
  return clampOp(x, min, max);
}

/** x^2, a common composite. */
export function square(x: Tensor): Tensor {
  return mul(x, x);
}


installMethods({ exp, log, sqrt, rsqrt, abs, relu, sigmoid, tanh, sign, clamp, square, log1p, expm1, sin, cos, erf });

declare module '../tensor.js' {
  interface Tensor {
    exp(): Tensor; log(): Tensor; sqrt(): Tensor; rsqrt(): Tensor; abs(): Tensor; relu(): Tensor;
    sigmoid(): Tensor; tanh(): Tensor; sign(): Tensor; clamp(min?: number | null, max?: number | null): Tensor;
    square(): Tensor; log1p(): Tensor; expm1(): Tensor; sin(): Tensor; cos(): Tensor; erf(): Tensor;
  }
}
