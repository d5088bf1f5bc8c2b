/** Reductions over dims: sum mean var, max min (with indices) amax amin, argmax argmin, and sumTo for broadcasting. */
import { isHalf } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { fmt, normAxes, normAxis, sameShape, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, mul, sub } from './arith.js';
import { eq, ne, where } from './compare.js';
import { arange } from './creation.js';
import { expand, reshape } from './shape.js';
import { autocasting, checkFloat, checkOptionNames, kernels, wrap } from './util.js';

export type Dims = number | readonly number[];

/** Shape of a reduction's result with or without the reduced dims. */
function reducedShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

const sumOp: (x: Tensor, axes: number[], keepdim: boolean) => Tensor = defineOp({
  name: 'sum',
  forward(ctx: Ctx<{ xShape: Shape; kept: Shape }>, x: Tensor, axes: number[], keepdim: boolean) {
    ctx.xShape = x.shape;
    ctx.kept = reducedShape(x.shape, axes, true);
    const y = wrap(kernels(x).Sum(x, axes), x);
    return keepdim ? y : y.moveAs(reducedShape(x.shape, axes, false));
  },
  backward: (ctx, g) => [expand(reshape(g, ctx.kept), ctx.xShape)],
  jvp: (_ctx, [t], _out, _x, axes, keepdim) => sumOp(t!, axes, keepdim),
});

/** Sum over `dim` (all dims when omitted), int64 for int32; float32 under autocast, as torch's fp32_set_opt_dtype list. */
export const sum = autocasting('float32', (x: Tensor, dim?: Dims, keepdim: boolean = false): Tensor =>
  // As PyTorch, an int32 sum is int64: it would wrap past 2^31 otherwise.
  (x.dtype === 'int32' ? sum(x.to('int64'), dim, keepdim) : sumOp(x, normAxes('sum', dim, x.ndim), keepdim)));

/**
 * Mean over `dim` (all dims when omitted); float32 under autocast. A half input is averaged in
 * float32 and rounded once, as PyTorch does (its sum rounded first would be off by a step).
 */
export const mean = autocasting('float32', (x: Tensor, dim?: Dims, keepdim: boolean = false): Tensor => {
  checkFloat('mean', 'input', x);
  if (isHalf(x.dtype)) return mean(x.to('float32'), dim, keepdim).to(x.dtype);
  const axes = normAxes('mean', dim, x.ndim);
  const n = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
  return div(sum(x, axes, keepdim), n);
});

export interface VarianceOptions {
  /** Subtracted from the count in the divisor: 1 (default) the unbiased estimator, 0 the biased. */
  correction?: number;
  /** PyTorch's older spelling: true is correction 1, false correction 0. */
  unbiased?: boolean;
  keepdim?: boolean;
}

/**
 * Variance over `dim`; `correction` 1 is the unbiased estimator (PyTorch's default), 0 the biased.
 * A half input is computed in float32 and rounded once.
 */
export function variance(x: Tensor, dim?: Dims, opts: VarianceOptions = {}): Tensor {
  if (opts === null || typeof opts !== 'object') throw new Error(`var: options must be an object { correction, unbiased, keepdim }, got ${String(opts)}`);
  checkOptionNames('var', opts, ['correction', 'unbiased', 'keepdim']);
  if (opts.unbiased !== undefined && opts.correction !== undefined) throw new Error('var: give correction or unbiased, not both');
  const correction = opts.correction ?? (opts.unbiased === false ? 0 : 1);
  const keepdim = opts.keepdim ?? false;
  checkFloat('var', 'input', x);
  if (isHalf(x.dtype)) return variance(x.to('float32'), dim, { correction, keepdim }).to(x.dtype);
  const axes = normAxes('var', dim, x.ndim);
  const n = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
  const centered = sub(x, mean(x, axes, true));
  return div(sum(mul(centered, centered), axes, keepdim), Math.max(n - correction, 0));
}

/**
 * amax/amin share the gradient evenly among the elements equal to the extremum (none when it is
 * NaN, so the gradient is NaN); max()/min() over the whole tensor (`nanTies`) count the NaNs as
 * equal to a NaN extremum, as PyTorch's evenly_distribute_backward.
 */
function extremumOp(name: 'amax' | 'amin' | 'max' | 'min', kernel: 'Max' | 'Min', nanTies: boolean) {
  const ties = (x: Tensor, y: Tensor) => (nanTies ? add(eq(x, y), mul(ne(x, x), ne(y, y))) : eq(x, y));
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
      const mask = ties(x, y);
      const count = sum(mask, ctx.axes, true);
      return [div(mul(mask, reshape(g, y.shape)), count)];
    },
    // The mean of the tangents at the tied extrema, as the gradient is shared among them.
    jvp(_ctx, [t], out, x, axes, keepdim) {
      const mask = ties(x, reshape(out, reducedShape(x.shape, axes, true)));
      const r = div(sum(mul(mask, t!), axes, true), sum(mask, axes, true));
      return keepdim ? r : reshape(r, out.shape);
    },
  });
}
const maxOp = extremumOp('amax', 'Max', false);
const minOp = extremumOp('amin', 'Min', false);
const maxAllOp = extremumOp('max', 'Max', true);
const minAllOp = extremumOp('min', 'Min', true);

/**
 * Largest value over `dim` (all dims when omitted), torch.amax: the gradient is shared evenly
 * among the elements equal to it.
 */
export function amax(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return maxOp(x, normAxes('amax', dim, x.ndim), keepdim);
}

/** Smallest value over `dim` (all dims when omitted), torch.amin: ties share the gradient. */
export function amin(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return minOp(x, normAxes('amin', dim, x.ndim), keepdim);
}

/** torch.max(x, dim)'s result: the values and the (int64) index each came from. */
export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

/**
 * The value at `indices` along `axis` (indices keep the reduced dim): the extremum kernel's
 * result, whose gradient goes to the selected element alone (PyTorch's
 * value_selecting_reduction_backward), not shared among ties as amax's is.
 */
function selectingOp(name: 'max' | 'min', kernel: 'Max' | 'Min') {
  return defineOp({
    name,
    forward(ctx: Ctx<{ axis: number; keepdim: boolean }>, x: Tensor, indices: Tensor, axis: number, keepdim: boolean) {
      if (x.shape[axis] === 0) throw new Error(`${name}: cannot reduce over dim ${axis} of size 0 (shape ${fmt(x.shape)})`);
      const y = wrap(kernels(x)[kernel](x, [axis]), x);
      ctx.save(x, indices);
      ctx.axis = axis;
      ctx.keepdim = keepdim;
      return keepdim ? y : y.moveAs(reducedShape(x.shape, [axis], false));
    },
    backward(ctx, g) {
      const [x, indices] = ctx.saved as [Tensor, Tensor];
      const n = x.shape[ctx.axis]!;
      const along = x.shape.map((_, a) => (a === ctx.axis ? n : 1));
      // float32 holds every index exactly (to 2^24); where() passes g only at the chosen one.
      const iota = reshape(arange(0, n, 1, { dtype: 'float32', device: x.device }), along);
      const chosen = eq(iota, indices.to('float32'));
      return [where(chosen, ctx.keepdim ? g : reshape(g, indices.shape), 0), null, null, null];
    },
    // The tangent of the chosen element.
    jvp(_ctx, [t], _out, x, indices, axis, keepdim) {
      const n = x.shape[axis]!;
      const iota = reshape(arange(0, n, 1, { dtype: 'float32', device: x.device }), x.shape.map((_, a) => (a === axis ? n : 1)));
      return sum(where(eq(iota, indices.to('float32')), t!, 0), [axis], keepdim);
    },
  });
}
const maxSelect = selectingOp('max', 'Max');
const minSelect = selectingOp('min', 'Min');

function extremum(name: 'max' | 'min', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor | ValuesIndices {
  if (dim === undefined) return (name === 'max' ? maxAllOp : minAllOp)(x, normAxes(name, undefined, x.ndim), false);
  const axis = normAxis(name, dim, x.ndim);
  if (x.ndim === 0) return extremum(name, reshape(x, [1]), 0, false);
  if (x.shape[axis] === 0) throw new Error(`${name}: cannot reduce over dim ${axis} of size 0 (shape ${fmt(x.shape)})`);
  const indices = argIndex(name === 'max' ? 'argmax' : 'argmin', x, axis, true);
  const values = (name === 'max' ? maxSelect : minSelect)(x, indices, axis, keepdim);
  return { values, indices: keepdim ? indices : indices.moveAs(reducedShape(x.shape, [axis], false)) };
}

/**
 * torch.max: over the whole tensor, the largest value (ties share the gradient, as amax, and a
 * NaN maximum sends it to the NaNs); over
 * `dim`, the values and the index of the first largest element of each slice, and the gradient
 * goes to that element alone. With ties the two rules differ: for x = [[2, 2, 1]], max(x, 1)
 * sends the gradient to [1, 0, 0], amax(x, 1) to [.5, .5, 0].
 */
export function max(x: Tensor): Tensor;
export function max(x: Tensor, dim: number, keepdim?: boolean): ValuesIndices;
export function max(x: Tensor, dim?: number, keepdim = false): Tensor | ValuesIndices {
  return extremum('max', x, dim, keepdim);
}

/** torch.min: as `max`, for the smallest values. */
export function min(x: Tensor): Tensor;
export function min(x: Tensor, dim: number, keepdim?: boolean): ValuesIndices;
export function min(x: Tensor, dim?: number, keepdim = false): Tensor | ValuesIndices {
  return extremum('min', x, dim, keepdim);
}

function argIndex(name: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  // Over the flattened tensor; keepdim gives every dim size 1, as PyTorch.
  if (dim === undefined) {
    const i = argIndex(name, reshape(x, [x.size]), 0, false);
    return keepdim ? reshape(i, x.shape.map(() => 1)) : i;
  }
  const axis = normAxis(name, dim, x.ndim);
  if (x.ndim === 0) return argIndex(name, reshape(x, [1]), 0, false);
  // As amax and PyTorch: no element to point at (argmin over dim 0 of a [2, 0] tensor is fine: empty).
  if (x.shape[axis] === 0) throw new Error(`${name}: cannot reduce over dim ${axis} of size 0 (shape ${fmt(x.shape)})`);
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

installMethods({ sum, mean, var: variance, max, min, amax, amin, argmax, argmin });

declare module '../tensor.js' {
  interface Tensor {
    sum(dim?: Dims, keepdim?: boolean): Tensor; mean(dim?: Dims, keepdim?: boolean): Tensor;
    var(dim?: Dims, opts?: VarianceOptions): Tensor;
    max(): Tensor; max(dim: number, keepdim?: boolean): ValuesIndices;
    min(): Tensor; min(dim: number, keepdim?: boolean): ValuesIndices;
    amax(dim?: Dims, keepdim?: boolean): Tensor; amin(dim?: Dims, keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor; argmin(dim?: number, keepdim?: boolean): Tensor;
  }
}
