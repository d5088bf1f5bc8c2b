/** More reductions, each a kernel of its own: logSumExp, norm (p = 1, 2, inf, -inf, any p > 0, 'fro'), cumsum. */
import { defineOp, type Ctx } from '../function.js';
import { isGradEnabled } from '../grad_mode.js';
import { installMethods } from '../methods.js';
import { fmt, normAxes, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { div, mul, pow, sub } from './arith.js';
import { eq, where } from './compare.js';
import { sum, type Dims } from './reduce.js';
import { abs, exp, sign } from './unary.js';
import { checkFloat, kernels, wrap } from './util.js';

const logSumExpOp: (x: Tensor, axes: number[], keepdim: boolean) => Tensor = defineOp({
  name: 'logSumExp',
  forward(ctx: Ctx<{ axes: number[]; keepdim: boolean }>, x: Tensor, axes: number[], keepdim: boolean) {
    ctx.axes = axes; ctx.keepdim = keepdim;
    const y = wrap(kernels(x).LogSumExp(x, axes), x);
    ctx.save(x, y);
    return keepdim ? y : y.moveAs(x.shape.filter((_, i) => !axes.includes(i)));
  },
  // d lse = softmax(x) over the dims: exp(x - lse), with lse the op again (not the saved output),
  // so that a double backward sees how it depends on x.
  backward(ctx, g) {
    const [x, y] = ctx.saved as [Tensor, Tensor];
    const gk = ctx.keepdim ? g : g.reshape(y.shape);
    const lse = isGradEnabled() ? logSumExpOp(x, ctx.axes, true) : y;
    return [mul(gk, exp(sub(x, lse))), null, null];
  },
  jvp(ctx, [t], out, x) {
    const y = ctx.keepdim ? out : out.reshape(x.shape.map((d, i) => (ctx.axes.includes(i) ? 1 : d)));
    const r = sum(mul(t!, exp(sub(x, y))), ctx.axes, true);
    return ctx.keepdim ? r : r.reshape(out.shape);
  },
});

/**
 * log(sum(exp(x))) over `dim`, shifted by the maximum so exp cannot overflow, as
 * torch.logsumexp; a slice that is all -inf gives -inf, one holding +inf gives +inf.
 */
export function logSumExp(x: Tensor, dim: Dims, keepdim = false): Tensor {
  checkFloat('logSumExp', 'input', x);
  return logSumExpOp(x, normAxes('logSumExp', dim, x.ndim), keepdim);
}

export type NormOrd = 1 | 2 | number | 'fro';

/**
 * d norm / d x with the norm n (its dims kept), in differentiable ops: x / n for 2 (0 where n is
 * 0, PyTorch's subgradient), sign(x) for 1, shared evenly among the extreme entries for +-inf,
 * sign(x) |x|^(p-1) / n^(p-1) otherwise (0 at x = 0 for p < 1). Denominators stay nonzero, so
 * that a double backward meets no NaN in the branch where() drops.
 */
function normGrad(x: Tensor, n: Tensor, ord: number, dims: number[]): Tensor {
  if (ord === 2) return div(x, where(eq(n, 0), 1, n));
  if (ord === 1) return sign(x);
  if (Math.abs(ord) === Infinity) {
    const hit = eq(abs(x), n);
    return div(mul(sign(x), hit), sum(hit, dims, true));
  }
  const den = where(eq(n, 0), 1, pow(n, ord - 1));
  if (ord > 1) return div(mul(sign(x), pow(abs(x), ord - 1)), den);
  // p < 1: |x|^(p-1) is infinite at 0, where PyTorch takes 0 (its masked_fill); x there is
  // replaced first, so that a double backward meets no inf either.
  const zero = eq(x, 0);
  const safe = where(zero, 1, x);
  return where(zero, 0, div(mul(sign(safe), pow(abs(safe), ord - 1)), den));
}

const normOp: (x: Tensor, ord: number, dims: number[], keepdim: boolean) => Tensor = defineOp({
  name: 'norm',
  forward(ctx: Ctx<{ ord: number; dims: number[]; keepdim: boolean }>, x: Tensor, ord: number, dims: number[], keepdim: boolean) {
    ctx.ord = ord; ctx.dims = dims; ctx.keepdim = keepdim;
    const n = wrap(kernels(x).Norm(x, ord, dims), x);
    ctx.save(x, n);
    return keepdim ? n : n.moveAs(x.shape.filter((_, i) => !dims.includes(i)));
  },
  backward(ctx, g) {
    const [x, saved] = ctx.saved as [Tensor, Tensor];
    // The op again rather than the saved norm, so that a double backward sees how it depends on x.
    const n = isGradEnabled() ? normOp(x, ctx.ord, ctx.dims, true) : saved;
    return [mul(ctx.keepdim ? g : g.reshape(n.shape), normGrad(x, n, ctx.ord, ctx.dims)), null, null, null];
  },
  jvp(ctx, [t], out, x) {
    // The output rather than the saved norm: it carries the history reverse-over-forward needs.
    const n = ctx.keepdim ? out : out.reshape(x.shape.map((d, i) => (ctx.dims.includes(i) ? 1 : d)));
    const r = sum(mul(t!, normGrad(x, n, ctx.ord, ctx.dims)), ctx.dims, true);
    return ctx.keepdim ? r : r.reshape(r.shape.filter((_, i) => !ctx.dims.includes(i)));
  },
});

/**
 * The vector norm of x over `dim` (all dims when omitted), as torch.linalg.vector_norm / torch.norm:
 * ord 2 or 'fro' the Euclidean norm, 1 the sum of magnitudes, Infinity / -Infinity the largest /
 * smallest magnitude, any other p > 0 (sum |x|^p)^(1/p). At 0 the 2-norm's gradient is 0.
 */
export function norm(x: Tensor, ord: NormOrd = 2, dim?: Dims, keepdim = false): Tensor {
  checkFloat('norm', 'input', x);
  const dims = dim === undefined ? x.shape.map((_, i) => i) : normAxes('norm', dim, x.ndim);
  const p = ord === 'fro' ? 2 : ord;
  if (p === Infinity || p === -Infinity) {
    // A maximum (minimum) of nothing has no value, as PyTorch's vector_norm says; 'cuda' gave -inf.
    for (const a of dims) {
      if (x.shape[a] === 0) throw new Error(`norm: cannot compute the ${p} norm over dim ${a} of size 0 (shape ${fmt(x.shape)})`);
    }
  }
  if (typeof p === 'number' && (p > 0 || p === -Infinity)) return normOp(x, p, dims, keepdim);
  throw new Error(`norm: ord must be 'fro', Infinity, -Infinity or a positive number, got ${String(ord)} (input shape ${fmt(x.shape)})`);
}

/** Running sums along d, from its end when reverse: the gradient of one direction is the other. */
const cumsumOp: (x: Tensor, d: number, reverse: boolean) => Tensor = defineOp({
  name: 'cumsum',
  forward(ctx: Ctx<{ d: number; reverse: boolean }>, x: Tensor, d: number, reverse: boolean) {
    ctx.d = d; ctx.reverse = reverse;
    return wrap(kernels(x).CumSum(x, d, reverse), x);
  },
  backward: (ctx, g) => [cumsumOp(g, ctx.d, !ctx.reverse), null, null],
  jvp: (_ctx, [t], _out, _x, d, reverse) => cumsumOp(t!, d, reverse),
});

/** Running sums along `dim`, as torch.cumsum. */
export function cumsum(x: Tensor, dim: number): Tensor {
  if (x.dtype === 'int32') return cumsum(x.to('int64'), dim); // as PyTorch, and as sum
  const d = normAxis('cumsum', dim, x.ndim); // a 0-d tensor takes dim 0 or -1, as PyTorch
  if (x.ndim === 0) return cumsumOp(x.reshape([1]), 0, false).reshape([]);
  return cumsumOp(x, d, false);
}

installMethods({ logSumExp, norm, cumsum });

declare module '../tensor.js' {
  interface Tensor {
    logSumExp(dim: Dims, keepdim?: boolean): Tensor; norm(ord?: NormOrd, dim?: Dims, keepdim?: boolean): Tensor;
    cumsum(dim: number): Tensor;
  }
}
