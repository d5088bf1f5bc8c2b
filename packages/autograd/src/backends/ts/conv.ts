/**
 * Conv2D and its two backward kernels for the TS backend, NCHW input and OIHW weight, by
 * lowering to GEMM: per image and per group, im2col builds the patch matrix and gemm does the
 * arithmetic, so convolution runs at matrix-multiply speed. Shapes per image and group g:
 *   forward          y_g[Og, P]      = W_g[Og, Kc] · col[Kc, P]
 *   backprop-input   dcol[Kc, P]     = W_gᵀ · dy_g[Og, P], then col2im into dx
 *   backprop-filter  dW_g[Og, Kc]   += dy_g · colᵀ   (summed over the batch)
 * with Kc = Cg·kh·kw and P = Hout·Wout.
 */
import type { Kernels } from '../../backend.js';
import { gemm, fromF64, toF64 } from './gemm.js';
import { col2im, convGeom, im2col, isPointwise, type ConvGeom } from './im2col.js';

/** Offsets of image n, group gi in x (input side) and y (output side), in elements. */
function offsets(g: ConvGeom, n: number, gi: number): { xOff: number; yOff: number } {
  return {
    xOff: (n * g.c + gi * g.cg) * g.h * g.w,
    yOff: (n * g.o + gi * g.og) * g.oh * g.ow,
  };
}

export const convKernels: Pick<Kernels, 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter'> = {
  Conv2D(x, w, p) {
    const g = convGeom('Conv2D', x.shape, w.shape, p);
    const X = toF64(x), W = toF64(w);
    const kc = g.cg * g.kh * g.kw, P = g.oh * g.ow;
    const Y = new Float64Array(g.n * g.o * P);
    const direct = isPointwise(g);
    const col = direct ? X : new Float64Array(kc * P);
    for (let n = 0; n < g.n; n++) {
      for (let gi = 0; gi < g.groups; gi++) {
        const { xOff, yOff } = offsets(g, n, gi);
        if (!direct) im2col(X, xOff, g, col);
        gemm(g.og, P, kc,
          { data: W, off: gi * g.og * kc, rs: kc, cs: 1 },
          { data: col, off: direct ? xOff : 0, rs: P, cs: 1 },
          { data: Y, off: yOff, rs: P, cs: 1 });
      }
    }
    return fromF64(Y, [g.n, g.o, g.oh, g.ow], x.dtype);
  },

  Conv2DBackpropInput(dy, w, xShape, p) {
    const g = convGeom('Conv2DBackpropInput', xShape, w.shape, p, dy.shape);
    const DY = toF64(dy), W = toF64(w);
    const kc = g.cg * g.kh * g.kw, P = g.oh * g.ow;
    const DX = new Float64Array(g.n * g.c * g.h * g.w);
    // Pointwise: dcol is the dx block itself, and gemm accumulates straight into it.
    const direct = isPointwise(g);
    const dcol = direct ? DX : new Float64Array(kc * P);
    for (let n = 0; n < g.n; n++) {
      for (let gi = 0; gi < g.groups; gi++) {
        const { xOff, yOff } = offsets(g, n, gi);
        if (!direct) dcol.fill(0);
        gemm(kc, P, g.og,
          { data: W, off: gi * g.og * kc, rs: 1, cs: kc },
          { data: DY, off: yOff, rs: P, cs: 1 },
          { data: dcol, off: direct ? xOff : 0, rs: P, cs: 1 });
        if (!direct) col2im(dcol, g, DX, xOff);
      }
    }
    return fromF64(DX, xShape, dy.dtype);
  },

  Conv2DBackpropFilter(x, dy, wShape, p, dtype) {
    const g = convGeom('Conv2DBackpropFilter', x.shape, wShape, p, dy.shape);
    const X = toF64(x), DY = toF64(dy);
    const kc = g.cg * g.kh * g.kw, P = g.oh * g.ow;
    const DW = new Float64Array(g.o * kc);
    const direct = isPointwise(g);
    const col = direct ? X : new Float64Array(kc * P);
    for (let n = 0; n < g.n; n++) {
      for (let gi = 0; gi < g.groups; gi++) {
        const { xOff, yOff } = offsets(g, n, gi);
        if (!direct) im2col(X, xOff, g, col);
        gemm(g.og, kc, P,
          { data: DY, off: yOff, rs: P, cs: 1 },
          { data: col, off: direct ? xOff : 0, rs: 1, cs: P },
          { data: DW, off: gi * g.og * kc, rs: kc, cs: 1 });
      }
    }
    return fromF64(DW, wShape, dtype ?? x.dtype);
  },
};
