/** Comparisons (no gradient; 1/0 in the inputs' dtype) and the differentiable `where`. */
import { autocastInputs } from '../autocast.js';
import { fillOverflow, isFloat } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { broadcastShapes, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';
import { binaryArgs, checkSame, kernels, lift, wrap, type TensorLike } from './util.js';

type CompareKernel = 'Equal' | 'NotEqual' | 'Less' | 'LessEqual' | 'Greater' | 'GreaterEqual';

function compare(name: string, kernel: CompareKernel) {
  const cmp = (a: TensorLike, b: TensorLike): Tensor => {
    // PyTorch compares an integer tensor with a number it cannot hold (2.5, NaN, 2^40 for int32)
    // in floating point: x == 2.5 is never true, x < 2.5 holds for 2. Converted to the integer
    // type, the number would be cut to 2.
    const t = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
    const n = a instanceof Tensor ? b : a;
    if (t && !isFloat(t.dtype) && typeof n === 'number' && (!Number.isInteger(n) || fillOverflow(n, t.dtype))) {
      const f = t.to('float64');
      return cmp(a === t ? f : a, b === t ? f : b).to(t.dtype);
    }
    const [ta, tb] = binaryArgs(name, a, b);
    broadcastShapes(name, ta.shape, tb.shape);
    return wrap(kernels(ta)[kernel](ta, tb), ta);
  };
  return cmp;
}

export const eq = compare('eq', 'Equal');
export const ne = compare('ne', 'NotEqual');
export const less = compare('lt', 'Less');
export const lessEqual = compare('le', 'LessEqual');
export const greater = compare('gt', 'Greater');
export const greaterEqual = compare('ge', 'GreaterEqual');

const whereOp: (cond: Tensor, a: Tensor, b: Tensor) => Tensor = defineOp({
  name: 'where',
  forward(ctx: Ctx<{ sa: Shape; sb: Shape }>, cond: Tensor, a: Tensor, b: Tensor) {
    broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape, ['condition', 'input']), b.shape, ['input', 'other']);
    ctx.save(cond);
    ctx.sa = a.shape; ctx.sb = b.shape;
    return wrap(kernels(a).Where(cond, a, b), a);
  },
  backward(ctx, g) {
    const [cond] = ctx.saved as [Tensor];
    const zero = lift(0, g);
    return [null,
      ctx.needsInputGrad[1] ? sumTo(where(cond, g, zero), ctx.sa) : null,
      ctx.needsInputGrad[2] ? sumTo(where(cond, zero, g), ctx.sb) : null];
  },
  jvp: (_ctx, [, ta, tb], out, cond) => whereOp(cond, ta ?? lift(0, out), tb ?? lift(0, out)),
  jvpElementwise: true,
});

/** cond ? a : b elementwise, broadcasting all three; cond is nonzero for true. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : cond;
  const [ta, tb] = autocastInputs('promote', lift(a, like), lift(b, like));
  checkSame('where', { input: ta, other: tb });
  const c = cond.dtype === ta.dtype ? cond : wrap(kernels(cond).Cast(cond, ta.dtype), cond);
  return whereOp(c, ta, tb);
}

installMethods({ eq, ne, lt: less, le: lessEqual, gt: greater, ge: greaterEqual });

declare module '../tensor.js' {
  interface Tensor {
    eq(other: TensorLike): Tensor; ne(other: TensorLike): Tensor; lt(other: TensorLike): Tensor;
    le(other: TensorLike): Tensor; gt(other: TensorLike): Tensor; ge(other: TensorLike): Tensor;
  }
}
