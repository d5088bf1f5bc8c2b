/**
 * Forward-mode AD, as torch.autograd.forward_ad: `dual(primal, tangent)` makes a tensor that
 * carries a tangent; every op with a JVP rule (defineOp's `jvp`) passes the tangents on, so an
 * output's tangent is the Jacobian-vector product J v; `unpackDual` takes it apart. One level, as
 * PyTorch's default dual level. Reverse mode can differentiate through the tangent computations,
 * and a backward over dual tensors carries their tangents (forward-over-reverse: the tangent of a
 * gradient is a Hessian-vector product).
 */
import { isFloat } from './dtype.js';
import { defineOp } from './function.js';
import { tangentBatchSize, withoutForwardAd } from './grad_mode.js';
import { fmt, sameShape } from './shape.js';
import type { Tensor } from './tensor.js';

const dualOp = defineOp({
  name: 'dual',
  forward: (_ctx, primal: Tensor) => primal.aliasAs(primal.shape),
  backward: (_ctx, g) => [g],
  jvp: (_ctx, [t]) => t,
  jvpElementwise: true,
});

const primalOp = defineOp<[Tensor], Tensor>({
  name: 'unpackDual',
  forward: (_ctx, t: Tensor) => t.aliasAs(t.shape),
  backward: (_ctx, g) => [g],
  jvp: () => null, // the primal carries no tangent (and this runs with tangents off anyway)
});

/** A tensor with primal's values (and its reverse-mode history) that carries `tangent`. */
export function dual(primal: Tensor, tangent: Tensor): Tensor {
  if (!isFloat(primal.dtype)) throw new Error(`dual: the primal must be a float tensor, got ${primal.dtype}`);
  // Vectorized forward mode (functional.jacobian's vectorize) gives each tangent a leading dim of columns.
  const B = tangentBatchSize();
  const shape = B ? [B, ...primal.shape] : primal.shape;
  if (!sameShape(shape, tangent.shape) || !isFloat(tangent.dtype) || primal.device !== tangent.device) {
    throw new Error(`dual: the tangent (${tangent.dtype} ${fmt(tangent.shape)} on ${tangent.device}) must be a float tensor ` +
      `of the primal's shape and device (${primal.dtype} ${fmt(shape)} on ${primal.device})`);
  }
  if (primal.tangent) throw new Error('dual: the primal is already a dual tensor; nested forward mode is not supported');
  const d = withoutForwardAd(() => dualOp(primal));
  // A tangent of another float dtype is taken in the primal's, as PyTorch's make_dual propagates it.
  d.tangent = tangent.dtype === primal.dtype ? tangent : withoutForwardAd(() => tangent.to(primal.dtype));
  return d;
}

/** The primal (a tensor without the tangent, keeping reverse-mode history) and the tangent (null: none). */
export function unpackDual(t: Tensor): { primal: Tensor; tangent: Tensor | null } {
  return { primal: withoutForwardAd(() => primalOp(t)), tangent: t.tangent };
}
