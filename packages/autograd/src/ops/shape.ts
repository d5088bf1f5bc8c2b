/** Views and layout: reshape view flatten squeeze unsqueeze (sharing storage), expand, permute, transpose. */
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { fmt, normAxis, numel, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';
import { kernels, wrap } from './util.js';

/** Resolves one -1 and checks the element count. */
function inferShape(op: string, from: Shape, to: readonly number[]): number[] {
  const free = to.filter((d) => d === -1).length;
  if (free > 1) throw new Error(`${op}: only one dimension can be -1, got ${fmt(to)}`);
  const known = to.reduce((acc, d) => (d === -1 ? acc : acc * d), 1);
  if (free && known === 0) {
    throw new Error(`${op}: cannot reshape ${fmt(from)} (${numel(from)} elements) into ${fmt(to)}: with a 0 among the other ` +
      'dims, the size of -1 could be anything');
  }
  const out = to.map((d) => (d === -1 ? numel(from) / known : d));
  if (out.some((d) => !Number.isInteger(d) || d < 0) || numel(out) !== numel(from)) {
    throw new Error(`${op}: shape ${fmt(to)} is invalid for input of shape ${fmt(from)} (${numel(from)} elements)`);
  }
  return out;
}

const reshapeOp = defineOp({
  name: 'reshape',
  forward(ctx: Ctx<{ xShape: Shape }>, x: Tensor, shape: number[]) {
    ctx.xShape = x.shape;
    const v = x.aliasAs(shape);
    v.viewBase = x.viewBase ?? x;
    v.viewVersion = x.version;
    return v;
  },
  backward: (ctx, g) => [reshape(g, ctx.xShape)],
  jvp: (_ctx, [t], out) => reshape(t!, out.shape),
});

/** Same elements under a new shape (one dim may be -1); shares storage, as every tensor is contiguous. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return reshapeOp(x, inferShape('reshape', x.shape, shape));
}

export function view(x: Tensor, shape: readonly number[]): Tensor {
  return reshapeOp(x, inferShape('view', x.shape, shape));
}

/** Merges dims startDim..endDim into one. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const s = normAxis('flatten', startDim, x.ndim);
  const e = normAxis('flatten', endDim, x.ndim);
  if (x.ndim === 0) return reshape(x, [1]); // dims 0 and -1 only, as PyTorch
  if (s > e) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/** Removes size-1 dims (all of them, or the given one if it has size 1). */
export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', dim, x.ndim);
  return x.shape[a] === 1 ? reshape(x, x.shape.filter((_, i) => i !== a)) : x;
}

/** Inserts a size-1 dim at `dim` (in [-ndim-1, ndim]). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const a = normAxis('unsqueeze', dim, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

const expandOp = defineOp({
  name: 'expand',
  forward(ctx: Ctx<{ xShape: Shape }>, x: Tensor, shape: number[]) {
    ctx.xShape = x.shape;
    return wrap(kernels(x).BroadcastTo(x, shape), x);
  },
  backward: (ctx, g) => [sumTo(g, ctx.xShape)],
  jvp: (_ctx, [t], out) => expand(t!, out.shape),
});

/** Broadcasts to `shape` (-1 keeps a dim), materialized: tensors here are always contiguous. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: target shape ${fmt(shape)} has fewer dims than input ${fmt(x.shape)}`);
  const out = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead]! : d));
  out.forEach((d, i) => {
    // -1 only keeps an existing dim; a new leading dim needs an explicit size, as in PyTorch.
    if (!Number.isInteger(d) || d < 0) throw new Error(`expand: invalid size ${shape[i]} at dim ${i} of target ${fmt(shape)} for input of shape ${fmt(x.shape)}`);
    const s = i >= lead ? x.shape[i - lead]! : 1;
    if (s !== d && s !== 1) throw new Error(`expand: input of shape ${fmt(x.shape)} cannot expand to ${fmt(shape)} (dim ${i}: ${s} vs ${d})`);
  });
  return out.every((d, i) => d === x.shape[i]) && lead === 0 ? x : expandOp(x, out);
}

const permuteOp = defineOp({
  name: 'permute',
  forward(ctx: Ctx<{ perm: number[] }>, x: Tensor, perm: number[]) {
    ctx.perm = perm;
    return wrap(kernels(x).Transpose(x, perm), x);
  },
  backward(ctx, g) {
    const inv = new Array<number>(ctx.perm.length);
    (ctx.perm as number[]).forEach((p, i) => { inv[p] = i; });
    return [permute(g, inv)];
  },
  jvp: (ctx, [t]) => permute(t!, ctx.perm),
});

/** Reorders dims; the result is a contiguous copy. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: got ${dims.length} dims [${dims.join(', ')}] for a tensor of shape ${fmt(x.shape)}`);
  const perm = dims.map((d) => normAxis('permute', d, x.ndim));
  if (new Set(perm).size !== perm.length) throw new Error(`permute: dims [${dims.join(', ')}] repeat a dimension`);
  return perm.every((p, i) => p === i) ? x : permuteOp(x, perm);
}

/** Swaps two dims. */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normAxis('transpose', dim0, x.ndim);
  const b = normAxis('transpose', dim1, x.ndim);
  if (x.ndim === 0) return permute(x, []); // dim 0 or -1 of a 0-d tensor: itself, as PyTorch
  const perm = x.shape.map((_, i) => i);
  [perm[a], perm[b]] = [perm[b]!, perm[a]!];
  return permute(x, perm);
}

installMethods({ reshape, view, flatten, squeeze, unsqueeze, expand, permute, transpose });

declare module '../tensor.js' {
  interface Tensor {
    reshape(shape: readonly number[]): Tensor; view(shape: readonly number[]): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor; squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor; expand(shape: readonly number[]): Tensor;
    permute(dims: readonly number[]): Tensor; transpose(dim0: number, dim1: number): Tensor;
  }
}
