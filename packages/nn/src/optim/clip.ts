/** Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_. */
import {
  abs, clamp, div, isHalf, max, min, ne, noGrad, pow, promoteFloat, sqrt, stack, sum, Tensor, zeros, type FloatDType,
} from '@nodegrad/autograd';

function gradsOf(op: string, parameters: Tensor | Iterable<Tensor>): Tensor[] {
  const list = parameters instanceof Tensor ? [parameters] : [...parameters];
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new Error(`${op}: parameters[${i}] is not a Tensor`);
  });
  return list.flatMap((p) => (p.grad ? [p.grad] : []));
}

/**
 * The p-norm of all of x's elements, in x's dtype: the largest (Infinity) or smallest (-Infinity)
 * magnitude, the count of nonzeros (0), or (sum |x|^p)^(1/p). A half x is summed in float32 and
 * rounded once, as PyTorch's vector_norm (|x|^p rounded to half per element would drift).
 */
function pNorm(x: Tensor, p: number): Tensor {
  if (p === Infinity) return max(abs(x));
  if (p === -Infinity) return min(abs(x));
  const w = isHalf(x.dtype) ? x.to('float32') : x;
  const r = p === 2 ? sqrt(sum(w.mul(w))) : p === 1 ? sum(abs(w)) : p === 0 ? sum(ne(w, 0))
    : pow(sum(pow(abs(w), p)), 1 / p);
  return r.to(x.dtype);
}

/**
 * Scales the gradients of `parameters` in place so that their joint `normType`-norm (all
 * gradients as one vector) is at most `maxNorm`, and returns that norm as it was before the
 * scaling (a 0-d tensor). The scale is min(1, maxNorm / (norm + 1e-6)), applied without a
 * branch, as PyTorch does. Parameters without a gradient are skipped.
 * @example const norm = clipGradNorm_(model.parameters(), 1.0); // between backward() and step()
 */
export function clipGradNorm_(parameters: Tensor | Iterable<Tensor>, maxNorm: number, normType: number | 'inf' | '-inf' = 2,
  { errorIfNonfinite = false }: { errorIfNonfinite?: boolean } = {}): Tensor {
  const op = 'clipGradNorm_';
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0)) throw new Error(`${op}: invalid maxNorm ${String(maxNorm)}: must be a number >= 0`);
  // As PyTorch's float(norm_type): 'inf' and '-inf' spell the infinities; any other order is a number.
  const p = normType === 'inf' ? Infinity : normType === '-inf' ? -Infinity : normType;
  if (typeof p !== 'number' || Number.isNaN(p)) {
    throw new Error(`${op}: invalid normType ${String(normType)}: must be a number, Infinity, -Infinity, 'inf' or '-inf'`);
  }
  const grads = gradsOf(op, parameters);
  if (grads.length === 0) return zeros([]);
  return noGrad(() => {
    const first = grads[0]!;
    // Each gradient's norm in its own dtype, moved to the first one's device; the norm of those in
    // the widest dtype (PyTorch's stack promotes: bfloat16 and float32 gradients give a float32 norm).
    const dtype = grads.map((g) => g.dtype as FloatDType).reduce(promoteFloat);
    const norms = grads.map((g) => pNorm(g.detach(), p).to(first.device).to(dtype));
    // PyTorch takes the norm of the stacked norms even for one gradient, except for the max norm.
    const total = p === Infinity && norms.length === 1 ? norms[0]! : pNorm(stack(norms), p);
    if (errorIfNonfinite && !Number.isFinite(total.item())) {
      throw new Error(`${op}: the total norm of order ${p} of the gradients is ${total.item()}, ` +
        'so they cannot be clipped; pass errorIfNonfinite: false to scale them anyway');
    }
    const coef = clamp(div(maxNorm, total.add(1e-6)), null, 1);
    for (const g of grads) {
      const c = coef.to(g.device);
      // A half gradient takes a wider coefficient as a float32 scalar: the product in float32,
      // rounded once, as PyTorch's with a 0-d tensor (the coefficient rounded first would not be);
      // a 0-d half gradient beside a 0-d scalar is a mix, so it is widened for the product.
      if (!isHalf(g.dtype) || isHalf(c.dtype)) g.mul_(c.to(g.dtype));
      else if (g.ndim > 0) g.mul_(c.to('float32'));
      else g.copy_(g.to('float32').mul(c.to('float32')).to(g.dtype));
    }
    return total;
  });
}

/**
 * Clamps every gradient of `parameters` in place to [-clipValue, clipValue]. Parameters without
 * a gradient are skipped.
 */
export function clipGradValue_(parameters: Tensor | Iterable<Tensor>, clipValue: number): void {
  const op = 'clipGradValue_';
  if (typeof clipValue !== 'number' || !(clipValue >= 0)) {
    throw new Error(`${op}: invalid clipValue ${String(clipValue)}: must be a number >= 0`);
  }
  const grads = gradsOf(op, parameters);
  noGrad(() => { for (const g of grads) g.clamp_(-clipValue, clipValue); });
}
