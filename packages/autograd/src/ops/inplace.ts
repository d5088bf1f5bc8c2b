/**
 * In-place ops. Each computes its out-of-place twin (recorded on the tape as usual, on a copy of
 * the old value when recording), writes the result into the tensor's storage and bumps the version
 * counter, then hands the tensor the new node, so later uses see the op while other ops that saved
 * the old value are caught by the version check. On a view or slice the change then goes up to
 * its base, values and history (view_sync.ts).
 */
import { fillOverflow, isFloat } from '../dtype.js';
import { defineOp } from '../function.js';
import { isGradEnabled } from '../grad_mode.js';
import { installMethods } from '../methods.js';
import { fmt, sameShape } from '../shape.js';
import { syncView, Tensor } from '../tensor.js';
import { add, div, mul, neg, sub } from './arith.js';
import { clone } from './autograd_api.js';
import { zerosLike } from './creation.js';
import { clamp, relu, sigmoid, tanh } from './unary.js';
import { expand } from './shape.js';
import { isSharedConstant, lift, type TensorLike } from './util.js';
import { checkViewOfLeaf, takeHistory, writeThrough } from './view_sync.js';

/** Brings a view or slice up to date, then refuses to change a leaf that requires grad, or a view of one. */
function checkTarget(op: string, x: Tensor): void {
  syncView(x);
  if (isGradEnabled() && x.requiresGrad && x.isLeaf) {
    throw new Error(`${op}: a leaf tensor that requires grad (${fmt(x.shape)}) is being used in an in-place operation; ` +
      'wrap it in noGrad() or work on a clone');
  }
  checkViewOfLeaf(op, x);
}

/**
 * Writes result into x's storage, bumps the version, makes x the output of result's node, and
 * passes the change on to x's bases.
 */
function write(op: string, x: Tensor, result: Tensor): Tensor {
  if (!sameShape(result.shape, x.shape)) {
    throw new Error(`${op}: the result of shape ${fmt(result.shape)} cannot be written into the tensor of shape ${fmt(x.shape)}`);
  }
  if (result.dtype !== x.dtype) {
    // As PyTorch's in-place ops: the result is cast to the tensor's dtype (a bfloat16 tensor plus
    // a float32 one under autocast stays bfloat16), except a float result into an integer tensor.
    if (isFloat(result.dtype) && !isFloat(x.dtype)) {
      throw new Error(`${op}: result type ${result.dtype} can't be cast to the desired output type ${x.dtype}`);
    }
    result = result.to(x.dtype);
  }
  if (isSharedConstant(x.storage)) throw new Error(`${op}: the tensor is a shared scalar constant; clone() it to modify it`);
  const piece = x.sliceOf?.piece;
  if (result.gradFn && piece) {
    throw new Error(`${op}: output ${piece.index} of ${piece.op} is a view and is being modified in place while recording; ` +
      `a function that returns several views (split, chunk) does not allow it, as in PyTorch: use the out-of-place op`);
  }
  x.assign(result);
  // x becomes the op's output: its node when recorded, and its tangent (a dual tensor keeps one).
  // Unrecorded (noGrad), x keeps its history: an op may hand back an input that has a node (copy_ of src).
  if (result.gradFn && isGradEnabled()) takeHistory(x, result);
  else x.tangent = result.tangent;
  writeThrough(x);
  return x;
}

/**
 * x = f(x) in place. When the op is recorded it runs on a recorded copy of x: the op may save its
 * input for backward (relu, mul do), and x's storage is about to be overwritten, which would
 * trip the version check. PyTorch saves `original_self` for in-place ops the same way.
 */
function inplace(op: string, x: Tensor, f: (self: Tensor) => Tensor, ...others: TensorLike[]): Tensor {
  checkTarget(op, x);
  const recorded = isGradEnabled() && [x, ...others].some((t) => t instanceof Tensor && t.requiresGrad);
  return write(op, x, f(recorded ? clone(x) : x));
}

export const add_ = (x: Tensor, o: TensorLike) => inplace('add_', x, (s) => add(s, o), o);
export const sub_ = (x: Tensor, o: TensorLike) => inplace('sub_', x, (s) => sub(s, o), o);
export const mul_ = (x: Tensor, o: TensorLike) => inplace('mul_', x, (s) => mul(s, o), o);
export const div_ = (x: Tensor, o: TensorLike) => inplace('div_', x, (s) => div(s, o), o);
export const neg_ = (x: Tensor) => inplace('neg_', x, neg);
export const relu_ = (x: Tensor) => inplace('relu_', x, relu);
export const sigmoid_ = (x: Tensor) => inplace('sigmoid_', x, sigmoid);
export const tanh_ = (x: Tensor) => inplace('tanh_', x, tanh);
export const clamp_ = (x: Tensor, min: number | null = null, max: number | null = null) =>
  inplace('clamp_', x, (s) => clamp(s, min, max));
/**
 * Recorded replacement of x's values by `value` (already of x's shape): the gradient goes to
 * `value` and none to x's old history, so a non-leaf keeps requiring grad, as PyTorch's
 * FillBackward/CopyBackwards do.
 */
function overwriteOp(name: string) {
  return defineOp({
    name,
    forward: (_ctx, _old: Tensor, value: Tensor) => value,
    // The old values get a zero gradient, not none: as PyTorch, x.mul(1).zero_() leaves x a zero .grad.
    backward: (ctx, g) => [ctx.needsInputGrad[0] ? zerosLike(g) : null, g],
    jvp: (_ctx, [, tv]) => tv,
    jvpElementwise: true,
  });
}
const fillOp = overwriteOp('fill_');
const copyOp = overwriteOp('copy_');

/** Fills with a constant; the old history is cut (the gradient through it is zero). */
export const fill_ = (x: Tensor, value: number) => {
  checkTarget('fill_', x);
  const overflow = fillOverflow(value, x.dtype);
  if (overflow) throw new Error(`fill_: ${overflow}`);
  return write('fill_', x, fillOp(x, expand(lift(value, x), x.shape)));
};
export const zero_ = (x: Tensor) => fill_(x, 0);
/** Copies src (broadcast to x's shape, converted to x's device and dtype, as PyTorch) into x; gradients flow to src. */
export const copy_ = (x: Tensor, src: Tensor) => {
  checkTarget('copy_', x);
  return write('copy_', x, copyOp(x, expand(src.to(x.device).to(x.dtype), x.shape)));
};

installMethods({ add_, sub_, mul_, div_, neg_, relu_, sigmoid_, tanh_, clamp_, fill_, zero_, copy_ });

declare module '../tensor.js' {
  interface Tensor {
    add_(other: TensorLike): Tensor; sub_(other: TensorLike): Tensor; mul_(other: TensorLike): Tensor;
    div_(other: TensorLike): Tensor; neg_(): Tensor; relu_(): Tensor; sigmoid_(): Tensor; tanh_(): Tensor;
    clamp_(min?: number | null, max?: number | null): Tensor; fill_(value: number): Tensor; zero_(): Tensor;
    copy_(src: Tensor): Tensor;
  }
}
