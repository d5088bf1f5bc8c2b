/** Data-movement kernels: transpose, broadcast, slice, pad, concat, one-hot. */
import type { Kernels, Raw } from '../../backend.js';
import { numel, stridesOf } from '../../shape.js';
import { arr, broadcastStrides, forEachBroadcast, out } from './util.js';

/** Copies x into a new tensor of outShape where source offsets follow `srcStrides`, plus `base`. */
function gather(x: Raw, outShape: readonly number[], srcStrides: number[], base = 0): Raw {
  const r = out(outShape, x.dtype);
  const o = arr(r), a = arr(x);
  forEachBroadcast(outShape, srcStrides, srcStrides, (i, ia) => { o[i] = a[ia + base]!; });
  return r;
}

const missing = (k: string) => () => { throw new Error(`ts backend: kernel ${k} is not written yet`); };
export const movementKernels: Pick<Kernels, 'Transpose' | 'BroadcastTo' | 'Slice' | 'Pad' | 'Concat' | 'OneHot'> = {
  Slice: missing('Slice'), Pad: missing('Pad'), Concat: missing('Concat'), OneHot: missing('OneHot'),
  Transpose: (x, perm) => {
    const s = stridesOf(x.shape);
    return gather(x, perm.map((p) => x.shape[p]!), perm.map((p) => s[p]!));
  },
  BroadcastTo: (x, shape) => gather(x, shape, broadcastStrides(x.shape, shape)),
};
void numel;
