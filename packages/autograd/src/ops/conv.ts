/**
 * conv2d and its two backward ops. As in TensorFlow.js and cuDNN, the gradient of a convolution
 * is two operations of their own, each a kernel: backprop-input (dx = BI(dy, w)) and
 * backprop-filter (dw = BW(x, dy)). The three are bilinear and adjoint to one another:
 *   <conv2d(x, w), dy> = <x, BI(dy, w)> = <w, BW(x, dy)>,
 * so each one's VJP is written with the other two, and gradients of any order go through kernels.
 */
import type { Conv2DParams } from '../backend.js';
import type { DType } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { isForwardAdEnabled, isGradEnabled } from '../grad_mode.js';
import { fmt, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { autocastInputs, autocastMaster } from '../autocast.js';
import { add, addTangents } from './arith.js';
import { pad } from './join.js';
import { pair, type Size2 } from './nn_util.js';
import { reshape, squeeze, unsqueeze } from './shape.js';
import { relu } from './unary.js';
import { checkFloat, checkSame, checkTensor, kernels, wrap } from './util.js';

export interface Conv2dOptions {
  stride?: Size2;
  /** Zero padding per side; 'valid' is 0, 'same' keeps the input size (stride 1 only), as PyTorch. */
  padding?: Size2 | 'same' | 'valid';
  dilation?: Size2;
  groups?: number;
}

/** The kernel parameters, plus the extra right/bottom padding an odd 'same' total needs. */
function convParams(op: string, opts: Conv2dOptions, wShape: Shape): { p: Conv2DParams; extra: [number, number] } {
  const stride = pair(op, 'stride', opts.stride ?? 1, 1);
  const dilation = pair(op, 'dilation', opts.dilation ?? 1, 1);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${op}: groups must be a positive integer, got ${groups}`);
  const padOpt = opts.padding ?? 0;
  let padding: [number, number];
  let extra: [number, number] = [0, 0];
  if (padOpt === 'valid') {
    padding = [0, 0];
  } else if (padOpt === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) {
      throw new Error(`${op}: padding='same' is not supported for strided convolutions (stride ${fmt(stride)})`);
    }
    // PyTorch pads d(k-1) in total, the odd element on the right/bottom.
    const total = [0, 1].map((i) => dilation[i]! * (wShape[2 + i]! - 1));
    padding = [Math.floor(total[0]! / 2), Math.floor(total[1]! / 2)];
    extra = [total[0]! % 2, total[1]! % 2];
  } else if (typeof padOpt === 'string') {
    throw new Error(`${op}: padding must be a number, a pair, 'same' or 'valid', got '${padOpt}'`);
  } else {
    padding = pair(op, 'padding', padOpt, 0);
  }
  return { p: { stride, padding, dilation, groups }, extra };
}

/** Output size along one dim, PyTorch's floor((n + 2p - d(k-1) - 1) / s) + 1. */
function outSize(n: number, k: number, p: Conv2DParams, i: 0 | 1): number {
  return Math.floor((n + 2 * p.padding[i] - p.dilation[i] * (k - 1) - 1) / p.stride[i]) + 1;
}

/** Checks input/weight shapes against each other and the params; returns the output shape. */
function checkGeometry(op: string, xShape: Shape, wShape: Shape, p: Conv2DParams): number[] {
  if (xShape.length !== 4) {
    throw new Error(`${op}: expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got input of shape ${fmt(xShape)}`);
  }
  if (wShape.length !== 4) {
    throw new Error(`${op}: expected a 4-D weight [out channels, in channels / groups, kH, kW], ` +
      `got weight of shape ${fmt(wShape)}`);
  }
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, I, kh, kw] = wShape as [number, number, number, number];
  if (O % p.groups !== 0) {
    throw new Error(`${op}: weight.shape[0] = ${O} out channels must be divisible by groups = ${p.groups} ` +
      `(weight of shape ${fmt(wShape)})`);
  }
  if (C !== I * p.groups) {
    throw new Error(`${op}: expected input with C = weight.shape[1] * groups = ${I * p.groups} channels, ` +
      `got input of shape ${fmt(xShape)} (weight of shape ${fmt(wShape)}, groups ${p.groups})`);
  }
  const oh = outSize(H, kh, p, 0), ow = outSize(W, kw, p, 1);
  if (oh <= 0 || ow <= 0) {
    throw new Error(`${op}: output size [${oh}, ${ow}] is not positive: input of shape ${fmt(xShape)} with padding ` +
      `${fmt(p.padding)} is smaller than the kernel [${kh}, ${kw}] dilated by ${fmt(p.dilation)}`);
  }
  return [N, O, oh, ow];
}

const conv2dOp: (x: Tensor, w: Tensor, p: Conv2DParams) => Tensor = defineOp({
  name: 'conv2d',
  forward(ctx: Ctx<{ p: Conv2DParams }>, x: Tensor, w: Tensor, p: Conv2DParams) {
    ctx.save(x, w);
    ctx.p = p;
    return wrap(kernels(x).Conv2D(x, w, p), x);
  },
  backward(ctx, g): (Tensor | null)[] {
    const [x, w] = ctx.saved as [Tensor, Tensor];
    return [
      ctx.needsInputGrad[0] ? conv2dBackwardInputOp(g, w, x.shape, ctx.p) : null,
      ctx.needsInputGrad[1] ? conv2dBackwardWeightOp(x, g, w.shape, ctx.p) : null,
      null,
    ];
  },
  jvp: (ctx, [tx, tw], _out, x, w) => addTangents(tx ? conv2dOp(tx, w, ctx.p) : null, tw ? conv2dOp(x, tw, ctx.p) : null),
});

/**
 * conv2d under autocast with a cached weight cast `low` of the float32 weight `master`: computes
 * conv2d(x, low) and differentiates with respect to master itself, its gradient summed in float32
 * by one backward-filter kernel rather than rounded to the low type and widened by the cast's
 * backward (one pass over each weight gradient less a step, and no rounding between). As in the
 * unfused graph, only low is saved: master may change in place before the backward. A backward
 * that is itself recorded (createGraph) composes the unfused ops on low, which the cast recorded
 * from master, so higher derivatives see the graph of conv2d(x, master.to(low.dtype)).
 */
const conv2dLowWeightOp: (x: Tensor, master: Tensor, a: { p: Conv2DParams; low: Tensor }) => Tensor = defineOp({
  name: 'conv2d',
  forward(ctx: Ctx<{ p: Conv2DParams; masterType: DType }>, x: Tensor, master: Tensor, a: { p: Conv2DParams; low: Tensor }) {
    ctx.save(x, a.low);
    ctx.p = a.p;
    ctx.masterType = master.dtype;
    return wrap(kernels(x).Conv2D(x, a.low, a.p), x);
  },
  backward(ctx, g): (Tensor | null)[] {
    const [x, low] = ctx.saved as [Tensor, Tensor];
    const needs = ctx.needsInputGrad;
    const dx = needs[0] ? conv2dBackwardInputOp(g, low, x.shape, ctx.p) : null;
    if (!needs[1]) return [dx, null, null];
    const dw = isGradEnabled() ? conv2dBackwardWeightOp(x, g, low.shape, ctx.p).to(ctx.masterType)
      : wrap(kernels(x).Conv2DBackpropFilter(x, g, low.shape, ctx.p, ctx.masterType), x);
    return [dx, dw, null];
  },
  jvp: (ctx, [tx, tw], _out, x, _master, a) => addTangents(tx ? conv2dOp(tx, a.low, ctx.p) : null,
    tw ? conv2dOp(x, tw.to(a.low.dtype), ctx.p) : null),
});

/** conv2d(x, w), through conv2dLowWeightOp when w is autocast's cached cast of a weight that trains. */
function convWeight(x: Tensor, w: Tensor, p: Conv2DParams): Tensor {
  const master = autocastMaster(w);
  if (master && master.requiresGrad && isGradEnabled()) return conv2dLowWeightOp(x, master, { p, low: w });
  return conv2dOp(x, w, p);
}

// dx = BI(dy, w). Linear in dy with adjoint conv2d(., w); linear in w with adjoint BW(., dy).
const conv2dBackwardInputOp: (dy: Tensor, w: Tensor, xShape: Shape, p: Conv2DParams) => Tensor = defineOp({
  name: 'conv2dBackwardInput',
  forward(ctx: Ctx<{ p: Conv2DParams }>, dy: Tensor, w: Tensor, xShape: Shape, p: Conv2DParams) {
    ctx.save(dy, w);
    ctx.p = p;
    return wrap(kernels(dy).Conv2DBackpropInput(dy, w, xShape, p), dy);
  },
  backward(ctx, g): (Tensor | null)[] {
    const [dy, w] = ctx.saved as [Tensor, Tensor];
    return [
      ctx.needsInputGrad[0] ? conv2dOp(g, w, ctx.p) : null,
      ctx.needsInputGrad[1] ? conv2dBackwardWeightOp(g, dy, w.shape, ctx.p) : null,
      null, null,
    ];
  },
  jvp: (ctx, [tdy, tw], _out, dy, w, xShape) => addTangents(tdy ? conv2dBackwardInputOp(tdy, w, xShape, ctx.p) : null,
    tw ? conv2dBackwardInputOp(dy, tw, xShape, ctx.p) : null),
});

// dw = BW(x, dy). Linear in x with adjoint BI(dy, .); linear in dy with adjoint conv2d(x, .).
const conv2dBackwardWeightOp: (x: Tensor, dy: Tensor, wShape: Shape, p: Conv2DParams) => Tensor = defineOp({
  name: 'conv2dBackwardWeight',
  forward(ctx: Ctx<{ p: Conv2DParams }>, x: Tensor, dy: Tensor, wShape: Shape, p: Conv2DParams) {
    ctx.save(x, dy);
    ctx.p = p;
    return wrap(kernels(x).Conv2DBackpropFilter(x, dy, wShape, p), x);
  },
  backward(ctx, g): (Tensor | null)[] {
    const [x, dy] = ctx.saved as [Tensor, Tensor];
    return [
      ctx.needsInputGrad[0] ? conv2dBackwardInputOp(dy, g, x.shape, ctx.p) : null,
      ctx.needsInputGrad[1] ? conv2dOp(x, g, ctx.p) : null,
      null, null,
    ];
  },
  jvp: (ctx, [tx, tdy], _out, x, dy, wShape) => addTangents(tx ? conv2dBackwardWeightOp(tx, dy, wShape, ctx.p) : null,
    tdy ? conv2dBackwardWeightOp(x, tdy, wShape, ctx.p) : null),
});

/**
 * 2-D convolution (cross-correlation) of an NCHW input with an OIHW weight, as F.conv2d.
 * @example conv2d(x, w, b, { stride: 2, padding: 1 })
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  checkTensor(op, 'input', x);
  checkTensor(op, 'weight', weight);
  if (bias != null) checkTensor(op, 'bias', bias);
  [x, weight, bias] = autocastInputs('lower', x, weight, bias);
  checkFloat(op, 'input', x);
  checkSame(op, { input: x, weight, bias });
  // An unbatched [C, H, W] input is a batch of one, as in PyTorch.
  if (x.ndim === 3) return squeeze(conv2d(unsqueeze(x, 0), weight, bias, opts), 0);
  const { p, extra } = convParams(op, opts, weight.shape);
  const input = extra[0] || extra[1] ? pad(x, [0, extra[1], 0, extra[0]]) : x;
  const [, O] = checkGeometry(op, input.shape, weight.shape, p);
  checkBias(op, bias, O, weight);
  return addBias(convWeight(input, weight, p), bias);
}

function checkBias(op: string, bias: Tensor | null | undefined, O: number, weight: Tensor): void {
  if (bias != null && (bias.ndim !== 1 || bias.shape[0] !== O)) {
    throw new Error(`${op}: bias of shape ${fmt(bias.shape)} must have shape [${O}] (weight of shape ${fmt(weight.shape)})`);
  }
}

/** y + bias per channel: the bias broadcasts over N, H, W, so its gradient is the sum over them (add's sumTo). */
function addBias(y: Tensor, bias: Tensor | null | undefined): Tensor {
  return bias != null ? add(y, reshape(bias, [1, bias.shape[0]!, 1, 1])) : y;
}

export interface Conv2dFusedOptions extends Conv2dOptions {
  /** Added to the convolution's output before the ReLU (a residual block's identity); the output's shape. */
  residual?: Tensor | null;
  /** End with max(0, ·). */
  relu?: boolean;
}

/**
 * relu?(conv2d(x, weight, bias) + residual), the convolution and its epilogue. On a backend with
 * the Conv2DFused kernel (oneDNN post-ops on 'cpu') it is one pass over the output instead of
 * three, for inference. While the tape records (grad enabled and an input requires grad), or
 * where the kernel is missing, it is the composite of differentiable ops, with the same result.
 * @example conv2dFused(x, w, b, { padding: 1, residual: identity, relu: true })
 */
export function conv2dFused(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dFusedOptions = {}): Tensor {
  const op = 'conv2dFused';
  const { residual: given = null, relu: withRelu = false, ...convOpts } = opts;
  checkTensor(op, 'input', x);
  checkTensor(op, 'weight', weight);
  if (bias != null) checkTensor(op, 'bias', bias);
  if (given != null) checkTensor(op, 'residual', given);
  let residual: Tensor | null;
  [x, weight, bias, residual] = autocastInputs('lower', x, weight, bias, given);
  checkFloat(op, 'input', x);
  checkSame(op, { input: x, weight, bias, residual });
  if (x.ndim === 3) {
    const r = residual != null && residual.ndim === 3 ? unsqueeze(residual, 0) : residual;
    return squeeze(conv2dFused(unsqueeze(x, 0), weight, bias, { ...opts, residual: r }), 0);
  }
  const { p, extra } = convParams(op, convOpts, weight.shape);
  const input = extra[0] || extra[1] ? pad(x, [0, extra[1], 0, extra[0]]) : x;
  const yShape = checkGeometry(op, input.shape, weight.shape, p);
  checkBias(op, bias, yShape[1]!, weight);
  if (residual != null && (residual.ndim !== 4 || residual.shape.some((d, i) => d !== yShape[i]))) {
    throw new Error(`${op}: residual of shape ${fmt(residual.shape)} must have the convolution's output shape ` +
      `${fmt(yShape)} (input of shape ${fmt(x.shape)}, weight of shape ${fmt(weight.shape)})`);
  }
  const kernel = kernels(x).Conv2DFused;
  const recording = isGradEnabled() && [x, weight, bias, residual].some((t) => t?.requiresGrad);
  // The fused kernel has no JVP: dual inputs take the composed path, whose ops carry tangents.
  const dual = isForwardAdEnabled() && [x, weight, bias, residual].some((t) => t?.tangent);
  if (kernel && !recording && !dual) {
    return wrap(kernel(input, weight, bias ?? null, residual, { ...p, relu: withRelu }), x);
  }
  let y = addBias(convWeight(input, weight, p), bias);
  if (residual != null) y = add(y, residual);
  return withRelu ? relu(y) : y;
}

/** Explicit padding only: an asymmetric 'same' has no single input-gradient geometry. */
function backwardParams(op: string, opts: Conv2dOptions, wShape: Shape): Conv2DParams {
  const { p, extra } = convParams(op, opts, wShape);
  if (extra[0] || extra[1]) {
    throw new Error(`${op}: padding='same' with an even dilated kernel pads asymmetrically; ` +
      'pad the input explicitly and give a numeric padding');
  }
  return p;
}

/**
 * The gradient of conv2d with respect to its input: dx of shape `xShape` from dy and the weight.
 * Differentiable in dy and weight (the transposed convolution).
 */
export function conv2dBackwardInput(dy: Tensor, weight: Tensor, xShape: Shape, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2dBackwardInput';
  checkTensor(op, 'gradOutput', dy);
  checkTensor(op, 'weight', weight);
  [dy, weight] = autocastInputs('lower', dy, weight);
  checkFloat(op, 'gradOutput', dy);
  checkSame(op, { gradOutput: dy, weight });
  const p = backwardParams(op, opts, weight.shape);
  checkDy(op, dy, checkGeometry(op, xShape, weight.shape, p));
  return conv2dBackwardInputOp(dy, weight, [...xShape], p);
}

/** The gradient of conv2d with respect to its weight: dw of shape `wShape` from x and dy. */
export function conv2dBackwardWeight(x: Tensor, dy: Tensor, wShape: Shape, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2dBackwardWeight';
  checkTensor(op, 'input', x);
  checkTensor(op, 'gradOutput', dy);
  [x, dy] = autocastInputs('lower', x, dy);
  checkFloat(op, 'input', x);
  checkSame(op, { input: x, gradOutput: dy });
  const p = backwardParams(op, opts, wShape);
  checkDy(op, dy, checkGeometry(op, x.shape, wShape, p));
  return conv2dBackwardWeightOp(x, dy, [...wShape], p);
}

function checkDy(op: string, dy: Tensor, yShape: number[]): void {
  if (dy.ndim !== 4 || dy.shape.some((d, i) => d !== yShape[i])) {
    throw new Error(`${op}: gradOutput of shape ${fmt(dy.shape)} should have the convolution's output shape ${fmt(yShape)}`);
  }
}
