/** The 'ts' backend's creation kernels: Copy, Fill and the counter-based random draws. */
import type { Kernels } from '../../backend.js';
import { normal, philoxBlock, uniform24, uniform53, uniformHalf } from '../../philox.js';
import { numel } from '../../shape.js';
import { arr, out } from './util.js';

/** Element i of a draw: f of the Philox block of counter offset + i. */
function draw(shape: readonly number[], dtype: Parameters<Kernels['Fill']>[2], seed: number, offset: number,
  f: (w: Uint32Array) => number) {
  const r = out(shape, dtype);
  const o = arr(r);
  const w = new Uint32Array(4);
  for (let i = 0; i < o.length; i++) {
    philoxBlock(seed, offset + i, w);
    o[i] = f(w);
  }
  return r;
}

export const creationKernels: Pick<Kernels, 'Copy' | 'Fill' | 'RandomUniform' | 'RandomNormal' | 'Bernoulli'> = {
  Copy: (x) => out(x.shape, x.dtype, arr(x).slice()),
  Fill: (shape, value, dtype) => {
    const r = out(shape, dtype);
    // Integer dtypes truncate, as torch.full does.
    arr(r).fill(dtype === 'int64' || dtype === 'int32' ? Math.trunc(value) : value);
    return r;
  },
  RandomUniform: (shape, dtype, seed, offset) =>
    draw(shape, dtype, seed, offset, dtype === 'float64' ? uniform53 : dtype === 'bfloat16' ? (w) => uniformHalf(w, 8)
      : dtype === 'float16' ? (w) => uniformHalf(w, 11) : uniform24),
  RandomNormal: (shape, dtype, seed, offset) => draw(shape, dtype, seed, offset, normal),
  Bernoulli: (shape, p, value, dtype, seed, offset) => {
    if (!(p >= 0 && p <= 1)) throw new Error(`Bernoulli: p must be in [0, 1], got ${p} (shape [${shape.join(', ')}])`);
    return numel(shape) === 0 ? out(shape, dtype) : draw(shape, dtype, seed, offset, (w) => (uniform53(w) < p ? value : 0));
  },
};
