/**
 * 2-D pooling over the last two dims of [N, C, H, W] (or [C, H, W]). Each pooling op and its
 * backward are a linear adjoint pair of kernels (for max pooling, at fixed argmax positions), so
 * each one's VJP is the other:
 *   max:      gather at the argmax (MaxPool2DGather)  <->  scatter-add to it (MaxPool2DScatter)
 *   average:  AvgPool2D                               <->  AvgPool2DBackward
 *   adaptive: AdaptiveAvgPool2D                       <->  AdaptiveAvgPool2DBackward
 * and gradients of any order stay on kernels. maxPool2d itself trains through MaxPool2D and
 * MaxPool2DBackward(dy, x, y), the form cuDNN's pooling takes, and keeps no indices.
 */
import type { Pool2DParams } from '../backend.js';
import { isHalf } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { fmt, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { mul } from './arith.js';
import { tensor } from './creation.js';
import { pair, type Size2 } from './nn_util.js';
import { checkFloat, checkTensor, kernels, wrap } from './util.js';

export interface MaxPool2dOptions {
  /** Defaults to kernelSize. */
  stride?: Size2 | null;
  padding?: Size2;
  dilation?: Size2;
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  stride?: Size2 | null;
  padding?: Size2;
  ceilMode?: boolean;
  /** Count the zero padding in the divisor (PyTorch's default, true). */
  countIncludePad?: boolean;
  /** Divide every window's sum by this integer instead of its size (countIncludePad is then moot). */
  divisorOverride?: number | null;
}

function checkInput(op: string, x: Tensor): void {
  checkTensor(op, 'input', x);
  checkFloat(op, 'input', x);
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new Error(`${op}: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got input of shape ${fmt(x.shape)}`);
  }
}

/**
 * PyTorch's pooling output size along one dim; in ceil mode a last window that would start in
 * the right padding is dropped.
 */
function poolOut(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let o = Math.floor((n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

/** Parses and checks the window parameters against the input, as PyTorch's pool2d_shape_check. */
function poolParams(op: string, x: Tensor, kernelSize: Size2, o: MaxPool2dOptions & AvgPool2dOptions): Pool2DParams {
  const kernel = pair(op, 'kernelSize', kernelSize, 1);
  const stride = o.stride == null ? kernel : pair(op, 'stride', o.stride, 1);
  const padding = pair(op, 'padding', o.padding ?? 0, 0);
  const dilation = pair(op, 'dilation', o.dilation ?? 1, 1);
  if (padding[0] > Math.floor(kernel[0] / 2) || padding[1] > Math.floor(kernel[1] / 2)) {
    throw new Error(`${op}: pad should be smaller than or equal to half of kernel size, but got padding ` +
      `${fmt(padding)} with kernelSize ${fmt(kernel)} (input of shape ${fmt(x.shape)})`);
  }
  const ceilMode = o.ceilMode ?? false;
  const [H, W] = x.shape.slice(-2) as [number, number];
  const oh = poolOut(H, kernel[0], stride[0], padding[0], dilation[0], ceilMode);
  const ow = poolOut(W, kernel[1], stride[1], padding[1], dilation[1], ceilMode);
  if (oh < 1 || ow < 1) {
    throw new Error(`${op}: output size [${oh}, ${ow}] is too small: input of shape ${fmt(x.shape)} with kernelSize ` +
      `${fmt(kernel)}, stride ${fmt(stride)}, padding ${fmt(padding)}, dilation ${fmt(dilation)}`);
  }
  return { kernel, stride, padding, dilation, ceilMode, countIncludePad: o.countIncludePad ?? true };
}

// ---- max pooling: y = gather(x, idx); dx = scatter(dy, idx); both linear for fixed idx.

const maxPool2dOp = defineOp({
  name: 'maxPool2d',
  forward(ctx: Ctx<{ p: Pool2DParams; y: Tensor; yVersion: number }>, x: Tensor, p: Pool2DParams) {
    const y = wrap(kernels(x).MaxPool2D(x, p), x);
    ctx.save(x);
    ctx.p = p;
    // y is kept without the version check: if it was changed in place, backward recomputes it.
    ctx.y = ctx.keep(y);
    ctx.yVersion = y.version;
    return y;
  },
  backward(ctx, g): (Tensor | null)[] {
    const [x] = ctx.saved as [Tensor];
    const y = ctx.y.version === ctx.yVersion ? ctx.y : wrap(kernels(x).MaxPool2D(x, ctx.p), x);
    return [maxPool2dBackwardOp(g, x, y, ctx.p), null];
  },
  // The tangent of the element each window picked.
  jvp: (ctx, [t], _out, x) => maxPool2dGatherOp(t!, wrap(kernels(x).MaxPool2DWithIndices(x, ctx.p).indices, x)),
});

/** max pooling's gradient; its own VJP with respect to dy gathers at the argmax of x. */
const maxPool2dBackwardOp: (dy: Tensor, x: Tensor, y: Tensor, p: Pool2DParams) => Tensor = defineOp({
  name: 'maxPool2dBackward',
  forward(ctx: Ctx<{ p: Pool2DParams }>, dy: Tensor, x: Tensor, y: Tensor, p: Pool2DParams) {
    ctx.save(x);
    ctx.p = p;
    return wrap(kernels(dy).MaxPool2DBackward(dy, x, y, p), dy);
  },
  backward(ctx, g): (Tensor | null)[] {
    const [x] = ctx.saved as [Tensor];
    const indices = wrap(kernels(x).MaxPool2DWithIndices(x, ctx.p).indices, x);
    return [maxPool2dGatherOp(g, indices), null, null, null];
  },
  // Linear in dy; x and y move the windows' choice only on a set of measure zero.
  jvp: (ctx, [t], _out, _dy, x, y) => (t ? maxPool2dBackwardOp(t, x, y, ctx.p) : null),
});

// With indices, as PyTorch's return_indices. The indices are no output of the node (they carry
// no gradient): the op hands them back through `out`.
const maxPool2dWithIndicesOp = defineOp({
  name: 'maxPool2d',
  forward(ctx: Ctx<{ indices: Tensor; xShape: Shape }>, x: Tensor, p: Pool2DParams, out: { indices?: Tensor }) {
    const { y, indices } = kernels(x).MaxPool2DWithIndices(x, p);
    ctx.indices = out.indices = ctx.keep(wrap(indices, x));
    ctx.xShape = x.shape;
    return wrap(y, x);
  },
  backward: (ctx, g): (Tensor | null)[] => [maxPool2dScatterOp(g, ctx.indices, ctx.xShape), null, null],
  jvp: (ctx, [t]) => maxPool2dGatherOp(t!, ctx.indices),
});

/**
 * A gather at flat plane indices (MaxPool2DGather) and its adjoint, the scatter-add to them
 * (MaxPool2DScatter), each the other's VJP: max pooling's with indices, and under other names
 * gather's, scatterAdd's and indexSelect's on [planes, 1, n] (indexing.ts).
 */
export function planeIndexOps(gatherName: string, scatterName: string): {
  gather: (x: Tensor, indices: Tensor) => Tensor;
  scatter: (dy: Tensor, indices: Tensor, xShape: Shape) => Tensor;
} {
  const gather: (x: Tensor, indices: Tensor) => Tensor = defineOp({
    name: gatherName,
    forward(ctx: Ctx<{ indices: Tensor; xShape: Shape }>, x: Tensor, indices: Tensor) {
      ctx.indices = ctx.keep(indices);
      ctx.xShape = x.shape;
      return wrap(kernels(x).MaxPool2DGather(x, indices), x);
    },
    backward: (ctx, g): (Tensor | null)[] => [scatter(g, ctx.indices, ctx.xShape), null],
    jvp: (ctx, [t]) => gather(t!, ctx.indices),
  });
  const scatter: (dy: Tensor, indices: Tensor, xShape: Shape) => Tensor = defineOp({
    name: scatterName,
    forward(ctx: Ctx<{ indices: Tensor }>, dy: Tensor, indices: Tensor, xShape: Shape) {
      ctx.indices = ctx.keep(indices);
      return wrap(kernels(dy).MaxPool2DScatter(dy, indices, xShape), dy);
    },
    backward: (ctx, g): (Tensor | null)[] => [gather(g, ctx.indices), null, null],
    jvp: (ctx, [t], _out, _dy, _indices, xShape) => (t ? scatter(t, ctx.indices, xShape) : null),
  });
  return { gather, scatter };
}
const { gather: maxPool2dGatherOp, scatter: maxPool2dScatterOp } = planeIndexOps('maxPool2dGather', 'maxPool2dBackward');

/** The max over each window, with its flat index into the input plane (H*W), as PyTorch's return_indices. */
export function maxPool2dWithIndices(x: Tensor, kernelSize: Size2, opts: MaxPool2dOptions = {}): [Tensor, Tensor] {
  checkInput('maxPool2d', x);
  const out: { indices?: Tensor } = {};
  const y = maxPool2dWithIndicesOp(x, poolParams('maxPool2d', x, kernelSize, opts), out);
  return [y, out.indices!];
}

/**
 * Max pooling over kH x kW windows, as F.max_pool2d.
 * @example maxPool2d(x, 3, { stride: 2, padding: 1 })
 */
export function maxPool2d(x: Tensor, kernelSize: Size2, opts: MaxPool2dOptions = {}): Tensor {
  checkInput('maxPool2d', x);
  return maxPool2dOp(x, poolParams('maxPool2d', x, kernelSize, opts));
}

/**
 * maxPool2d's gradient: scatters dy into zeros of `xShape` at the saved plane indices. Its own
 * gradient with respect to dy gathers at the same indices, so second derivatives work.
 */
export function maxPool2dBackward(dy: Tensor, indices: Tensor, xShape: Shape): Tensor {
  const op = 'maxPool2dBackward';
  checkTensor(op, 'gradOutput', dy);
  checkTensor(op, 'indices', indices);
  checkFloat(op, 'gradOutput', dy);
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') {
    throw new Error(`${op}: indices must be int64 or int32, got ${indices.dtype}`);
  }
  const planes = (s: Shape) => s.slice(0, -2).join();
  if (dy.shape.join() !== indices.shape.join() || (xShape.length !== 3 && xShape.length !== 4) ||
      dy.ndim !== xShape.length || planes(dy.shape) !== planes(xShape)) {
    throw new Error(`${op}: gradOutput ${fmt(dy.shape)} and indices ${fmt(indices.shape)} must have one shape, ` +
      `with the leading dims of the input shape ${fmt(xShape)}`);
  }
  return maxPool2dScatterOp(dy, indices, [...xShape]);
}

// ---- average pooling

const avgPool2dOp: (x: Tensor, p: Pool2DParams) => Tensor = defineOp({
  name: 'avgPool2d',
  forward(ctx: Ctx<{ xShape: Shape; p: Pool2DParams }>, x: Tensor, p: Pool2DParams) {
    ctx.xShape = x.shape;
    ctx.p = p;
    return wrap(kernels(x).AvgPool2D(x, p), x);
  },
  backward: (ctx, g): (Tensor | null)[] => [avgPool2dBackwardOp(g, ctx.xShape, ctx.p), null],
  jvp: (ctx, [t]) => avgPool2dOp(t!, ctx.p),
});

const avgPool2dBackwardOp: (dy: Tensor, xShape: Shape, p: Pool2DParams) => Tensor = defineOp({
  name: 'avgPool2dBackward',
  forward(ctx: Ctx<{ p: Pool2DParams }>, dy: Tensor, xShape: Shape, p: Pool2DParams) {
    ctx.p = p;
    return wrap(kernels(dy).AvgPool2DBackward(dy, xShape, p), dy);
  },
  backward: (ctx, g): (Tensor | null)[] => [avgPool2dOp(g, ctx.p), null, null],
  jvp: (ctx, [t], _out, _dy, xShape) => (t ? avgPool2dBackwardOp(t, xShape, ctx.p) : null),
});

/**
 * Average pooling over kH x kW windows, as F.avg_pool2d.
 * @example avgPool2d(x, 2, { ceilMode: true, countIncludePad: false })
 */
export function avgPool2d(x: Tensor, kernelSize: Size2, opts: AvgPool2dOptions = {}): Tensor {
  checkInput('avgPool2d', x);
  const d = opts.divisorOverride;
  if (d == null) return avgPool2dOp(x, poolParams('avgPool2d', x, kernelSize, opts));
  if (!Number.isInteger(d) || d === 0) throw new Error(`avgPool2d: divisorOverride must be a nonzero integer, got ${d}`);
  // The windows' means with the padding counted, times size / d: each window's sum over d. The
  // kernels stay the plain average's, so every backend and every order of gradient has it.
  const p = poolParams('avgPool2d', x, kernelSize, { ...opts, countIncludePad: true });
  return scaleWindows(avgPool2dOp(x, p), x.shape, p, d);
}

/** y times each window's size (as the count_include_pad divisor: clipped at the padded edge) over d. */
function scaleWindows(y: Tensor, xShape: Shape, p: Pool2DParams, d: number): Tensor {
  const [OH, OW] = y.shape.slice(-2) as [number, number];
  const sizes = (o: number, n: number, k: number, s: number, pad: number) =>
    Array.from({ length: o }, (_, i) => Math.min(i * s - pad + k, n + pad) - (i * s - pad));
  const hs = sizes(OH, xShape.at(-2)!, p.kernel[0], p.stride[0], p.padding[0]);
  const ws = sizes(OW, xShape.at(-1)!, p.kernel[1], p.stride[1], p.padding[1]);
  // A half y is scaled in float32 and rounded once more: size / d need not be a half value.
  const dtype = isHalf(y.dtype) ? 'float32' : y.dtype;
  const factor = tensor(hs.map((h) => ws.map((w) => (h * w) / d)), { dtype, device: y.device });
  return dtype === y.dtype ? mul(y, factor) : mul(y.to(dtype), factor).to(y.dtype);
}

// ---- adaptive average pooling: bins [floor(i n / o), ceil((i + 1) n / o)) cover any output size.

const adaptiveAvgPool2dOp: (x: Tensor, size: [number, number]) => Tensor = defineOp({
  name: 'adaptiveAvgPool2d',
  forward(ctx: Ctx<{ xShape: Shape }>, x: Tensor, size: [number, number]) {
    ctx.xShape = x.shape;
    return wrap(kernels(x).AdaptiveAvgPool2D(x, size), x);
  },
  backward: (ctx, g): (Tensor | null)[] => [adaptiveAvgPool2dBackwardOp(g, ctx.xShape), null],
  jvp: (_ctx, [t], _out, _x, size) => adaptiveAvgPool2dOp(t!, size),
});

const adaptiveAvgPool2dBackwardOp: (dy: Tensor, xShape: Shape) => Tensor = defineOp({
  name: 'adaptiveAvgPool2dBackward',
  forward(ctx: Ctx<{ size: [number, number] }>, dy: Tensor, xShape: Shape) {
    ctx.size = [dy.shape[dy.ndim - 2]!, dy.shape[dy.ndim - 1]!];
    return wrap(kernels(dy).AdaptiveAvgPool2DBackward(dy, xShape), dy);
  },
  backward: (ctx, g): (Tensor | null)[] => [adaptiveAvgPool2dOp(g, ctx.size), null],
  jvp: (_ctx, [t], _out, _dy, xShape) => (t ? adaptiveAvgPool2dBackwardOp(t, xShape) : null),
});

/**
 * Average pooling to a fixed output size [oh, ow] whatever the input size, as
 * F.adaptive_avg_pool2d; a null entry keeps that input dim.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | readonly [number | null, number | null]): Tensor {
  const op = 'adaptiveAvgPool2d';
  checkInput(op, x);
  const [H, W] = x.shape.slice(-2) as [number, number];
  const req = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  const size = [req[0] ?? H, req[1] ?? W] as [number, number];
  if (!size.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${op}: outputSize must be positive integers, got ${JSON.stringify(outputSize)} for input of shape ${fmt(x.shape)}`);
  }
  if (H < 1 || W < 1) throw new Error(`${op}: input of shape ${fmt(x.shape)} has an empty spatial dim`);
  return adaptiveAvgPool2dOp(x, size);
}
