/**
 * Seeded image transforms with torchvision's semantics. Each transform is a function of
 * (image, rng) and carries its `spec`, plain data from which `fromSpec` rebuilds it, so a worker
 * thread can run the same augmentation as the main thread.
 */
import { crop, flipHorizontal, fromHwcBytes, pad, resizeBilinear, type PaddingMode } from './image_ops.js';
import { resizeBilinearAntialias } from './resize_aa.js';
import { randInt, uniform } from './rng.js';
import { checkOptionNames, type Image, type Rng } from './types.js';

export type { PaddingMode } from './image_ops.js';

/**
 * A size: one number or a one-element list (square for crops, the shorter edge for `resize`) or
 * [height, width], as torchvision's `size` arguments.
 */
export type Size = number | [number] | [number, number];

/** Border padding as torchvision's: all sides, [left/right, top/bottom], or [left, top, right, bottom]. */
export type Padding = number | [number] | [number, number] | [number, number, number, number];

/** `transforms.RandomCrop`'s options; `fill` applies to 'constant' padding only. */
export interface RandomCropOptions { padding?: Padding; fill?: number; paddingMode?: PaddingMode; padIfNeeded?: boolean }

/** `antialias` (default true, as torchvision) low-pass filters when shrinking; false is plain bilinear. */
export interface ResizeOptions { antialias?: boolean }

/** `transforms.RandomResizedCrop`'s options: area fraction and aspect-ratio ranges, and the resize's antialias. */
export interface RandomResizedCropOptions extends ResizeOptions { scale?: [number, number]; ratio?: [number, number] }

/** Plain-data description of a transform: what `fromSpec` reads and every transform carries. */
export type TransformSpec =
  | { name: 'compose'; transforms: TransformSpec[] }
  | { name: 'normalize'; mean: number[]; std: number[] }
  | ({ name: 'randomCrop'; size: Size } & RandomCropOptions)
  | { name: 'randomHorizontalFlip'; p?: number }
  | ({ name: 'resize'; size: Size } & ResizeOptions)
  | ({ name: 'randomResizedCrop'; size: Size } & RandomResizedCropOptions);

/** An image-to-image step; the RNG is the sample's own (see `sampleRng`). */
export type Transform = ((img: Image, rng: Rng) => Image) & { readonly spec?: TransformSpec };

function withSpec(fn: (img: Image, rng: Rng) => Image, spec: TransformSpec): Transform {
  return Object.assign(fn, { spec });
}

function pair(name: string, size: Size): [number, number] {
  const hw: readonly number[] = typeof size === 'number' ? [size, size] : !Array.isArray(size) ? [] : size.length === 1 ? [size[0], size[0]] : size;
  if (!(hw.length === 2 && hw.every((v) => Number.isInteger(v) && v > 0))) {
    throw new RangeError(`${name}: size ${JSON.stringify(size)} must be a positive integer, [n] or [h, w]`);
  }
  return [hw[0]!, hw[1]!];
}

function checkBoolean(name: string, what: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${name}: ${what} ${JSON.stringify(v)} must be true or false`);
}

/** Applies transforms left to right; its spec lists theirs (each must carry one). */
function compose(...ts: Transform[]): Transform {
  const specs = ts.map((t) => t.spec);
  const fn = (img: Image, rng: Rng): Image => ts.reduce((acc, t) => t(acc, rng), img);
  if (specs.some((s) => s === undefined)) return fn;
  return withSpec(fn, { name: 'compose', transforms: specs as TransformSpec[] });
}

/**
 * (x - mean[c]) / std[c] per channel, in float32 as `torchvision.transforms.Normalize`; one mean
 * or one std applies to every channel (torch broadcasting).
 */
function normalize(mean: number[], std: number[]): Transform {
  if (mean.length === 0 || std.length === 0 || (mean.length !== std.length && mean.length !== 1 && std.length !== 1)) {
    throw new RangeError(`normalize: mean has ${mean.length} values, std ${std.length}; give one per channel, or one for all`);
  }
  const m = mean.map(Math.fround);
  const s = std.map(Math.fround);
  // torchvision checks std after the cast to the image's dtype: 1e-46 is 0 in float32 and would divide by zero.
  const zero = s.findIndex((v) => v === 0);
  if (zero >= 0) {
    throw new RangeError(`normalize: std[${zero}] = ${std[zero]} evaluated to zero after conversion to float32, leading to division by zero`);
  }
  return withSpec((img) => {
    if ((m.length !== 1 && m.length !== img.channels) || (s.length !== 1 && s.length !== img.channels)) {
      throw new RangeError(`normalize: image has ${img.channels} channels, mean ${m.length} values and std ${s.length}; ` +
        `each must have 1 or ${img.channels}`);
    }
    const out = new Float32Array(img.data.length);
    const plane = img.height * img.width;
    for (let c = 0; c < img.channels; c++) {
      const mc = m[m.length === 1 ? 0 : c]!;
      const sc = s[s.length === 1 ? 0 : c]!;
      for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = Math.fround(img.data[i]! - mc) / sc;
    }
    return { ...img, data: out };
  }, { name: 'normalize', mean: [...mean], std: [...std] });
}

const PADDING_MODES: readonly PaddingMode[] = ['constant', 'edge', 'reflect', 'symmetric'];

// torchvision's _parse_pad_padding: [left, top, right, bottom].
function padSides(padding: Padding): [number, number, number, number] {
  const p: readonly number[] = typeof padding === 'number' ? [padding] : Array.isArray(padding) ? padding : [];
  const [a = NaN, b = NaN, c = NaN, d = NaN] = p;
  const sides = p.length === 1 ? [a, a, a, a] : p.length === 2 ? [a, b, a, b] : p.length === 4 ? [a, b, c, d] : [];
  if (!(sides.length === 4 && sides.every((v) => Number.isInteger(v) && v >= 0))) {
    throw new RangeError(`randomCrop: padding ${JSON.stringify(padding)} must be a non-negative integer, [all], [left/right, top/bottom] ` +
      'or [left, top, right, bottom]');
  }
  return sides as [number, number, number, number];
}

/**
 * Pads by `padding`, then takes a uniformly placed `size` window (`transforms.RandomCrop`). With
 * `padIfNeeded`, a side still smaller than the window is then padded on both ends by the shortfall,
 * as torchvision does (so the window lands at a random offset within it).
 */
function randomCrop(size: Size, opts: RandomCropOptions = {}): Transform {
  checkOptionNames('randomCrop', opts, ['padding', 'fill', 'paddingMode', 'padIfNeeded']);
  const [th, tw] = pair('randomCrop', size);
  const { padding = 0, fill, paddingMode = 'constant', padIfNeeded = false } = opts;
  const sides = padSides(padding);
  if (!PADDING_MODES.includes(paddingMode)) {
    throw new RangeError(`randomCrop: paddingMode ${JSON.stringify(paddingMode)} must be one of ${PADDING_MODES.join(', ')}`);
  }
  if (fill !== undefined && typeof fill !== 'number') throw new TypeError(`randomCrop: fill ${JSON.stringify(fill)} must be a number`);
  // torchvision ignores fill outside 'constant'; a fill that cannot show is more likely a mistake than a choice.
  if (fill !== undefined && paddingMode !== 'constant') throw new RangeError(`randomCrop: fill applies to paddingMode 'constant' only, not '${paddingMode}'`);
  checkBoolean('randomCrop', 'padIfNeeded', padIfNeeded);
  const value = fill ?? 0;
  return withSpec((img, rng) => {
    let padded = pad(img, sides, paddingMode, value, 'randomCrop');
    if (padIfNeeded && padded.width < tw) padded = pad(padded, [tw - padded.width, 0, tw - padded.width, 0], paddingMode, value, 'randomCrop');
    if (padIfNeeded && padded.height < th) padded = pad(padded, [0, th - padded.height, 0, th - padded.height], paddingMode, value, 'randomCrop');
    if (padded.height < th || padded.width < tw) {
      throw new RangeError(`randomCrop: crop ${th}x${tw} is larger than the padded image ${padded.height}x${padded.width}` +
        (padIfNeeded ? '' : ' (padIfNeeded: true pads it to fit)'));
    }
    const top = randInt(rng, 0, padded.height - th + 1);
    const left = randInt(rng, 0, padded.width - tw + 1);
    return crop(padded, top, left, th, tw);
  }, { name: 'randomCrop', size, padding: Array.isArray(padding) ? [...padding] as Padding : padding, ...(fill !== undefined && { fill }), paddingMode, padIfNeeded });
}

/** Mirrors left to right with probability `p`; always draws once, so streams stay aligned. */
function randomHorizontalFlip(p = 0.5): Transform {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`randomHorizontalFlip: p ${p} must lie in [0, 1]`);
  return withSpec((img, rng) => (rng() < p ? flipHorizontal(img) : img), { name: 'randomHorizontalFlip', p });
}

// torchvision's _compute_resized_output_size: a number or [n] matches the shorter edge, keeping the aspect ratio.
function resizedShape(img: Image, size: Size): [number, number] {
  if (Array.isArray(size) && size.length === 2) return pair('resize', size);
  const [n] = pair('resize', size);
  const short = Math.min(img.height, img.width);
  const long = Math.max(img.height, img.width);
  const newLong = Math.trunc((n * long) / short);
  return img.height <= img.width ? [n, newLong] : [newLong, n];
}

function bilinear(img: Image, h: number, w: number, antialias: boolean): Image {
  if (h === img.height && w === img.width) return img; // torchvision's resize returns such an image untouched
  return antialias ? resizeBilinearAntialias(img, h, w) : resizeBilinear(img, h, w);
}

/** Bilinear resize (align_corners=False) as torchvision's `Resize`, antialiased unless `antialias: false`. */
function resize(size: Size, opts: ResizeOptions = {}): Transform {
  checkOptionNames('resize', opts, ['antialias']);
  pair('resize', size);
  const { antialias = true } = opts;
  checkBoolean('resize', 'antialias', antialias);
  return withSpec((img) => {
    const [h, w] = resizedShape(img, size);
    return bilinear(img, h, w, antialias);
  }, { name: 'resize', size, antialias });
}

// Python's round(): halves go to the even neighbour.
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's RandomResizedCrop.get_params: ten tries at a random area and aspect, then a centre crop. */
function resizedCropWindow(img: Image, scale: [number, number], ratio: [number, number], rng: Rng): [number, number, number, number] {
  const { height, width } = img;
  const area = height * width;
  const logRatio: [number, number] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return [randInt(rng, 0, height - h + 1), randInt(rng, 0, width - w + 1), h, w];
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return [Math.trunc((height - h) / 2), Math.trunc((width - w) / 2), h, w];
}

/** A random area/aspect window resized to `size` (`transforms.RandomResizedCrop`, bilinear, antialiased by default). */
function randomResizedCrop(size: Size, opts: RandomResizedCropOptions = {}): Transform {
  checkOptionNames('randomResizedCrop', opts, ['scale', 'ratio', 'antialias']);
  const [th, tw] = pair('randomResizedCrop', size);
  const { scale = [0.08, 1], ratio = [3 / 4, 4 / 3], antialias = true } = opts;
  const range = (r: unknown): r is [number, number] => Array.isArray(r) && r.length === 2 && r.every((v) => typeof v === 'number');
  // A zero scale is torchvision's (0.0, 1.0): too small a try draws again. log(ratio) needs ratio > 0.
  if (!(range(scale) && range(ratio) && scale[0] >= 0 && scale[0] <= scale[1] && ratio[0] > 0 && ratio[0] <= ratio[1])) {
    throw new RangeError(`randomResizedCrop: scale ${JSON.stringify(scale)} must be (min, max) with 0 <= min <= max, and ratio ` +
      `${JSON.stringify(ratio)} (min, max) with 0 < min <= max`);
  }
  checkBoolean('randomResizedCrop', 'antialias', antialias);
  return withSpec((img, rng) => {
    const [top, left, h, w] = resizedCropWindow(img, scale, ratio, rng);
    return bilinear(crop(img, top, left, h, w), th, tw, antialias);
  }, { name: 'randomResizedCrop', size, scale: [...scale], ratio: [...ratio], antialias });
}

// A spec's fields besides its name, refused when the transform has no such argument.
function specArgs<S extends TransformSpec>(spec: S, known: readonly string[]): Omit<S, 'name'> {
  const { name, ...rest } = spec;
  checkOptionNames(`transforms.fromSpec(${name})`, rest, known);
  return rest;
}

/** Rebuilds a transform (a list is composed) from its plain-data spec. */
function fromSpec(spec: TransformSpec | TransformSpec[]): Transform {
  if (Array.isArray(spec)) return compose(...spec.map(fromSpec));
  switch (spec.name) {
    case 'compose': return compose(...specArgs(spec, ['transforms']).transforms.map(fromSpec));
    case 'normalize': { const { mean, std } = specArgs(spec, ['mean', 'std']); return normalize(mean, std); }
    case 'randomCrop': { const { name: _, size, ...opts } = spec; return randomCrop(size, opts); }
    case 'randomHorizontalFlip': return randomHorizontalFlip(specArgs(spec, ['p']).p);
    case 'resize': { const { name: _, size, ...opts } = spec; return resize(size, opts); }
    case 'randomResizedCrop': { const { name: _, size, ...opts } = spec; return randomResizedCrop(size, opts); }
    default: throw new Error(`transforms.fromSpec: unknown transform ${JSON.stringify((spec as { name?: unknown }).name)}`);
  }
}

/** HWC uint8 pixels to a CHW float image in [0, 1] (`transforms.ToTensor`). */
function toTensor(hwcUint8: Uint8Array, h: number, w: number, c: number): Image {
  return fromHwcBytes(hwcUint8, h, w, c);
}

/** The transform constructors; every one is seeded through the sample RNG it is called with. */
export const transforms = { compose, normalize, randomCrop, randomHorizontalFlip, resize, randomResizedCrop, fromSpec, toTensor };

/** A dataset's `transform` option: specs (worker-safe) or a transform function. */
export type TransformOption = TransformSpec[] | Transform;

/** Resolves a dataset's transform option to a function and, when it has one, the spec a worker needs. */
export function resolveTransform(opt: TransformOption | undefined): { fn: Transform | undefined; spec: TransformSpec[] | undefined } {
  if (opt === undefined) return { fn: undefined, spec: [] };
  if (Array.isArray(opt)) return { fn: fromSpec(opt), spec: opt };
  return { fn: opt, spec: opt.spec === undefined ? undefined : [opt.spec] };
}
