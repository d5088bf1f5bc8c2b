/**
 * 2-D pooling kernels over the last two dims of [N, C, H, W] (or [C, H, W]): max with plane
 * indices, average with PyTorch's divisor rule, adaptive average; each with its backward.
 * Window bounds are computed once per output row and column, so the inner loops are plain
 * contiguous runs over one input row.
 */
import type { Kernels, Pool2DParams, Raw } from '../../backend.js';
import { fmt, numel, type Shape } from '../../shape.js';
import { arr, farr, out } from './util.js';

interface Planes { lead: number[]; planes: number; H: number; W: number }

function planesOf(op: string, shape: Shape): Planes {
  if (shape.length !== 3 && shape.length !== 4) {
    throw new Error(`${op}: expected input of shape [N, C, H, W] or [C, H, W], got ${fmt(shape)}`);
  }
  const lead = shape.slice(0, -2);
  return { lead, planes: numel(lead), H: shape[shape.length - 2]!, W: shape[shape.length - 1]! };
}

/**
 * PyTorch's pooling output size: floor((n + 2p - d(k-1) - 1 + (ceil ? s-1 : 0)) / s) + 1, and in
 * ceil mode a last window that would start inside the right padding is dropped.
 */
function poolOutSize(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let o = Math.floor((n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

function outSizes(op: string, shape: Shape, p: Pool2DParams): [number, number] {
  const { H, W } = planesOf(op, shape);
  const eff = [p.dilation[0] * (p.kernel[0] - 1) + 1, p.dilation[1] * (p.kernel[1] - 1) + 1];
  const bad = [0, 1].some((i) => !(p.kernel[i]! >= 1 && p.stride[i]! >= 1 && p.dilation[i]! >= 1 &&
    p.padding[i]! >= 0 && 2 * p.padding[i]! <= eff[i]!));
  if (bad) {
    throw new Error(`${op}: kernel ${fmt(p.kernel)}, stride ${fmt(p.stride)}, dilation ${fmt(p.dilation)} must be ` +
      `positive and padding ${fmt(p.padding)} at most half the effective kernel, for input ${fmt(shape)}`);
  }
  const oh = poolOutSize(H, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode);
  const ow = poolOutSize(W, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode);
  if (oh < 1 || ow < 1) {
    throw new Error(`${op}: output size [${oh}, ${ow}] is too small for input ${fmt(shape)} with kernel ${fmt(p.kernel)}, ` +
      `stride ${fmt(p.stride)}, padding ${fmt(p.padding)}, dilation ${fmt(p.dilation)}`);
  }
  return [oh, ow];
}

/**
 * For each output position along one dim: the first tap and the tap bound that land inside
 * [0, n), and the input position of tap 0.
 */
function taps(n: number, o: number, k: number, s: number, p: number, d: number) {
  const lo = new Int32Array(o), hi = new Int32Array(o), start = new Int32Array(o);
  for (let i = 0; i < o; i++) {
    const s0 = i * s - p;
    start[i] = s0;
    lo[i] = s0 < 0 ? Math.ceil(-s0 / d) : 0;
    hi[i] = Math.min(k, Math.ceil((n - s0) / d));
  }
  return { lo, hi, start };
}

function maxPool2d(x: Raw, p: Pool2DParams): { y: Raw; indices: Raw } {
  const { lead, planes, H, W } = planesOf('MaxPool2D', x.shape);
  const [OH, OW] = outSizes('MaxPool2D', x.shape, p);
  const [dh, dw] = p.dilation;
  const th = taps(H, OH, p.kernel[0], p.stride[0], p.padding[0], dh);
  const tw = taps(W, OW, p.kernel[1], p.stride[1], p.padding[1], dw);
  const y = out([...lead, OH, OW], x.dtype), indices = out([...lead, OH, OW], 'int64');
  const a = farr(x), o = farr(y), io = arr(indices);
  for (let c = 0; c < planes; c++) {
    const base = c * H * W;
    let at = c * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = th.start[oh]!, hLo = th.lo[oh]!, hHi = th.hi[oh]!;
      for (let ow = 0; ow < OW; ow++, at++) {
        const w0 = tw.start[ow]!, wLo = tw.lo[ow]!, wHi = tw.hi[ow]!;
        // The index starts at the first in-bounds tap, as PyTorch's. With dilation a window can
        // miss the input entirely (output -inf); the index is then clamped into the plane so that
        // backward never writes outside it.
        let best = -Infinity;
        let bestAt = Math.min(h0 + hLo * dh, H - 1) * W + Math.min(w0 + wLo * dw, W - 1);
        for (let i = hLo; i < hHi; i++) {
          const h = h0 + i * dh;
          const row = base + h * W;
          for (let j = wLo; j < wHi; j++) {
            const w = w0 + j * dw;
            const v = a[row + w]!;
            // The first maximum wins; NaN beats every number, as in PyTorch.
            if (v > best || v !== v) { best = v; bestAt = h * W + w; }
          }
        }
        o[at] = best;
        io[at] = bestAt;
      }
    }
  }
  return { y, indices };
}

function checkIndices(op: string, indices: Raw, like: Shape, likeName: string): void {
  const same = indices.shape.length === like.length && indices.shape.every((d, i) => d === like[i]);
  if (!same || (indices.dtype !== 'int64' && indices.dtype !== 'int32')) {
    throw new Error(`${op}: indices ${fmt(indices.shape)} (${indices.dtype}) must be int64 with the shape of ${likeName} ${fmt(like)}`);
  }
}

function maxPool2dScatter(dy: Raw, indices: Raw, xShape: Shape): Raw {
  const { planes, H, W } = planesOf('MaxPool2DScatter', xShape);
  checkIndices('MaxPool2DScatter', indices, dy.shape, 'dy');
  const L = dy.shape.length < 2 ? 0 : numel(dy.shape.slice(-2));
  if (numel(dy.shape) !== planes * L) {
    throw new Error(`MaxPool2DScatter: dy ${fmt(dy.shape)} does not have the planes of input ${fmt(xShape)}`);
  }
  const dx = out(xShape, dy.dtype);
  const g = farr(dy), d = farr(dx), id = arr(indices);
  const HW = H * W;
  for (let c = 0; c < planes; c++) {
    const ib = c * HW, ob = c * L;
    for (let i = 0; i < L; i++) d[ib + id[ob + i]!]! += g[ob + i]!;
  }
  return dx;
}

function maxPool2dGather(x: Raw, indices: Raw): Raw {
  const { planes, H, W } = planesOf('MaxPool2DGather', x.shape);
  const L = indices.shape.length < 2 ? 0 : numel(indices.shape.slice(-2));
  if (indices.shape.length !== x.shape.length || numel(indices.shape) !== planes * L ||
      (indices.dtype !== 'int64' && indices.dtype !== 'int32')) {
    throw new Error(`MaxPool2DGather: indices ${fmt(indices.shape)} (${indices.dtype}) do not match the planes of x ${fmt(x.shape)}`);
  }
  const r = out(indices.shape, x.dtype);
  const a = farr(x), o = farr(r), id = arr(indices);
  const HW = H * W;
  for (let c = 0; c < planes; c++) {
    const ib = c * HW, ob = c * L;
    for (let i = 0; i < L; i++) o[ob + i] = a[ib + id[ob + i]!]!;
  }
  return r;
}

/**
 * Average-pool windows along one dim: clipped [lo, hi) in the input, and the window length
 * counted up to the padded border (PyTorch's pool_size, which includes padding).
 */
function avgWindows(n: number, o: number, k: number, s: number, p: number) {
  const lo = new Int32Array(o), hi = new Int32Array(o), padded = new Int32Array(o);
  for (let i = 0; i < o; i++) {
    const s0 = i * s - p;
    const e0 = Math.min(s0 + k, n + p);
    padded[i] = e0 - s0;
    lo[i] = Math.max(s0, 0);
    hi[i] = Math.min(e0, n);
  }
  return { lo, hi, padded };
}

/** Shared set-up of AvgPool2D and its backward: windows and the divisor of every output element. */
function avgPlan(op: string, xShape: Shape, p: Pool2DParams) {
  if (p.dilation[0] !== 1 || p.dilation[1] !== 1) {
    throw new Error(`${op}: dilation must be [1, 1], got ${fmt(p.dilation)} for input ${fmt(xShape)}`);
  }
  const pl = planesOf(op, xShape);
  const [OH, OW] = outSizes(op, xShape, p);
  const wh = avgWindows(pl.H, OH, p.kernel[0], p.stride[0], p.padding[0]);
  const ww = avgWindows(pl.W, OW, p.kernel[1], p.stride[1], p.padding[1]);
  // The divisor is the same for every plane. A window with no input element sums to 0; its
  // divisor is 1 so that it averages to 0 rather than NaN.
  const div = new Float64Array(OH * OW);
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      const eh = wh.hi[oh]! - wh.lo[oh]!, ew = ww.hi[ow]! - ww.lo[ow]!;
      div[oh * OW + ow] = eh <= 0 || ew <= 0 ? 1 : p.countIncludePad ? wh.padded[oh]! * ww.padded[ow]! : eh * ew;
    }
  }
  return { ...pl, OH, OW, wh, ww, div };
}

function avgPool2d(x: Raw, p: Pool2DParams): Raw {
  const { lead, planes, H, W, OH, OW, wh, ww, div } = avgPlan('AvgPool2D', x.shape, p);
  const y = out([...lead, OH, OW], x.dtype);
  const a = farr(x), o = farr(y);
  for (let c = 0; c < planes; c++) {
    const base = c * H * W, ob = c * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ww.lo[ow]!, w1 = ww.hi[ow]!;
        let s = 0;
        for (let h = wh.lo[oh]!; h < wh.hi[oh]!; h++) {
          const row = base + h * W;
          for (let w = w0; w < w1; w++) s += a[row + w]!;
        }
        o[ob + oh * OW + ow] = s / div[oh * OW + ow]!;
      }
    }
  }
  return y;
}

function avgPool2dBackward(dy: Raw, xShape: Shape, p: Pool2DParams): Raw {
  const { lead, planes, H, W, OH, OW, wh, ww, div } = avgPlan('AvgPool2DBackward', xShape, p);
  const want = [...lead, OH, OW];
  if (dy.shape.length !== want.length || dy.shape.some((d, i) => d !== want[i])) {
    throw new Error(`AvgPool2DBackward: dy ${fmt(dy.shape)} should be ${fmt(want)} for input ${fmt(xShape)}`);
  }
  const dx = out(xShape, dy.dtype);
  const g = farr(dy), d = farr(dx);
  for (let c = 0; c < planes; c++) {
    const base = c * H * W, ob = c * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const v = g[ob + oh * OW + ow]! / div[oh * OW + ow]!;
        const w0 = ww.lo[ow]!, w1 = ww.hi[ow]!;
        for (let h = wh.lo[oh]!; h < wh.hi[oh]!; h++) {
          const row = base + h * W;
          for (let w = w0; w < w1; w++) d[row + w]! += v;
        }
      }
    }
  }
  return dx;
}

/** PyTorch's adaptive bins: [floor(i n / o), ceil((i + 1) n / o)). */
function adaptiveBins(n: number, o: number) {
  const lo = new Int32Array(o), hi = new Int32Array(o);
  for (let i = 0; i < o; i++) { lo[i] = Math.floor((i * n) / o); hi[i] = Math.ceil(((i + 1) * n) / o); }
  return { lo, hi };
}

/** Shared set-up of AdaptiveAvgPool2D and its backward: the planes and the bins along H and W. */
function adaptivePlan(op: string, xShape: Shape, OH: number, OW: number) {
  const pl = planesOf(op, xShape);
  if (!(Number.isInteger(OH) && Number.isInteger(OW) && OH >= 1 && OW >= 1)) {
    throw new Error(`${op}: output size [${OH}, ${OW}] must be positive integers, for input ${fmt(xShape)}`);
  }
  return { ...pl, bh: adaptiveBins(pl.H, OH), bw: adaptiveBins(pl.W, OW) };
}

function adaptiveAvgPool2d(x: Raw, [OH, OW]: [number, number]): Raw {
  const { lead, planes, H, W, bh, bw } = adaptivePlan('AdaptiveAvgPool2D', x.shape, OH, OW);
  const y = out([...lead, OH, OW], x.dtype);
  const a = farr(x), o = farr(y);
  for (let c = 0; c < planes; c++) {
    const base = c * H * W;
    let at = c * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = bh.lo[oh]!, h1 = bh.hi[oh]!;
      for (let ow = 0; ow < OW; ow++, at++) {
        const w0 = bw.lo[ow]!, w1 = bw.hi[ow]!;
        let s = 0;
        for (let h = h0; h < h1; h++) {
          const row = base + h * W;
          for (let w = w0; w < w1; w++) s += a[row + w]!;
        }
        o[at] = s / ((h1 - h0) * (w1 - w0));
      }
    }
  }
  return y;
}

function adaptiveAvgPool2dBackward(dy: Raw, xShape: Shape): Raw {
  const op = 'AdaptiveAvgPool2DBackward';
  const lead = xShape.slice(0, -2);
  if (dy.shape.length !== xShape.length || lead.some((d, i) => d !== dy.shape[i])) {
    throw new Error(`${op}: dy ${fmt(dy.shape)} does not have the planes of input ${fmt(xShape)}`);
  }
  const OH = dy.shape[dy.shape.length - 2]!, OW = dy.shape[dy.shape.length - 1]!;
  const { planes, H, W, bh, bw } = adaptivePlan(op, xShape, OH, OW);
  const dx = out(xShape, dy.dtype);
  const g = farr(dy), d = farr(dx);
  for (let c = 0; c < planes; c++) {
    const base = c * H * W;
    let at = c * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = bh.lo[oh]!, h1 = bh.hi[oh]!;
      for (let ow = 0; ow < OW; ow++, at++) {
        const w0 = bw.lo[ow]!, w1 = bw.hi[ow]!;
        const v = g[at]! / ((h1 - h0) * (w1 - w0));
        for (let h = h0; h < h1; h++) {
          const row = base + h * W;
          for (let w = w0; w < w1; w++) d[row + w]! += v;
        }
      }
    }
  }
  return dx;
}

/** The argmax is recomputed from x (first maximum in scan order, NaN wins): y is not needed. */
function maxPool2dBackward(dy: Raw, x: Raw, _y: Raw, p: Pool2DParams): Raw {
  if (dy.shape.join() !== outShapeOf(x.shape, p).join()) {
    throw new Error(`MaxPool2DBackward: dy ${fmt(dy.shape)} is not the output shape ${fmt(outShapeOf(x.shape, p))} of x ${fmt(x.shape)}`);
  }
  return maxPool2dScatter(dy, maxPool2d(x, p).indices, x.shape);
}

function outShapeOf(xShape: Shape, p: Pool2DParams): number[] {
  return [...xShape.slice(0, -2), ...outSizes('MaxPool2DBackward', xShape, p)];
}

export const poolKernels: Pick<Kernels, 'MaxPool2D' | 'MaxPool2DBackward' | 'MaxPool2DWithIndices' | 'MaxPool2DScatter' |
  'MaxPool2DGather' | 'AvgPool2D' | 'AvgPool2DBackward' | 'AdaptiveAvgPool2D' | 'AdaptiveAvgPool2DBackward'> = {
  MaxPool2D: (x, p) => maxPool2d(x, p).y,
  MaxPool2DBackward: maxPool2dBackward,
  MaxPool2DWithIndices: maxPool2d,
  MaxPool2DScatter: maxPool2dScatter,
  MaxPool2DGather: maxPool2dGather,
  AvgPool2D: avgPool2d,
  AvgPool2DBackward: avgPool2dBackward,
  AdaptiveAvgPool2D: adaptiveAvgPool2d,
  AdaptiveAvgPool2DBackward: adaptiveAvgPool2dBackward,
};
