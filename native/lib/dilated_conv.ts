/**
 * A dilated convolution as an undilated one over a zero-stuffed weight: the taps of a k x k weight
 * with dilation d sit d apart in a ((k-1)d+1)-wide one of zeros elsewhere, which gives the same
 * sums. The 'cuda' devices take this form for the two backward passes in deterministic mode:
 * cuDNN may have no deterministic algorithm for a dilated convolution's backward (PyTorch then
 * leaves cuDNN for its own kernels), while undilated ones always have one; every forward algorithm
 * is deterministic, so the forward stays dilated. The weight gradient is the stuffed weight's at
 * the taps. Exact, at (k-1)d+1 squared over k squared the multiply-adds.
 */
import type { Conv2DParams, Kernels, Raw, Shape } from '@nodegrad/autograd';

type ConvKernels = Pick<Kernels, 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter'>;

export const isDilated = (p: Conv2DParams): boolean => p.dilation[0] > 1 || p.dilation[1] > 1;

/** The same storage under another shape (storages are contiguous, row-major). */
const as = (r: Raw, shape: Shape): Raw => ({ buf: r.buf, shape, dtype: r.dtype });

/** The stuffed weight's shape for `wShape` [O, I, kh, kw]. */
function stuffedShape(wShape: Shape, [dh, dw]: readonly number[]): Shape {
  const [o, i, kh, kw] = wShape as [number, number, number, number];
  return [o, i, (kh - 1) * dh! + 1, (kw - 1) * dw! + 1];
}

/**
 * Convolution kernels over `k` that run dilated convolutions undilated; `free` releases
 * temporaries, also when a step throws (a temporary is no tensor, so nothing else would free it).
 */
export function undilatedConv(k: Kernels, free: (buf: unknown) => void): ConvKernels {
  const undilated = (p: Conv2DParams): Conv2DParams => ({ ...p, dilation: [1, 1] });
  const using = <T>(tmp: Raw, fn: (tmp: Raw) => T): T => {
    try {
      return fn(tmp);
    } finally {
      free(tmp.buf);
    }
  };
  const stuff = (w: Raw, p: Conv2DParams): Raw => {
    const [o, i, kh, kw] = w.shape as [number, number, number, number];
    const [dh, dw] = p.dilation;
    // [O, I, kh, 1, kw, 1] padded to [O, I, kh, dh, kw, dw]: each tap followed by d - 1 zeros in
    // both directions; the trailing zeros past the last tap are sliced off.
    const padded = k.Pad(as(w, [o, i, kh, 1, kw, 1]), [[0, 0], [0, 0], [0, 0], [0, dh - 1], [0, 0], [0, dw - 1]], 0);
    return using(padded, (pd) => k.Slice(as(pd, [o, i, kh * dh, kw * dw]), [0, 0, 0, 0], stuffedShape(w.shape, p.dilation), [1, 1, 1, 1]));
  };
  return {
    Conv2D(x, w, p) {
      return using(stuff(w, p), (s) => k.Conv2D(x, s, undilated(p)));
    },
    Conv2DBackpropInput(dy, w, xShape, p) {
      return using(stuff(w, p), (s) => k.Conv2DBackpropInput(dy, s, xShape, undilated(p)));
    },
    Conv2DBackpropFilter(x, dy, wShape, p, dtype) {
      const [o, i, kh, kw] = wShape as [number, number, number, number];
      return using(k.Conv2DBackpropFilter(x, dy, stuffedShape(wShape, p.dilation), undilated(p), dtype),
        (g) => k.Slice(g, [0, 0, 0, 0], [o, i, kh, kw], [1, 1, p.dilation[0], p.dilation[1]]));
    },
  };
}
