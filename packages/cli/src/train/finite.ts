/** Finding NaN and Inf in weights before they are saved or evaluated. */
import { add, isFloat, mul, noGrad, sum, tidy, type Tensor } from '@nodegrad/autograd';

/**
 * The names of the floating-point tensors of `dict` that hold a NaN or an infinity. sum(t * 0) is
 * NaN exactly when t has one (x * 0 is 0 for every finite x); the sums of all tensors are added on
 * the device and read back once, and only when that is NaN is each tensor read to name it.
 */
export function nonFiniteTensors(dict: Record<string, Tensor>): string[] {
  const entries = Object.entries(dict).filter(([, t]) => isFloat(t.dtype) && t.size > 0);
  if (entries.length === 0) return [];
  return noGrad(() => tidy(() => {
    const probe = (t: Tensor) => sum(mul(t, 0)).to('float32');
    const total = entries.reduce<Tensor | null>((acc, [, t]) => (acc ? add(acc, probe(t)) : probe(t)), null)!;
    if (!Number.isNaN(total.item())) return [];
    return entries.filter(([, t]) => Number.isNaN(probe(t).item())).map(([name]) => name);
  }));
}

/** `a, b, c and 12 more`: the first `n` names of a list that may be long. */
export function listSome(names: readonly string[], n = 5): string {
  if (names.length <= n) return names.join(', ');
  return `${names.slice(0, n).join(', ')} and ${names.length - n} more`;
}
