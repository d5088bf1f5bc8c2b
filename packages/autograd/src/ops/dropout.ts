/** dropout: zeroes elements with probability p, the mask drawn on the device from the seeded stream. */
import { takeOffset } from '../random.js';
import type { Tensor } from '../tensor.js';
import { mul } from './arith.js';
import { checkFloat, checkTensor, kernels, wrap } from './util.js';

/**
 * Keeps each element with probability 1 - p and scales kept ones by 1 / (1 - p), so the
 * expectation is unchanged; the identity when not training, as F.dropout. Seed with manualSeed.
 */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  checkTensor('dropout', 'input', x);
  checkFloat('dropout', 'input', x);
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: dropout probability has to be between 0 and 1, but got ${p}`);
  if (!training || p === 0 || x.size === 0) return x;
  // p = 1 keeps nothing; multiplying by 0 (not 1/(1-p) = Inf) gives zeros and a zero gradient.
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const { seed, offset } = takeOffset(x.size);
  return mul(x, wrap(kernels(x).Bernoulli(x.shape, 1 - p, scale, x.dtype, seed, offset), x));
}
