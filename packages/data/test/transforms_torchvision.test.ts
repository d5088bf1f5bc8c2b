// Transforms against torchvision 0.29 (scripts/fixtures/make_data_fixtures.py): antialiased resize,
// RandomCrop's padding modes and pad_if_needed, Normalize's broadcasting, and the cases it refuses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sampleRng, transforms, type Image, type Rng, type Size, type TransformSpec } from '@nodegrad/data';

interface Enc { shape: number[]; data: number[] }
interface TvCropOptions { size: Size; padding?: number | number[]; fill?: number; padding_mode?: string; pad_if_needed?: boolean }
const fx = JSON.parse(readFileSync(new URL('./fixtures/data_fixtures.json', import.meta.url), 'utf8')) as {
  resizeOptions: Array<{ input: Enc; size: Size; antialias: boolean; output: Enc }>;
  resizeTaps: Array<{ n: number; size: [number, number]; output: Enc }>;
  resizedCrop: Array<{ input: Enc; top: number; left: number; height: number; width: number; size: [number, number]; output: Enc }>;
  randomCrop: Array<{ input: Enc; options: TvCropOptions; top: number; left: number; paddedShape: number[]; output: Enc }>;
  normalizeBroadcast: Array<{ input: Enc; mean: number[]; std: number[]; output: Enc }>;
  errors: Record<string, string>;
};
const img = (e: Enc): Image => ({ data: Float32Array.from(e.data), channels: e.shape[0]!, height: e.shape[1]!, width: e.shape[2]! });
const ramp = (c: number, h: number, w: number): Image => ({ data: Float32Array.from({ length: c * h * w }, (_, i) => ((i * 37) % 101) / 100), channels: c, height: h, width: w });

/** The largest |out - want|, after checking the shape. */
function worst(out: Image, want: Enc): number {
  expect([out.channels, out.height, out.width]).toEqual(want.shape);
  return out.data.reduce((m, v, i) => Math.max(m, Math.abs(v - want.data[i]!)), 0);
}
const exact = (out: Image, want: Enc): void => {
  expect([out.channels, out.height, out.width]).toEqual(want.shape);
  expect(Array.from(out.data)).toEqual(Array.from(Float32Array.from(want.data)));
};

// An RNG that returns these draws in order, to steer a random transform to a chosen window.
function draws(...values: number[]): Rng {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`test rng: asked for draw ${i + 1}, only ${values.length} planned`);
    return values[i++]!;
  };
}
// randInt(rng, 0, n) is floor(rng() * n): the middle of k's interval picks k.
const pick = (k: number, n: number): number => (k + 0.5) / n;

// float32 rounding of a value in [0, 1] is at most 6e-8; torch's build fuses some multiply-adds, so allow a few ulps.
const TOL = 2e-7;

describe('transforms against torchvision', () => {
  it('resize matches Resize with antialias on (the default) and off', () => {
    let maxDiff = 0;
    for (const c of fx.resizeOptions) {
      const out = transforms.resize(c.size, { antialias: c.antialias })(img(c.input), sampleRng(0, 0, 0));
      maxDiff = Math.max(maxDiff, worst(out, c.output));
      if (c.antialias) expect(transforms.resize(c.size)(img(c.input), sampleRng(0, 0, 0)).data).toEqual(out.data);
    }
    expect(maxDiff).toBeLessThan(TOL);
    // Shrinking 8 -> 4 by half differs visibly from plain bilinear, which reads 2 of every 4 pixels.
    const down = fx.resizeOptions[0]!;
    expect(worst(transforms.resize(down.size, { antialias: false })(img(down.input), sampleRng(0, 0, 0)), down.output)).toBeGreaterThan(0.01);
  });

  it('antialias filter taps equal torch\'s bit for bit (an identity image lays them out)', () => {
    for (const c of fx.resizeTaps) {
      const eye: Image = { data: Float32Array.from({ length: c.n * c.n }, (_, i) => (i % (c.n + 1) === 0 ? 1 : 0)), channels: 1, height: c.n, width: c.n };
      exact(transforms.resize(c.size)(eye, sampleRng(0, 0, 0)), c.output);
    }
  });

  it('randomResizedCrop antialiases its window as F.resized_crop', () => {
    let maxDiff = 0;
    for (const c of fx.resizedCrop) {
      const im = img(c.input);
      // scale and ratio pinned to the window's area and aspect, so the first try fits; the last two draws place it.
      const area = (c.height * c.width) / (im.height * im.width);
      const opts = { scale: [area, area] as [number, number], ratio: [c.width / c.height, c.width / c.height] as [number, number] };
      const rng = () => draws(0.5, 0.5, pick(c.top, im.height - c.height + 1), pick(c.left, im.width - c.width + 1));
      maxDiff = Math.max(maxDiff, worst(transforms.randomResizedCrop(c.size, opts)(im, rng()), c.output));
      // antialias: false reaches the resize: shrinking 9x8 to 4x3 then differs visibly.
      if (c.height > 2 * c.size[0]) expect(worst(transforms.randomResizedCrop(c.size, { ...opts, antialias: false })(im, rng()), c.output)).toBeGreaterThan(0.01);
    }
    expect(maxDiff).toBeLessThan(TOL);
  });

  it('randomCrop pads as RandomCrop in every mode and padding form, with pad_if_needed', () => {
    for (const c of fx.randomCrop) {
      const { size, padding, fill, padding_mode: paddingMode, pad_if_needed: padIfNeeded } = c.options;
      const t = transforms.randomCrop(size, JSON.parse(JSON.stringify({ padding, fill, paddingMode, padIfNeeded })));
      const [, ph, pw] = c.paddedShape as [number, number, number];
      const [th, tw] = c.output.shape.slice(1) as [number, number];
      const rng = () => draws(pick(c.top, ph - th + 1), pick(c.left, pw - tw + 1));
      exact(t(img(c.input), rng()), c.output);
      // The spec a worker rebuilds it from carries every option.
      exact(transforms.fromSpec(JSON.parse(JSON.stringify(t.spec)) as TransformSpec)(img(c.input), rng()), c.output);
    }
  });

  it('normalize broadcasts one mean or one std over the channels as Normalize', () => {
    for (const c of fx.normalizeBroadcast) exact(transforms.normalize(c.mean, c.std)(img(c.input), sampleRng(0, 0, 0)), c.output);
  });

  it('refuses what torchvision refuses', () => {
    const small = ramp(1, 3, 3);
    const run = (t: () => unknown) => () => t();
    const cases: Record<string, [() => unknown, RegExp]> = {
      'normalize std zero in float32': [run(() => transforms.normalize([0], [1e-46])), /normalize: std\[0\] = 1e-46 evaluated to zero after conversion to float32/],
      'normalize two means on three channels': [run(() => transforms.normalize([0.1, 0.2], [1])(ramp(3, 2, 2), sampleRng(0, 0, 0))), /normalize: image has 3 channels, mean 2 values and std 1; each must have 1 or 3/],
      'reflect padding as large as the image': [run(() => transforms.randomCrop(3, { padding: 3, paddingMode: 'reflect' })(small, sampleRng(0, 0, 0))), /randomCrop: reflect padding \(3, 3\) of the width must be at most 2 for an image 3 pixels wide/],
      'symmetric padding larger than the image': [run(() => transforms.randomCrop(3, { padding: 4, paddingMode: 'symmetric' })(small, sampleRng(0, 0, 0))), /randomCrop: symmetric padding \(4, 4\) of the width must be at most 3/],
      'pad_if_needed reflect beyond the image': [run(() => transforms.randomCrop(7, { padIfNeeded: true, paddingMode: 'reflect' })(small, sampleRng(0, 0, 0))), /randomCrop: reflect padding \(4, 4\) of the width must be at most 2/],
      'crop larger than the padded image': [run(() => transforms.randomCrop(6, { padding: 1 })(small, sampleRng(0, 0, 0))), /randomCrop: crop 6x6 is larger than the padded image 5x5 \(padIfNeeded: true pads it to fit\)/],
      'unknown padding mode': [run(() => transforms.randomCrop(3, { padding: 1, paddingMode: 'wrap' as never })), /randomCrop: paddingMode "wrap" must be one of constant, edge, reflect, symmetric/],
      'padding of three values': [run(() => transforms.randomCrop(3, { padding: [1, 2, 3] as never })), /randomCrop: padding \[1,2,3\] must be a non-negative integer/],
    };
    expect(Object.keys(cases).sort()).toEqual(Object.keys(fx.errors).sort());
    for (const [name, [fn, message]] of Object.entries(cases)) {
      expect(fx.errors[name], name).toMatch(/Error: /);
      expect(fn, name).toThrow(message);
    }
  });
});
