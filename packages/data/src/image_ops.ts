/** Pixel operations on CHW float images: the building blocks of the transforms. */
import type { Image } from './types.js';

/** A new zero image of the given shape. */
export function emptyImage(channels: number, height: number, width: number): Image {
  return { data: new Float32Array(channels * height * width), channels, height, width };
}

/** How `pad` fills the border, as torchvision's `padding_mode`. */
export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';

// The source index of padded position `i` (shifted so that 0 is the first source pixel) along an
// axis of `n` pixels, or -1 for the fill value. reflect mirrors about the edge pixel (torch's
// reflection_pad2d: ... 2 1 | 0 1 2); symmetric repeats it (torchvision's _pad_symmetric: 1 0 | 0 1).
function sourceIndex(i: number, n: number, mode: PaddingMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'constant': return -1;
    case 'edge': return i < 0 ? 0 : n - 1;
    case 'reflect': return i < 0 ? -i : 2 * (n - 1) - i;
    case 'symmetric': return i < 0 ? -i - 1 : 2 * n - 1 - i;
  }
}

// reflect needs a pixel beyond the edge one on each side, symmetric one pixel per padded pixel:
// torch refuses larger padding (reflection_pad2d) or fails indexing (_pad_symmetric).
function checkPadFits(op: string, mode: PaddingMode, before: number, after: number, n: number, axis: string): void {
  const most = mode === 'reflect' ? n - 1 : mode === 'symmetric' ? n : Infinity;
  if (before > most || after > most) {
    throw new RangeError(`${op}: ${mode} padding (${before}, ${after}) of the ${axis} must be at most ${most} for an image ${n} pixels ` +
      `${axis === 'width' ? 'wide' : 'high'}${mode === 'reflect' ? ' (less than its size)' : ''}`);
  }
}

/**
 * Pads by [left, top, right, bottom] pixels as torchvision's `F.pad(img, padding, fill, padding_mode)`:
 * `fill` (rounded to float32) for 'constant', else copies of the image's own pixels; `op` names the caller in errors.
 */
export function pad(img: Image, sides: readonly [number, number, number, number], mode: PaddingMode = 'constant', fill = 0, op = 'pad'): Image {
  const [left, top, right, bottom] = sides;
  if (left === 0 && top === 0 && right === 0 && bottom === 0) return img;
  const { channels: c, height: h, width: w } = img;
  checkPadFits(op, mode, left, right, w, 'width');
  checkPadFits(op, mode, top, bottom, h, 'height');
  const out = emptyImage(c, h + top + bottom, w + left + right);
  const xs = Int32Array.from({ length: out.width }, (_, x) => sourceIndex(x - left, w, mode));
  const ys = Int32Array.from({ length: out.height }, (_, y) => sourceIndex(y - top, h, mode));
  const value = Math.fround(fill);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < out.height; y++) {
      const o = (ch * out.height + y) * out.width;
      const sy = ys[y]!;
      if (sy < 0) {
        out.data.fill(value, o, o + out.width);
        continue;
      }
      const row = (ch * h + sy) * w;
      for (let x = 0; x < out.width; x++) {
        const sx = xs[x]!;
        out.data[o + x] = sx < 0 ? value : img.data[row + sx]!;
      }
    }
  }
  return out;
}

/** The `h` × `w` window whose top-left corner is (top, left); the window must lie inside the image. */
export function crop(img: Image, top: number, left: number, h: number, w: number): Image {
  if (top < 0 || left < 0 || top + h > img.height || left + w > img.width) {
    throw new RangeError(`crop: window (${top}, ${left}, ${h}, ${w}) leaves the ${img.height}x${img.width} image`);
  }
  if (top === 0 && left === 0 && h === img.height && w === img.width) return img;
  const out = emptyImage(img.channels, h, w);
  for (let ch = 0; ch < img.channels; ch++) {
    for (let y = 0; y < h; y++) {
      const src = (ch * img.height + top + y) * img.width + left;
      out.data.set(img.data.subarray(src, src + w), (ch * h + y) * w);
    }
  }
  return out;
}

/** Mirrors the image left to right. */
export function flipHorizontal(img: Image): Image {
  const { channels: c, height: h, width: w } = img;
  const out = emptyImage(c, h, w);
  for (let row = 0; row < c * h; row++) {
    const base = row * w;
    for (let x = 0; x < w; x++) out.data[base + x] = img.data[base + w - 1 - x]!;
  }
  return out;
}

// PyTorch's area_pixel_compute_source_index for linear modes with align_corners=False and no
// scale factor: src = max(scale * (dst + 0.5) - 0.5, 0) with scale = in / out; the upper
// neighbour is clamped to the last pixel. Weights are kept in float32 as PyTorch's float kernel.
function linearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; l1: Float32Array } {
  const scale = Math.fround(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const src = Math.max(Math.fround(Math.fround(scale * Math.fround(d + 0.5)) - 0.5), 0);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[d] = lo;
    i1[d] = lo < inSize - 1 ? lo + 1 : lo;
    l1[d] = Math.fround(src - lo);
  }
  return { i0, i1, l1 };
}

/** Bilinear resampling to `h` × `w` as `F.interpolate(mode='bilinear', align_corners=False, antialias=False)`. */
export function resizeBilinear(img: Image, h: number, w: number): Image {
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
    throw new RangeError(`resize: output size [${h}, ${w}] must be positive integers`);
  }
  if (h === img.height && w === img.width) return img;
  const ys = linearTaps(img.height, h);
  const xs = linearTaps(img.width, w);
  const out = emptyImage(img.channels, h, w);
  const src = img.data;
  for (let ch = 0; ch < img.channels; ch++) {
    const plane = ch * img.height * img.width;
    for (let y = 0; y < h; y++) {
      const r0 = plane + ys.i0[y]! * img.width;
      const r1 = plane + ys.i1[y]! * img.width;
      const hl1 = ys.l1[y]!;
      const hl0 = 1 - hl1;
      const o = (ch * h + y) * w;
      for (let x = 0; x < w; x++) {
        const x0 = xs.i0[x]!;
        const x1 = xs.i1[x]!;
        const wl1 = xs.l1[x]!;
        const wl0 = 1 - wl1;
        out.data[o + x] = hl0 * (wl0 * src[r0 + x0]! + wl1 * src[r0 + x1]!) + hl1 * (wl0 * src[r1 + x0]! + wl1 * src[r1 + x1]!);
      }
    }
  }
  return out;
}

/** HWC bytes (as decoded from PNG/JPEG or CIFAR-10 rows) to a CHW float image scaled by 1/255. */
export function fromHwcBytes(bytes: Uint8Array, height: number, width: number, channels: number): Image {
  if (bytes.length !== height * width * channels) {
    throw new RangeError(`toTensor: ${bytes.length} bytes do not fill ${height}x${width}x${channels}`);
  }
  const out = emptyImage(channels, height, width);
  const plane = height * width;
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < channels; ch++) out.data[ch * plane + p] = bytes[p * channels + ch]! / 255;
  }
  return out;
}
