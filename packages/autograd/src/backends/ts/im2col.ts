/**
 * im2col / col2im: the lowering that turns a 2-D convolution into a matrix multiply
 * (Chellapilla et al., "High Performance Convolutional Neural Networks for Document Processing", 2006).
 * For one image and one group, col has a row per (channel, kernel row, kernel column) and a
 * column per output pixel, so conv forward is W_g[Og, Cg·kh·kw] · col[Cg·kh·kw, Hout·Wout].
 */
import type { Conv2DParams } from '../../backend.js';
import { fmt, type Shape } from '../../shape.js';

/** Everything about one conv2d call's geometry, derived once from the shapes and params. */
export interface ConvGeom {
  n: number; c: number; h: number; w: number;
  o: number; kh: number; kw: number;
  oh: number; ow: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
  groups: number;
  /** Channels per group on the input side (the weight's I) and on the output side. */
  cg: number; og: number;
}

/**
 * Reads the geometry from an NCHW input shape and an OIHW weight shape; when `yShape` is given
 * (the backward kernels) the output size must agree with PyTorch's formula
 * floor((H + 2·pad − dil·(k − 1) − 1) / stride) + 1.
 */
export function convGeom(kernel: string, xShape: Shape, wShape: Shape, p: Conv2DParams, yShape?: Shape): ConvGeom {
  if (xShape.length !== 4 || wShape.length !== 4) {
    throw new Error(`ts ${kernel}: expected NCHW input and OIHW weight, got ${fmt(xShape)} and ${fmt(wShape)}`);
  }
  const [n, c, h, w] = xShape as [number, number, number, number];
  const [o, cg, kh, kw] = wShape as [number, number, number, number];
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw], groups } = p;
  if (cg * groups !== c || o % groups !== 0) {
    throw new Error(`ts ${kernel}: input ${fmt(xShape)} and weight ${fmt(wShape)} do not fit groups=${groups}`);
  }
  const oh = Math.max(0, Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1);
  const ow = Math.max(0, Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1);
  if (yShape && (yShape.length !== 4 || yShape[0] !== n || yShape[1] !== o || yShape[2] !== oh || yShape[3] !== ow)) {
    throw new Error(`ts ${kernel}: output gradient ${fmt(yShape)} does not match the expected ${fmt([n, o, oh, ow])}`);
  }
  return { n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, groups, cg, og: o / groups };
}

/** A 1x1, stride-1, unpadded conv: col is the input block itself, so the copy can be skipped. */
export function isPointwise(g: ConvGeom): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

/**
 * The output columns [lo, hi) whose input column ow·sw − pw + j·dw falls inside [0, w):
 * everything outside is zero padding, so the inner loops run without bounds tests.
 */
function validCols(g: ConvGeom, j: number): [number, number] {
  const shift = j * g.dw - g.pw; // input column of output column 0
  const lo = shift >= 0 ? 0 : Math.ceil(-shift / g.sw);
  const hi = Math.floor((g.w - 1 - shift) / g.sw) + 1;
  const start = Math.min(lo, g.ow);
  return [start, Math.max(start, Math.min(hi, g.ow))];
}

/** Fills col[Cg·kh·kw, oh·ow] from the cg channels of x that start at xOff (one image, one group). */
export function im2col(x: Float64Array, xOff: number, g: ConvGeom, col: Float64Array): void {
  const { h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, cg } = g;
  for (let ch = 0; ch < cg; ch++) {
    const plane = xOff + ch * h * w;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const row = ((ch * kh + i) * kw + j) * oh * ow;
        const [lo, hi] = validCols(g, j);
        for (let oy = 0; oy < oh; oy++) {
          const dst = row + oy * ow;
          const iy = oy * sh - ph + i * dh;
          if (iy < 0 || iy >= h) { col.fill(0, dst, dst + ow); continue; }
          col.fill(0, dst, dst + lo);
          // Input column of output column ox is ox·sw + (j·dw − pw).
          let src = plane + iy * w + lo * sw + j * dw - pw;
          for (let ox = lo; ox < hi; ox++, src += sw) col[dst + ox] = x[src]!;
          col.fill(0, dst + hi, dst + ow);
        }
      }
    }
  }
}

/** The adjoint of im2col: adds col[Cg·kh·kw, oh·ow] back into the cg channels of dx at dxOff. */
export function col2im(col: Float64Array, g: ConvGeom, dx: Float64Array, dxOff: number): void {
  const { h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, cg } = g;
  for (let ch = 0; ch < cg; ch++) {
    const plane = dxOff + ch * h * w;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const row = ((ch * kh + i) * kw + j) * oh * ow;
        const [lo, hi] = validCols(g, j);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph + i * dh;
          if (iy < 0 || iy >= h) continue;
          const srcRow = row + oy * ow;
          let dst = plane + iy * w + lo * sw + j * dw - pw;
          for (let ox = lo; ox < hi; ox++, dst += sw) dx[dst] += col[srcRow + ox]!;
        }
      }
    }
  }
}
