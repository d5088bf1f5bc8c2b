/**
 * In-place ops. Each computes its out-of-place twin (recorded on the tape as usual), writes the
 * result into the tensor's storage and bumps the version counter, then hands the tensor the new
 * node, so later uses see the op while saved copies of the old value are caught by the version check.
 */
import { isGradEnabled } from '../grad_mode.js';
import { installMethods } from '../methods.js';
import { fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { add, div, mul, neg, sub } from './arith.js';
import { clamp, relu, sigmoid, tanh } from './unary.js';
import { expand } from './shape.js';
import { lift, type TensorLike } from './util.js';

function inplace(op: string, x: Tensor, compute: () => Tensor): Tensor {
  if (isGradEnabled() && x.requiresGrad && x.isLeaf) {
    throw new Error(`${op}: a leaf tensor that requires grad (${fmt(x.shape)}) is being used in an in-place operation; ` +
      'wrap it in noGrad() or work on a clone');
  }
  const result = compute();
  if (!sameShape(result.shape, x.shape)) {
    throw new Error(`${op}: the result of shape ${fmt(result.shape)} cannot be written into the tensor of shape ${fmt(x.shape)}`);
  }
  if (result.dtype !== x.dtype) throw new Error(`${op}: result dtype ${result.dtype} does not match the tensor's ${x.dtype}`);
  x.backend.copyInto(x, result);
  x.storage.version++;
  if (result.gradFn) {
    x.gradFn = result.gradFn;
    x.outputIndex = result.outputIndex;
    x.requiresGrad = true;
  }
  return x;
}

export const add_ = (x: Tensor, o: TensorLike) => inplace('add_', x, () => add(x, o));
export const sub_ = (x: Tensor, o: TensorLike) => inplace('sub_', x, () => sub(x, o));
export const mul_ = (x: Tensor, o: TensorLike) => inplace('mul_', x, () => mul(x, o));
export const div_ = (x: Tensor, o: TensorLike) => inplace('div_', x, () => div(x, o));
export const neg_ = (x: Tensor) => inplace('neg_', x, () => neg(x));
export const relu_ = (x: Tensor) => inplace('relu_', x, () => relu(x));
export const sigmoid_ = (x: Tensor) => inplace('sigmoid_', x, () => sigmoid(x));
export const tanh_ = (x: Tensor) => inplace('tanh_', x, () => tanh(x));
export const clamp_ = (x: Tensor, min: number | null = null, max: number | null = null) =>
  inplace('clamp_', x, () => clamp(x, min, max));
/** Fills with a constant; the old history is cut (the gradient through it is zero). */
export const fill_ = (x: Tensor, value: number) => inplace('fill_', x, () => expand(lift(value, x), x.shape));
export const zero_ = (x: Tensor) => fill_(x, 0);
/** Copies src (broadcast to x's shape) into x; gradients flow to src. */
export const copy_ = (x: Tensor, src: Tensor) => inplace('copy_', x, () => {
  if (src.dtype !== x.dtype || src.device !== x.device) {
    throw new Error(`copy_: source is ${src.dtype} on ${src.device} but the tensor is ${x.dtype} on ${x.device}`);
  }
  return expand(add(src, 0), x.shape);
});

installMethods({ add_, sub_, mul_, div_, neg_, relu_, sigmoid_, tanh_, clamp_, fill_, zero_, copy_ });

declare module '../tensor.js' {
  interface Tensor {
    add_(other: TensorLike): Tensor; sub_(other: TensorLike): Tensor; mul_(other: TensorLike): Tensor;
    div_(other: TensorLike): Tensor; neg_(): Tensor; relu_(): Tensor; sigmoid_(): Tensor; tanh_(): Tensor;
    clamp_(min?: number | null, max?: number | null): Tensor; fill_(value: number): Tensor; zero_(): Tensor;
    copy_(src: Tensor): Tensor;
  }
}
