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

/**
 * Same elements under a new shape (one dim may be -1); shares storage, as every tensor is
 * contiguous. The result of permute or expand stands for a strided view in PyTorch: reshaped where
 * PyTorch's reshape must copy (the new shape fits no strides over the same memory), it is copied
 * here too, so an in-place op on the result reaches no base, as there.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const target = inferShape('reshape', x.shape, shape);
  return reshapeOp(stridedCopy(x, target) ? x.clone() : x, target);
}

export function view(x: Tensor, shape: readonly number[]): Tensor {
  const target = inferShape('view', x.shape, shape);
  return reshapeOp(stridedCopy(x, target) ? x.clone() : x, target);
}

/** Whether x is a permuted or expanded copy whose PyTorch view has strides that `target` cannot be laid over. */
function stridedCopy(x: Tensor, target: readonly number[]): boolean {
  const link = x.sliceOf;
  if (!link || 'dim' in link.region) return false;
  const base = link.base.deref();
  if (!base) return false;
  const contiguous = (shape: Shape) => shape.map((_, i) => numel(shape.slice(i + 1)));
  let strides: number[];
  if ('perm' in link.region) {
    const bs = contiguous(base.shape);
    strides = link.region.perm.map((p) => bs[p]!);
  } else {
    // Broadcast dims (new leading ones, and size 1 grown) repeat their element: stride 0.
    const bs = contiguous(base.shape), lead = x.ndim - base.ndim;
    strides = x.shape.map((d, i) => (i < lead || base.shape[i - lead] !== d ? 0 : bs[i - lead]!));
  }
  return !fitsStrides(x.shape, strides, target);
}

/** PyTorch's computeStride: whether `to` can view memory laid out as `shape` with `strides`. */
function fitsStrides(shape: Shape, strides: readonly number[], to: readonly number[]): boolean {
  if (numel(shape) === 0 || shape.length === 0) return true;
  let viewD = to.length - 1;
  let chunkBase = strides[strides.length - 1]!;
  let tensorNumel = 1, viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || to[viewD] === 1)) viewNumel *= to[viewD--]!;
      if (viewNumel !== tensorNumel) return false;
      if (d > 0) {
        chunkBase = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  return viewD === -1;
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
  jvp: (_ctx, [t], out) => expandTo(t!, out.shape),
});

/**
 * Broadcasts to `shape` (-1 keeps a dim), materialized (tensors here are always contiguous), as
 * PyTorch's expand view: the copy sees its base's later in-place changes, and an in-place op on it
 * is refused (PyTorch's elements would share memory). See expandTo for the ops' own temporaries.
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const target = expandedShape(x, shape);
  if (target === null) return x;
  // Only new size-1 dims (no element repeated): a view that shares x's storage, writable, as PyTorch's.
  if (numel(target) === x.size) return reshape(x, target);
  const out = expandOp(x, target);
  out.sliceOf = { base: new WeakRef(x), region: { expand: target }, version: x.version };
  return out;
}

/** expand without the link to x: for values an op makes and hands on (a sum's gradient, broadcast operands). */
export function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  const target = expandedShape(x, shape);
  return target === null ? x : expandOp(x, target);
}

/** The checked target of expanding x to `shape`, or null when it is x's own shape. */
function expandedShape(x: Tensor, shape: readonly number[]): number[] | null {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: target shape ${fmt(shape)} has fewer dims than input ${fmt(x.shape)}`);
  const out = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead]! : d));
  out.forEach((d, i) => {
    // -1 only keeps an existing dim; a new leading dim needs an explicit size, as in PyTorch.
    if (!Number.isInteger(d) || d < 0) throw new Error(`expand: invalid size ${shape[i]} at dim ${i} of target ${fmt(shape)} for input of shape ${fmt(x.shape)}`);
    const s = i >= lead ? x.shape[i - lead]! : 1;
    if (s !== d && s !== 1) throw new Error(`expand: input of shape ${fmt(x.shape)} cannot expand to ${fmt(shape)} (dim ${i}: ${s} vs ${d})`);
  });
  return out.every((d, i) => d === x.shape[i]) && lead === 0 ? null : out;
}

const permuteOp = defineOp({
  name: 'permute',
  forward(ctx: Ctx<{ perm: number[] }>, x: Tensor, perm: number[]) {
    ctx.perm = perm;
    return wrap(kernels(x).Transpose(x, perm), x);
  },
  backward: (ctx, g) => [permuteTo(g, inverse(ctx.perm))],
  jvp: (ctx, [t]) => permuteTo(t!, ctx.perm),
});

/** The permutation that undoes `perm`. */
export function inverse(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => { inv[p] = i; });
  return inv;
}

/**
 * Reorders dims. The result is a contiguous copy that remembers its base, so that it acts as
 * PyTorch's view: an in-place op on it reaches the base, and it sees the base's later changes
 * (ops/view_sync.ts).
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const perm = normPerm(x, dims);
  if (perm.every((p, i) => p === i)) return x;
  const out = permuteOp(x, perm);
  out.sliceOf = { base: new WeakRef(x), region: { perm }, version: x.version };
  return out;
}

function normPerm(x: Tensor, dims: readonly number[]): number[] {
  if (dims.length !== x.ndim) throw new Error(`permute: got ${dims.length} dims [${dims.join(', ')}] for a tensor of shape ${fmt(x.shape)}`);
  const perm = dims.map((d) => normAxis('permute', d, x.ndim));
  if (new Set(perm).size !== perm.length) throw new Error(`permute: dims [${dims.join(', ')}] repeat a dimension`);
  return perm;
}

/**
 * permute without the link to x: for values an op makes and hands on (a gradient, an einsum's
 * operands), which must not write into x or hold it.
 */
export function permuteTo(x: Tensor, dims: readonly number[]): Tensor {
  const perm = normPerm(x, dims);
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
