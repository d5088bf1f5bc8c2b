/**
 * Indexing: gather, scatterAdd, indexSelect, maskedFill, as PyTorch's, on kernels every backend
 * already has. gather and scatterAdd move the indexed dim last and run on [planes, 1, n] through
 * the kernels max pooling's indices use (MaxPool2DGather copies, MaxPool2DScatter adds in float32
 * or wider): memory of the index's size. Where a device has no pool kernel for the dtype (the
 * integer types, and float64 on 'cpu' and 'cuda'), they pick with one-hot masks through `where` and sum
 * the picks, at O(index elements x size of dim) memory. The entries not picked are -0, which
 * leaves any sum exact (v + -0 is v for every v): a product with the mask would turn an inf or NaN
 * elsewhere in the row into NaN. indexSelect slices (indexSelectOp).
 */
import { supports } from '../backend.js';
import { fillOverflow, isHalf, type DType } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { fmt, normAxis, numel, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add } from './arith.js';
import { where } from './compare.js';
import { narrow, pad } from './join.js';
import { oneHot } from './loss.js';
import { matmul } from './matmul.js';
import { sum } from './reduce.js';
import { planeIndexOps } from './pool.js';
import { permute, unsqueeze } from './shape.js';
import { checkSame, checkTensor, kernels, wrap, type TensorLike } from './util.js';

/** Checks that index is an integer tensor with values in [0, size), reading it to the host as PyTorch's CPU ops do. */
function checkIndex(op: string, index: Tensor, size: number, dim: number, input: Tensor): void {
  checkTensor(op, 'index', index);
  if (index.device !== input.device) throw new Error(`${op}: index is on ${index.device} but input is on ${input.device}`);
  if (index.dtype !== 'int64' && index.dtype !== 'int32') {
    throw new Error(`${op}: index must be an int64 or int32 tensor, got ${index.dtype} of shape ${fmt(index.shape)}`);
  }
  for (const v of index.dataSync()) {
    if (v < 0 || v >= size) throw new Error(`${op}: index ${v} is out of bounds for dim ${dim} of size ${size}`);
  }
}

/** [..., n] one-hot rows for the index, in dtype. */
function hot(index: Tensor, n: number, dtype: DType): Tensor {
  return oneHot(index, n).to(dtype);
}

/** x where the mask is 1, else -0 (broadcast). */
function pick(mask: Tensor, x: Tensor): Tensor {
  return where(mask, x, -0);
}

/** Moves dim `from` to the end. */
function toLast(x: Tensor, from: number): Tensor {
  return permute(x, [...x.shape.keys()].filter((i) => i !== from).concat(from));
}

/** Moves the last dim to `to`. */
function fromLast(x: Tensor, to: number): Tensor {
  const rest = [...x.shape.keys()].slice(0, -1);
  rest.splice(to, 0, x.ndim - 1);
  return permute(x, rest);
}

/**
 * Checks index against t (same ndim; no larger than t in every dim but `skip`, if any) and returns
 * t cut to index's extent there.
 */
function alignTo(op: string, t: Tensor, skip: number | null, index: Tensor, name: string): Tensor {
  if (index.ndim !== t.ndim) {
    throw new Error(`${op}: index of shape ${fmt(index.shape)} must have as many dims as ${name} of shape ${fmt(t.shape)}`);
  }
  let cut = t;
  index.shape.forEach((s, i) => {
    if (i === skip) return;
    if (s > t.shape[i]!) throw new Error(`${op}: index of shape ${fmt(index.shape)} is larger than ${name} of shape ${fmt(t.shape)} in dim ${i}`);
    if (s < t.shape[i]!) cut = narrow(cut, i, 0, s);
  });
  return cut;
}

// y[p][0][j] = x[p][0][index[p][0][j]] on [P, 1, n] planes, and its adjoint, the scatter-add into n.
const { gather: planeGather, scatter: planeScatter } = planeIndexOps('gather', 'scatterAdd');

/** Whether x's device runs gather and scatterAdd on planes in x's dtype (else the one-hot picks). */
function onPlanes(x: Tensor, index: Tensor): boolean {
  return x.ndim > 0 && index.size > 0 && supports(x.backend, 'MaxPool2DGather', x.dtype) &&
    supports(x.backend, 'MaxPool2DScatter', x.dtype);
}

/** [planes, 1, n] for t with dim d moved last: planes from t's other dims. */
function planeShape(t: Tensor, d: number, n: number): Shape {
  return [numel(t.shape.filter((_, i) => i !== d)), 1, n];
}

/** t with dim d moved last, as [planes, 1, size of d]. */
function asPlanes(t: Tensor, d: number): Tensor {
  return toLast(t, d).reshape(planeShape(t, d, t.shape[d]!));
}

/** out[i][j] = x[i][index[i][j]] for dim 1, and so on for any dim (torch.gather). */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkTensor('gather', 'input', x);
  const d = normAxis('gather', dim, Math.max(x.ndim, 1));
  checkIndex('gather', index, x.shape[d] ?? 1, d, x);
  if (x.ndim === 0) return gather(x.reshape([1]), 0, index.reshape([1])).reshape([]);
  const rows = alignTo('gather', x, d, index, 'input');
  if (onPlanes(x, index)) {
    const lead = toLast(index, d).shape;
    return fromLast(planeGather(asPlanes(rows, d), asPlanes(index, d)).reshape(lead), d);
  }
  // [..., 1 at d, ..., n] picked by the index's one-hot rows [..., m at d, ..., n], summed over n.
  return sum(pick(hot(index, x.shape[d]!, x.dtype), unsqueeze(toLast(rows, d), d)), -1);
}

/**
 * x with src's elements added at the places index names along dim (torch.scatter_add): for dim 0,
 * out[index[i][j]][j] += src[i][j]. Gradients: x gets g, src gets gather(g, dim, index).
 */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkTensor('scatterAdd', 'input', x);
  checkTensor('scatterAdd', 'src', src);
  const d = normAxis('scatterAdd', dim, Math.max(x.ndim, 1));
  checkIndex('scatterAdd', index, x.shape[d] ?? 1, d, x);
  checkSame('scatterAdd', { input: x, src });
  if (x.ndim === 0) return scatterAdd(x.reshape([1]), 0, index.reshape([1]), src.reshape([1])).reshape([]);
  alignTo('scatterAdd', x, d, index, 'input');
  const s = alignTo('scatterAdd', src, null, index, 'src');
  let placed: Tensor; // index's shape with x.shape[d] at d
  if (onPlanes(x, index)) {
    const lead = toLast(index, d).shape.slice(0, -1);
    placed = fromLast(planeScatter(asPlanes(s, d), asPlanes(index, d), planeShape(s, d, x.shape[d]!)).reshape([...lead, x.shape[d]!]), d);
  } else {
    // Each src element spread over its one-hot row, then summed over the index's dim d.
    const spread = sum(pick(hot(index, x.shape[d]!, x.dtype), unsqueeze(s, -1)), d, true); // [..., 1 at d, ..., n]
    placed = fromLast(spread.squeeze(d), d);
  }
  const pads: number[] = [];
  for (let i = x.ndim - 1; i >= 0; i--) pads.push(0, x.shape[i]! - placed.shape[i]!);
  return add(x, pads.some((p) => p !== 0) ? pad(placed, pads) : placed);
}

/**
 * indexSelect's forward copies each run of consecutive indices with one Slice and joins the runs
 * (memory: the output's size); its backward adds the gradient's columns into the rows they came
 * from: on planes as gather's backward, where the device has the pool kernels for the dtype; else
 * as a matmul by the one-hot [m, n] where it has one in that dtype (float32 for a half type), or
 * by picks. An inf or NaN in the gradient spreads to the other rows through the matmul (inf x 0),
 * as it does not in PyTorch's index_add.
 */
const indexSelectOp: (x: Tensor, d: number, index: Tensor, at: readonly number[]) => Tensor = defineOp({
  name: 'indexSelect',
  forward(ctx: Ctx<{ d: number; n: number; index: Tensor; at: readonly number[] }>, x: Tensor, d: number, index: Tensor,
    at: readonly number[]) {
    Object.assign(ctx, { d, n: x.shape[d]!, index, at });
    const k = kernels(x);
    const begin = x.shape.map(() => 0), step = x.shape.map(() => 1);
    const run = (start: number, length: number) => {
      begin[d] = start;
      return wrap(k.Slice(x, begin, x.shape.map((s, i) => (i === d ? length : s)), step), x);
    };
    const parts: Tensor[] = [];
    for (let j = 0, e = 1; j < at.length; j = e, e = j + 1) {
      while (e < at.length && at[e] === at[e - 1]! + 1) e++;
      parts.push(run(at[j]!, e - j));
    }
    if (parts.length <= 1) return parts[0] ?? run(0, 0);
    return wrap(k.Concat(parts, d), x);
  },
  backward(ctx, g) {
    const { d, n, index } = ctx;
    const gl = toLast(g, d), i = index.reshape([-1]); // [..., m]
    let gx: Tensor;
    if (onPlanes(g, i)) {
      const planes = asPlanes(g, d); // [P, 1, m], each plane scattered by the same index
      gx = planeScatter(planes, i.reshape([1, 1, -1]).expand(planes.shape), [planes.shape[0]!, 1, n]).reshape([...gl.shape.slice(0, -1), n]);
    } else if (supports(g.backend, 'BatchMatMul', g.dtype)) gx = matmul(gl, hot(i, n, g.dtype));
    else if (isHalf(g.dtype) && supports(g.backend, 'BatchMatMul', 'float32')) gx = matmul(gl.to('float32'), hot(i, n, 'float32')).to(g.dtype);
    else gx = sum(pick(hot(i, n, g.dtype).transpose(0, 1), unsqueeze(gl, -2)), -1); // [..., n, m] summed over m
    return [fromLast(gx, d), null, null, null];
  },
  jvp: (ctx, [t]) => indexSelectOp(t!, ctx.d, ctx.index, ctx.at),
});

/** The entries of x at the given positions along dim, in the index's order (torch.index_select). */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkTensor('indexSelect', 'input', x);
  if (index.ndim > 1) throw new Error(`indexSelect: index must be 0-d or 1-d, got shape ${fmt(index.shape)}`);
  const d = normAxis('indexSelect', dim, Math.max(x.ndim, 1));
  const n = x.ndim === 0 ? 1 : x.shape[d]!;
  checkIndex('indexSelect', index, n, d, x);
  if (x.ndim === 0) {
    if (index.size !== 1) throw new Error(`indexSelect: a 0-d input takes one index, got ${index.size}`);
    return x.reshape([]).expand(index.ndim === 0 ? [] : [1]);
  }
  return indexSelectOp(x, d, index, Array.from(index.dataSync()));
}

/** value where mask is nonzero (broadcast to x's shape), x elsewhere (torch.masked_fill). */
export function maskedFill(x: Tensor, mask: Tensor, value: TensorLike): Tensor {
  checkTensor('maskedFill', 'input', x);
  checkTensor('maskedFill', 'mask', mask);
  // As torch.masked_fill: the value is converted to the input's dtype, a number checked as a fill is.
  if (typeof value === 'number') {
    const overflow = fillOverflow(value, x.dtype);
    if (overflow) throw new Error(`maskedFill: ${overflow}`);
  } else if (value.ndim !== 0) {
    throw new Error(`maskedFill: value must be a number or a 0-d tensor, got shape ${fmt(value.shape)}`);
  }
  const v = typeof value === 'number' || value.dtype === x.dtype ? value : value.to(x.dtype);
  // The result has the shape the input and mask broadcast to, as torch.masked_fill's.
  return where(mask, v, x);
}

installMethods({ gather, scatterAdd, indexSelect, maskedFill });

declare module '../tensor.js' {
  interface Tensor {
    gather(dim: number, index: Tensor): Tensor; scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor; maskedFill(mask: Tensor, value: TensorLike): Tensor;
  }
}
