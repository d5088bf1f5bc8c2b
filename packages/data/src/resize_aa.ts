/**
 * Antialiased bilinear resampling as torch's `_upsample_bilinear2d_aa` on float32 CPU tensors
 * (`F.interpolate(..., mode='bilinear', antialias=True)`, which torchvision's `resize` uses by
 * default). Plain bilinear samples two source pixels per output pixel, so when shrinking by more
 * than 2 it skips pixels and aliases; here the triangle filter is stretched by the downscale factor
 * (Pillow's resampling: support = scale, every covered pixel weighted by its distance), and the
 * weights are normalized per output pixel. When enlarging the filter keeps support 1, which is
 * bilinear interpolation with the edge pixel repeated.
 */
import { emptyImage } from './image_ops.js';
import type { Image } from './types.js';

const f32 = Math.fround;

/** The taps of one axis: output pixel i reads `size[i]` source pixels from `start[i]`, weights in rows of `stride`. */
interface AxisTaps {
  start: Int32Array;
  size: Int32Array;
  weights: Float32Array;
  stride: number;
}

// UpSampleKernel.cpp's _compute_index_ranges_weights and _compute_indices_min_size_weights_aa
// with scalar_t = float. Each fround marks where C++ stores a float; the terms that C++ promotes
// to double (i + 0.5, `+ 0.5` before truncation, `* invscale`) are left in double, so the taps
// match torch's to the last bit (the resizeTaps fixture holds them to it).
function aaTaps(inSize: number, outSize: number): AxisTaps {
  const scale = f32(inSize / outSize); // area_pixel_compute_scale, align_corners=False, no scale factor
  const support = scale >= 1 ? scale : 1; // (interp_size / 2) * scale for bilinear's interp_size 2
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = f32(scale * (i + 0.5));
    // static_cast<int64_t> truncates toward zero; the max with 0 makes that a floor where it matters.
    const xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(f32(center + support) + 0.5), inSize) - xmin, 0), stride);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const x = Math.abs(f32((f32(j + xmin - center) + 0.5) * invscale));
      const w = x < 1 ? f32(1 - x) : 0;
      weights[i * stride + j] = w;
      total = f32(total + w);
    }
    if (total !== 0) for (let j = 0; j < xsize; j++) weights[i * stride + j] = f32(weights[i * stride + j]! / total);
    start[i] = xmin;
    size[i] = xsize;
  }
  return { start, size, weights, stride };
}

// One pass along one axis: `lines` lines of `inSize` pixels `step` apart (1 along a row, the row
// length down a column), each line starting at lineStart(l) in the input and the output alike.
// Accumulated in float32, first tap first, as interpolate_aa_single_dim reads. The compiled torch
// fuses some of these multiply-adds (which ones depends on its build and the tap count), so its
// results differ from these by up to an ulp or two.
function resampleAxis(src: Float32Array, dst: Float32Array, taps: AxisTaps, lines: number,
  inLine: (l: number) => number, outLine: (l: number) => number, step: number): void {
  const outSize = taps.start.length;
  for (let l = 0; l < lines; l++) {
    const s0 = inLine(l);
    const d0 = outLine(l);
    for (let i = 0; i < outSize; i++) {
      const base = s0 + taps.start[i]! * step;
      const wrow = i * taps.stride;
      let acc = f32(src[base]! * taps.weights[wrow]!);
      for (let j = 1; j < taps.size[i]!; j++) acc = f32(acc + f32(src[base + j * step]! * taps.weights[wrow + j]!));
      dst[d0 + i * step] = acc;
    }
  }
}

/** Antialiased bilinear resampling to `h` × `w`: width first, then height, an axis of unchanged size skipped (as torch). */
export function resizeBilinearAntialias(img: Image, h: number, w: number): Image {
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
    throw new RangeError(`resize: output size [${h}, ${w}] must be positive integers`);
  }
  const { channels: c, height: ih, width: iw } = img;
  let cur = img;
  if (w !== iw) {
    const next = emptyImage(c, ih, w);
    // Rows: line l is row (l mod ih) of channel floor(l / ih); consecutive in both layouts.
    resampleAxis(cur.data, next.data, aaTaps(iw, w), c * ih, (l) => l * iw, (l) => l * w, 1);
    cur = next;
  }
  if (h !== ih) {
    const cw = cur.width;
    const next = emptyImage(c, h, cw);
    // Columns: line l is column (l mod cw) of channel floor(l / cw), `cw` apart within a column.
    resampleAxis(cur.data, next.data, aaTaps(ih, h), c * cw,
      (l) => Math.floor(l / cw) * ih * cw + (l % cw), (l) => Math.floor(l / cw) * h * cw + (l % cw), cw);
    cur = next;
  }
  return cur;
}
