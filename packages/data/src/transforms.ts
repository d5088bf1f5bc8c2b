/**
 * Seeded image transforms with torchvision's semantics. Each transform is a function of
 * (image, rng) and carries its `spec`, plain data from which `fromSpec` rebuilds it, so a worker
 * thread can run the same augmentation as the main thread.
 */
import { crop, flipHorizontal, fromHwcBytes, pad, resizeBilinear } from './image_ops.js';
import { randInt, uniform } from './rng.js';
import type { Image, Rng } from './types.js';

/** A size: one number (square for crops, shorter edge for `resize`) or [height, width]. */
export type Size = number | [number, number];

/** Plain-data description of a transform: what `fromSpec` reads and every transform carries. */
export type TransformSpec =
  | { name: 'compose'; transforms: TransformSpec[] }
  | { name: 'normalize'; mean: number[]; std: number[] }
  | { name: 'randomCrop'; size: Size; padding?: number }
  | { name: 'randomHorizontalFlip'; p?: number }
  | { name: 'resize'; size: Size }
  | { name: 'randomResizedCrop'; size: Size; scale?: [number, number]; ratio?: [number, number] };

/** An image-to-image step; the RNG is the sample's own (see `sampleRng`). */
export type Transform = ((img: Image, rng: Rng) => Image) & { readonly spec?: TransformSpec };

function withSpec(fn: (img: Image, rng: Rng) => Image, spec: TransformSpec): Transform {
  return Object.assign(fn, { spec });
}

function pair(name: string, size: Size): [number, number] {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
    throw new RangeError(`${name}: size ${JSON.stringify(size)} must be a positive integer or [h, w]`);
  }
  return [h, w];
}

/** Applies transforms left to right; its spec lists theirs (each must carry one). */
function compose(...ts: Transform[]): Transform {
  const specs = ts.map((t) => t.spec);
  const fn = (img: Image, rng: Rng): Image => ts.reduce((acc, t) => t(acc, rng), img);
  if (specs.some((s) => s === undefined)) return fn;
  return withSpec(fn, { name: 'compose', transforms: specs as TransformSpec[] });
}

/** (x - mean[c]) / std[c] per channel, in float32 as `torchvision.transforms.Normalize`. */
function normalize(mean: number[], std: number[]): Transform {
  if (mean.length !== std.length || mean.length === 0) {
    throw new RangeError(`normalize: mean has ${mean.length} values, std ${std.length}; give one per channel`);
  }
  if (std.some((s) => s === 0)) throw new RangeError(`normalize: std ${JSON.stringify(std)} has a zero`);
  const m = mean.map(Math.fround);
  const s = std.map(Math.fround);
  return withSpec((img) => {
    if (img.channels !== m.length) {
      throw new RangeError(`normalize: image has ${img.channels} channels, mean/std have ${m.length}`);
    }
    const out = new Float32Array(img.data.length);
    const plane = img.height * img.width;
    for (let c = 0; c < img.channels; c++) {
      for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = Math.fround(img.data[i]! - m[c]!) / s[c]!;
    }
    return { ...img, data: out };
  }, { name: 'normalize', mean, std });
}

/** Zero-pads by `padding`, then takes a uniformly placed `size` window (`transforms.RandomCrop`). */
function randomCrop(size: Size, opts: { padding?: number } = {}): Transform {
  const [th, tw] = pair('randomCrop', size);
  const padding = opts.padding ?? 0;
  if (!(Number.isInteger(padding) && padding >= 0)) throw new RangeError(`randomCrop: padding ${padding} must be a non-negative integer`);
  return withSpec((img, rng) => {
    const padded = pad(img, padding);
    if (padded.height < th || padded.width < tw) {
      throw new RangeError(`randomCrop: crop ${th}x${tw} is larger than the padded image ${padded.height}x${padded.width}`);
    }
    const top = randInt(rng, 0, padded.height - th + 1);
    const left = randInt(rng, 0, padded.width - tw + 1);
    return crop(padded, top, left, th, tw);
  }, { name: 'randomCrop', size, padding });
}

/** Mirrors left to right with probability `p`; always draws once, so streams stay aligned. */
function randomHorizontalFlip(p = 0.5): Transform {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`randomHorizontalFlip: p ${p} must lie in [0, 1]`);
  return withSpec((img, rng) => (rng() < p ? flipHorizontal(img) : img), { name: 'randomHorizontalFlip', p });
}

// torchvision's _compute_resized_output_size: an int matches the shorter edge, keeping the aspect ratio.
function resizedShape(img: Image, size: Size): [number, number] {
  if (typeof size !== 'number') return pair('resize', size);
  pair('resize', size);
  const short = Math.min(img.height, img.width);
  const long = Math.max(img.height, img.width);
  const newLong = Math.trunc((size * long) / short);
  return img.height <= img.width ? [size, newLong] : [newLong, size];
}

/** Bilinear resize (align_corners=False, no antialias) as torchvision's `F.resize(..., antialias=False)`. */
function resize(size: Size): Transform {
  pair('resize', size);
  return withSpec((img) => {
    const [h, w] = resizedShape(img, size);
    return resizeBilinear(img, h, w);
  }, { name: 'resize', size });
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

/** A random area/aspect window resized to `size` (`transforms.RandomResizedCrop`, bilinear, no antialias). */
function randomResizedCrop(size: Size, opts: { scale?: [number, number]; ratio?: [number, number] } = {}): Transform {
  const [th, tw] = pair('randomResizedCrop', size);
  const scale = opts.scale ?? [0.08, 1];
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  if (!(scale[0] > 0 && scale[0] <= scale[1] && ratio[0] > 0 && ratio[0] <= ratio[1])) {
    throw new RangeError(`randomResizedCrop: scale ${JSON.stringify(scale)} and ratio ${JSON.stringify(ratio)} must be positive, (min, max)`);
  }
  return withSpec((img, rng) => {
    const [top, left, h, w] = resizedCropWindow(img, scale, ratio, rng);
    return resizeBilinear(crop(img, top, left, h, w), th, tw);
  }, { name: 'randomResizedCrop', size, scale, ratio });
}

/** Rebuilds a transform (a list is composed) from its plain-data spec. */
function fromSpec(spec: TransformSpec | TransformSpec[]): Transform {
  if (Array.isArray(spec)) return compose(...spec.map(fromSpec));
  switch (spec.name) {
    case 'compose': return compose(...spec.transforms.map(fromSpec));
    case 'normalize': return normalize(spec.mean, spec.std);
    case 'randomCrop': return randomCrop(spec.size, spec.padding === undefined ? {} : { padding: spec.padding });
    case 'randomHorizontalFlip': return randomHorizontalFlip(spec.p);
    case 'resize': return resize(spec.size);
    case 'randomResizedCrop': return randomResizedCrop(spec.size, { ...(spec.scale && { scale: spec.scale }), ...(spec.ratio && { ratio: spec.ratio }) });
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
