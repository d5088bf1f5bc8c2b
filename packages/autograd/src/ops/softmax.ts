/** softmax and logSoftmax along one dim: kernels forward, VJPs in differentiable ops. */
import { opmathType } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { mul, sub } from './arith.js';
import { sum } from './reduce.js';
import { reshape } from './shape.js';
import { exp } from './unary.js';
import { autocasting, checkFloat, checkTensor, kernels, wrap } from './util.js';

/**
 * A half softmax's gradient is computed in float32 and rounded once, as PyTorch's kernels do:
 * rounded at every step, g - sum(g y) cancels and lost up to 56 bfloat16 steps.
 */
function inFloat32(y: Tensor, g: Tensor): [Tensor, Tensor] {
  const c = opmathType(y.dtype);
  return [y.to(c), g.to(c)];
}

const softmaxOp = defineOp({
  name: 'softmax',
  forward(ctx: Ctx<{ axis: number }>, x: Tensor, axis: number) {
    const y = wrap(kernels(x).Softmax(x, axis), x);
    ctx.save(y);
    ctx.axis = axis;
    return y;
  },
  backward(ctx, g) {
    const [y] = ctx.saved as [Tensor];
    const [yc, gc] = inFloat32(y, g);
    // dx = y * (g - sum(g * y)): the Jacobian diag(y) - y y^T applied to g.
    return [mul(yc, sub(gc, sum(mul(gc, yc), ctx.axis, true))).to(y.dtype), null];
  },
  jvp: (ctx, [t], y) => mul(y, sub(t!, sum(mul(t!, y), ctx.axis, true))),
});

const logSoftmaxOp = defineOp({
  name: 'logSoftmax',
  forward(ctx: Ctx<{ axis: number }>, x: Tensor, axis: number) {
    const y = wrap(kernels(x).LogSoftmax(x, axis), x);
    ctx.save(y);
    ctx.axis = axis;
    return y;
  },
  backward(ctx, g) {
    const [y] = ctx.saved as [Tensor];
    const [yc, gc] = inFloat32(y, g);
    // dx = g - softmax(x) * sum(g), with softmax(x) = exp(y).
    return [sub(gc, mul(exp(yc), sum(gc, ctx.axis, true))).to(y.dtype), null];
  },
  jvp: (ctx, [t], y) => sub(t!, sum(mul(exp(y), t!), ctx.axis, true)),
});

function axisOf(op: string, x: Tensor, dim: number): number {
  checkTensor(op, 'input', x);
  checkFloat(op, 'input', x);
  return normAxis(op, dim, x.ndim);
}

/** A 0-d input is treated as one element along a dim of size 1 (softmax 1, logSoftmax 0), as PyTorch. */
function along(op: typeof softmaxOp, name: string, x: Tensor, dim: number): Tensor {
  const axis = axisOf(name, x, dim);
  return x.ndim === 0 ? reshape(op(reshape(x, [1]), 0), []) : op(x, axis);
}

/** exp(x) / sum(exp(x)) along `dim`, computed stably. */
export const softmax = autocasting('float32', (x: Tensor, dim: number): Tensor => along(softmaxOp, 'softmax', x, dim));

/** log(softmax(x)) along `dim`, computed as x - max - log(sum(exp(x - max))). */
export const logSoftmax = autocasting('float32', (x: Tensor, dim: number): Tensor =>
  along(logSoftmaxOp, 'logSoftmax', x, dim));

installMethods({ softmax, logSoftmax });

declare module '../tensor.js' {
  interface Tensor {
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
  }
}
