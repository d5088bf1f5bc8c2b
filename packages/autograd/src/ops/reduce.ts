/** Reductions over dims: sum mean max min var, argmax argmin, and sumTo for broadcasting. */
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { fmt, normAxes, normAxis, sameShape, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { div, mul, sub } from './arith.js';
import { eq } from './compare.js';
import { expand, reshape } from './shape.js';
import { autocasting, checkFloat, kernels, wrap } from './util.js';

export type Dims = number | readonly number[];

/** Shape of a reduction's result with or without the reduced dims. */
function reducedShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

const sumOp = defineOp({
  name: 'sum',
  forward(ctx: Ctx<{ xShape: Shape; kept: Shape }>, x: Tensor, axes: number[], keepdim: boolean) {
    ctx.xShape = x.shape;
    ctx.kept = reducedShape(x.shape, axes, true);
    const y = wrap(kernels(x).Sum(x, axes), x);
    return keepdim ? y : y.moveAs(reducedShape(x.shape, axes, false));
  },
  backward: (ctx, g) => [expand(reshape(g, ctx.kept), ctx.xShape)],
});

/** Sum over `dim` (all dims when omitted); float32 under autocast, as torch's fp32_set_opt_dtype list. */
export const sum = autocasting('float32', (x: Tensor, dim?: Dims, keepdim: boolean = false): Tensor =>
  sumOp(x, normAxes('sum', dim, x.ndim), keepdim));

/** Mean over `dim` (all dims when omitted); float32 under autocast. */
export const mean = autocasting('float32', (x: Tensor, dim?: Dims, keepdim: boolean = false): Tensor => {
  checkFloat('mean', 'input', x);
  const axes = normAxes('mean', dim, x.ndim);
  const n = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
  return div(sum(x, axes, keepdim), n);
});

/**
 * Variance over `dim`; `correction` 1 is the unbiased estimator (PyTorch's default), 0 the biased.
 */
export function variance(x: Tensor, dim?: Dims, { correction = 1, keepdim = false } = {}): Tensor {
  checkFloat('var', 'input', x);
  const axes = normAxes('var', dim, x.ndim);
  const n = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
  const centered = sub(x, mean(x, axes, true));
  return div(sum(mul(centered, centered), axes, keepdim), Math.max(n - correction, 0));
}

function extremumOp(name: 'max' | 'min', kernel: 'Max' | 'Min') {
  return defineOp({
    name,
    forward(ctx: Ctx<{ axes: number[] }>, x: Tensor, axes: number[], keepdim: boolean) {
      for (const a of axes) {
        if (x.shape[a] === 0) throw new Error(`${name}: cannot reduce over dim ${a} of size 0 (shape ${fmt(x.shape)})`);
      }
      const y = wrap(kernels(x)[kernel](x, axes), x);
      ctx.save(x, y);
      ctx.axes = axes;
      return keepdim ? y : y.moveAs(reducedShape(x.shape, axes, false));
    },
    backward(ctx, g) {
      const [x, y] = ctx.saved as [Tensor, Tensor];
      // The gradient is shared evenly among the elements equal to the extremum (PyTorch's amax rule).
      const mask = eq(x, y);
      const count = sum(mask, ctx.axes, true);
      return [div(mul(mask, reshape(g, y.shape)), count)];
    },
  });
}
const maxOp = extremumOp('max', 'Max');
const minOp = extremumOp('min', 'Min');

/** Largest value over `dim` (all dims when omitted). For indices use `argmax`. */
export function max(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return maxOp(x, normAxes('max', dim, x.ndim), keepdim);
}

export function min(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return minOp(x, normAxes('min', dim, x.ndim), keepdim);
}

function argIndex(name: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (dim === undefined) return argIndex(name, reshape(x, [x.size]), 0, false);
  const axis = normAxis(name, dim, x.ndim);
  const k = kernels(x);
  const y = wrap(name === 'argmax' ? k.ArgMax(x, axis) : k.ArgMin(x, axis), x);
  return keepdim ? y : y.moveAs(reducedShape(x.shape, [axis], false));
}

/** Index (int64) of the first largest element along `dim`, or of the flattened tensor. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argIndex('argmax', x, dim, keepdim);
}

export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argIndex('argmin', x, dim, keepdim);
}

/** Sums a broadcast gradient back down to `shape`: the adjoint of broadcasting. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(axes.length ? sum(g, axes, true) : g, shape);
}

installMethods({ sum, mean, var: variance, max, min, argmax, argmin });

declare module '../tensor.js' {
  interface Tensor {
    sum(dim?: Dims, keepdim?: boolean): Tensor; mean(dim?: Dims, keepdim?: boolean): Tensor;
    var(dim?: Dims, opts?: { correction?: number; keepdim?: boolean }): Tensor;
    max(dim?: Dims, keepdim?: boolean): Tensor; min(dim?: Dims, keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor; argmin(dim?: number, keepdim?: boolean): Tensor;
  }
}
