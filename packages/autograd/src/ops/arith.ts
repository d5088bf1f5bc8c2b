/** Broadcasting arithmetic: add sub mul div pow maximum minimum, and neg. */
import { anyAutocast, autocastInputs, type CastPolicy } from '../autocast.js';
import { isFloat, isHalf, roundBFloat16, roundFloat16, type HalfDType } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { checkBroadcast, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { eq, greater, greaterEqual, less, where } from './compare.js';
import { sumTo } from './reduce.js';
import { log } from './unary.js';
import { binaryArgs, kernels, lift, wrap, type TensorLike } from './util.js';

/** The sum of the tangent terms that exist (null: no term, a zero tangent). */
/** @internal */
export function addTangents(a: Tensor | null, b: Tensor | null): Tensor | null {
  return a && b ? add(a, b) : a ?? b;
}

export const addOp = defineOp({
  name: 'add',
  forward(ctx: Ctx<{ sa: Shape; sb: Shape }>, a: Tensor, b: Tensor) {
    ctx.sa = a.shape; ctx.sb = b.shape;
    checkBroadcast('add', a.shape, b.shape);
    return wrap(kernels(a).Add(a, b), a);
  },
  // Only the gradients asked for: x + 1.5 would otherwise sum g down to the scalar's shape for nothing.
  backward: (ctx, g) => [ctx.needsInputGrad[0] ? sumTo(g, ctx.sa) : null, ctx.needsInputGrad[1] ? sumTo(g, ctx.sb) : null],
  jvp: (_ctx, [ta, tb]) => addTangents(ta!, tb!),
  jvpElementwise: true,
});

export const subOp = defineOp({
  name: 'sub',
  forward(ctx: Ctx<{ sa: Shape; sb: Shape }>, a: Tensor, b: Tensor) {
    ctx.sa = a.shape; ctx.sb = b.shape;
    checkBroadcast('sub', a.shape, b.shape);
    return wrap(kernels(a).Sub(a, b), a);
  },
  backward: (ctx, g) => [ctx.needsInputGrad[0] ? sumTo(g, ctx.sa) : null, ctx.needsInputGrad[1] ? sumTo(neg(g), ctx.sb) : null],
  jvp: (_ctx, [ta, tb]) => addTangents(ta!, tb ? neg(tb) : null),
  jvpElementwise: true,
});

export const mulOp = defineOp({
  name: 'mul',
  forward(ctx, a: Tensor, b: Tensor) {
    checkBroadcast('mul', a.shape, b.shape);
    ctx.save(a, b);
    return wrap(kernels(a).Mul(a, b), a);
  },
  backward(ctx, g) {
    const [a, b] = ctx.saved as [Tensor, Tensor];
    return [ctx.needsInputGrad[0] ? sumTo(mul(g, b), a.shape) : null,
      ctx.needsInputGrad[1] ? sumTo(mul(g, a), b.shape) : null];
  },
  jvp: (_ctx, [ta, tb], _out, a, b) => addTangents(ta ? mul(ta, b) : null, tb ? mul(a, tb) : null),
  jvpElementwise: true,
});

export const divOp = defineOp({
  name: 'div',
  forward(ctx, a: Tensor, b: Tensor) {
    checkBroadcast('div', a.shape, b.shape);
    ctx.save(a, b);
    return wrap(kernels(a).Div(a, b), a);
  },
  backward(ctx, g) {
    const [a, b] = ctx.saved as [Tensor, Tensor];
    // d(a/b)/db = -(a / b) / b, as PyTorch: a / b^2 overflows or underflows where the quotient does not.
    return [ctx.needsInputGrad[0] ? sumTo(div(g, b), a.shape) : null,
      ctx.needsInputGrad[1] ? sumTo(neg(mul(g, div(div(a, b), b))), b.shape) : null];
  },
  // d(a/b) = da / b - db a / b^2 = (da - db out) / b
  jvp: (_ctx, [ta, tb], out, _a, b) => div(addTangents(ta!, tb ? neg(mul(tb, out)) : null)!, b),
  jvpElementwise: true,
});

// PyTorch's pow_backward_self and pow_backward_exponent: d(a^b)/da = b a^(b-1), 0 where b == 0
// (at a == 0 too); d(a^b)/db = a^b log a, 0 where a == 0 and b >= 0 (NaN for a negative a, -inf
// for 0^b with b < 0).
// Where b == 0 the base is replaced by 1 before a^(b-1), so that a double backward through the
// branch where() does not take meets no 0 * inf (hessian of x^0 at 0 is 0, as PyTorch).
const powBase = (a: Tensor, b: Tensor) => {
  const zero = eq(b, 0);
  return where(zero, 0, mul(b, pow(where(zero, 1, a), sub(b, 1))));
};
const powExponent = (a: Tensor, b: Tensor, out: Tensor) => where(mul(eq(a, 0), greaterEqual(b, 0)), 0, mul(out, log(a)));

export const powOp = defineOp({
  name: 'pow',
  forward(ctx, a: Tensor, b: Tensor) {
    checkBroadcast('pow', a.shape, b.shape);
    const out = wrap(kernels(a).Pow(a, b), a);
    ctx.save(a, b, out);
    return out;
  },
  backward(ctx, g) {
    const [a, b, out] = ctx.saved as [Tensor, Tensor, Tensor];
    return [ctx.needsInputGrad[0] ? sumTo(mul(g, powBase(a, b)), a.shape) : null,
      ctx.needsInputGrad[1] ? sumTo(mul(g, powExponent(a, b, out)), b.shape) : null];
  },
  jvp: (_ctx, [ta, tb], out, a, b) => addTangents(ta ? mul(ta, powBase(a, b)) : null, tb ? mul(tb, powExponent(a, b, out)) : null),
    jvpElementwise: true,
});

/**
 * maximum/minimum: the gradient goes to the larger (smaller) input; ties split it evenly, and
 * where either is NaN both get it, as PyTorch (each input's weight is 1, 0 where it loses, 1/2 at a tie).
 */
function extremum(name: 'maximum' | 'minimum', kernel: 'Maximum' | 'Minimum') {
  const weights = (a: Tensor, b: Tensor): [Tensor, Tensor] => {
    const half = mul(eq(a, b), 0.5);
    const [losesA, losesB] = name === 'maximum' ? [less(a, b), greater(a, b)] : [greater(a, b), less(a, b)];
    return [sub(sub(1, losesA), half), sub(sub(1, losesB), half)];
  };
  return defineOp({
    name,
    forward(ctx, a: Tensor, b: Tensor) {
      checkBroadcast(name, a.shape, b.shape);
      ctx.save(a, b);
      return wrap(kernels(a)[kernel](a, b), a);
    },
    backward(ctx, g) {
      const [a, b] = ctx.saved as [Tensor, Tensor];
      const [wa, wb] = weights(a, b);
      return [ctx.needsInputGrad[0] ? sumTo(mul(g, wa), a.shape) : null,
        ctx.needsInputGrad[1] ? sumTo(mul(g, wb), b.shape) : null];
    },
    jvp(_ctx, [ta, tb], _out, a, b) {
      const [wa, wb] = weights(a, b);
      return addTangents(ta ? mul(ta, wa) : null, tb ? mul(tb, wb) : null);
    },
    jvpElementwise: true,
  });
}
const maximumOp = extremum('maximum', 'Maximum');
const minimumOp = extremum('minimum', 'Minimum');

export const negOp = defineOp({
  name: 'neg',
  forward: (_ctx, x: Tensor) => wrap(kernels(x).Neg(x), x),
  backward: (_ctx, g) => [neg(g)],
  jvp: (_ctx, [t]) => neg(t!),
  jvpElementwise: true,
});

/** The ops PyTorch computes with a number (or a CPU scalar) unrounded beside a half tensor. */
const SCALAR_OPS = new Set(['add', 'sub', 'mul', 'div']);

/** Whether a half dtype holds the number exactly (NaN and the infinities included). */
const fitsHalf = (s: number, dtype: HalfDType) => Number.isNaN(s) || (dtype === 'bfloat16' ? roundBFloat16(s) : roundFloat16(s)) === s;

/**
 * A binary op, with PyTorch's rules for a plain number beside a tensor it does not fit exactly.
 * PyTorch keeps the number unrounded: beside a half tensor it computes in float32 and rounds once
 * (lifted into float16 first, 65536 would be inf and x * 65536 too), here with the number as a
 * float32 scalar the kernels take beside the half tensor (halfBesideScalar); beside an integer
 * tensor a fractional or non-finite number makes the result float32, as does a division (true
 * division), on a float32 copy of the tensor. The tensor is taken as autocast gives it to the op;
 * the common case, a number that fits, is lifted into its dtype.
 */
function arith(name: string, op: (a: Tensor, b: Tensor) => Tensor, a: TensorLike, b: TensorLike, policy: CastPolicy = 'promote'): Tensor {
  const first = typeof a === 'number';
  const number = first ? a : b, other = first ? b : a;
  if (typeof number === 'number' && other instanceof Tensor) {
    const t = anyAutocast() ? autocastInputs(policy, other)[0] : other;
    const half = isHalf(t.dtype);
    // Whether the op takes the number in the tensor's own dtype: beside a half tensor, one that
    // fits, and any for pow, maximum and minimum, which PyTorch computes with the number rounded to
    // the half type (x ** 0.3 in bfloat16 uses 0.30078125; clamp converts its bounds).
    const exact = half ? !SCALAR_OPS.has(name) || fitsHalf(number, t.dtype)
      : isFloat(t.dtype) || name !== 'div' && Number.isInteger(number);
    if (exact) {
      const s = lift(number, t);
      return first ? op(s, t) : op(t, s);
    }
    const w = half ? t : t.to('float32'), ws = lift(number, w, 'float32');
    return first ? op(ws, w) : op(w, ws);
  }
  const [ta, tb] = binaryArgs(name, a, b, policy, SCALAR_OPS.has(name));
  if (name === 'div' && !isFloat(ta.dtype) && !isFloat(tb.dtype)) return op(ta.to('float32'), tb.to('float32'));
  return op(ta, tb);
}

export function add(a: TensorLike, b: TensorLike): Tensor { return arith('add', addOp, a, b); }
export function sub(a: TensorLike, b: TensorLike): Tensor { return arith('sub', subOp, a, b); }
export function mul(a: TensorLike, b: TensorLike): Tensor { return arith('mul', mulOp, a, b); }
export function div(a: TensorLike, b: TensorLike): Tensor { return arith('div', divOp, a, b); }
export function pow(a: TensorLike, b: TensorLike): Tensor {
  // An integer power stays an integer, as PyTorch's (3 ** -2 is 0, (-1) ** -3 is -1): computed in
  // float64, where the kernels' pow is exact for these, and truncated by the cast back.
  const integral = (v: TensorLike) => (v instanceof Tensor ? !isFloat(v.dtype) : Number.isInteger(v));
  const t = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (t && integral(a) && integral(b)) {
    if (typeof b === 'number' && b < 0) throw new Error(`pow: integers to negative integer powers are not allowed (${t.dtype} ** ${b})`);
    const wide = (v: TensorLike) => (v instanceof Tensor ? v.to('float64') : v);
    const r = arith('pow', powOp, wide(a), wide(b), 'float32');
    // 0 ** -n: infinite in floating point, 0 in PyTorch's integer pow.
    return where(eq(r, Infinity), 0, r).to(t.dtype);
  }
  return arith('pow', powOp, a, b, 'float32');
}
export function maximum(a: TensorLike, b: TensorLike): Tensor { return arith('maximum', maximumOp, a, b); }
export function minimum(a: TensorLike, b: TensorLike): Tensor { return arith('minimum', minimumOp, a, b); }
export function neg(x: Tensor): Tensor { return negOp(x); }

installMethods({ add, sub, mul, div, pow, maximum, minimum, neg });

declare module '../tensor.js' {
  interface Tensor {
    add(other: TensorLike): Tensor; sub(other: TensorLike): Tensor; mul(other: TensorLike): Tensor;
    div(other: TensorLike): Tensor; pow(exponent: TensorLike): Tensor; maximum(other: TensorLike): Tensor;
    minimum(other: TensorLike): Tensor; neg(): Tensor;
  }
}
