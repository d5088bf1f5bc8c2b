import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sampleRng, transforms, type Image, type TransformSpec } from '@nodegrad/data';

interface Enc { shape: number[]; data: number[] }
const fx = JSON.parse(readFileSync(new URL('./fixtures/data_fixtures.json', import.meta.url), 'utf8')) as {
  resize: Array<{ input: Enc; size: number | [number, number]; output: Enc }>;
  normalize: { input: Enc; mean: number[]; std: number[]; output: Enc };
};
const img = (e: Enc): Image => ({ data: Float32Array.from(e.data), channels: e.shape[0]!, height: e.shape[1]!, width: e.shape[2]! });
const ramp = (c: number, h: number, w: number): Image => ({ data: Float32Array.from({ length: c * h * w }, (_, i) => (i + 1) / 100), channels: c, height: h, width: w });
const at = (im: Image, c: number, y: number, x: number): number => im.data[(c * im.height + y) * im.width + x]!;

describe('transforms', () => {
  it('normalize equals torchvision float32 exactly', () => {
    const out = transforms.normalize(fx.normalize.mean, fx.normalize.std)(img(fx.normalize.input), sampleRng(0, 0, 0));
    expect(Array.from(out.data)).toEqual(Array.from(Float32Array.from(fx.normalize.output.data)));
  });

  it('resize with antialias: false matches torchvision bilinear (antialias=False) on every fixture case', () => {
    expect(fx.resize.length).toBeGreaterThanOrEqual(7);
    for (const c of fx.resize) {
      const out = transforms.resize(c.size, { antialias: false })(img(c.input), sampleRng(0, 0, 0));
      expect([out.channels, out.height, out.width]).toEqual(c.output.shape);
      out.data.forEach((v, i) => expect(Math.abs(v - c.output.data[i]!)).toBeLessThan(1e-6));
    }
  });

  it('flip mirrors exactly with p = 1 and never with p = 0', () => {
    const im = ramp(2, 3, 4);
    const out = transforms.randomHorizontalFlip(1)(im, sampleRng(0, 0, 0));
    for (let c = 0; c < 2; c++) for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) expect(at(out, c, y, x)).toBe(at(im, c, y, 3 - x));
    expect(transforms.randomHorizontalFlip(0)(im, sampleRng(0, 0, 0)).data).toEqual(im.data);
    // p = 0.5 flips about half of the samples, decided by each sample's own RNG.
    let flipped = 0;
    for (let i = 0; i < 400; i++) if (transforms.randomHorizontalFlip()(im, sampleRng(1, 0, i)).data[0] !== im.data[0]) flipped++;
    expect(flipped).toBeGreaterThan(150);
    expect(flipped).toBeLessThan(250);
  });

  it('randomCrop with padding keeps the size, shows zero borders and is reproducible', () => {
    const im = ramp(1, 6, 6);
    const t = transforms.randomCrop(6, { padding: 2 });
    const offsets = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const out = t(im, sampleRng(7, 0, i));
      expect([out.channels, out.height, out.width]).toEqual([1, 6, 6]);
      expect(t(im, sampleRng(7, 0, i)).data).toEqual(out.data);
      // Locate the shift from the first non-zero value: every value equals the source shifted by (dy, dx), zero outside.
      const k = out.data.findIndex((v) => v !== 0);
      const src = Math.round(out.data[k]! * 100) - 1;
      const dy = Math.floor(k / 6) - Math.floor(src / 6);
      const dx = (k % 6) - (src % 6);
      expect(Math.abs(dy)).toBeLessThanOrEqual(2);
      expect(Math.abs(dx)).toBeLessThanOrEqual(2);
      for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) {
        const sy = y - dy;
        const sx = x - dx;
        expect(at(out, 0, y, x)).toBe(sy >= 0 && sy < 6 && sx >= 0 && sx < 6 ? at(im, 0, sy, sx) : 0);
      }
      offsets.add(`${dy},${dx}`);
    }
    expect(offsets.size).toBe(25); // every one of the 5x5 placements occurs
    expect(() => transforms.randomCrop(11, { padding: 2 })(im, sampleRng(0, 0, 0))).toThrow(/crop 11x11 is larger than the padded image 10x10/);
  });

  it('randomResizedCrop gives the requested size, reproducibly, and varies with the RNG', () => {
    const im = ramp(3, 20, 30);
    const t = transforms.randomResizedCrop([8, 12]);
    const a = t(im, sampleRng(3, 1, 5));
    expect([a.channels, a.height, a.width]).toEqual([3, 8, 12]);
    expect(t(im, sampleRng(3, 1, 5)).data).toEqual(a.data);
    expect(t(im, sampleRng(3, 2, 5)).data).not.toEqual(a.data);
    // With scale and ratio pinned to the whole image, it is a plain resize.
    const whole = transforms.randomResizedCrop([8, 12], { scale: [1, 1], ratio: [1.5, 1.5] })(im, sampleRng(0, 0, 0));
    expect(whole.data).toEqual(transforms.resize([8, 12])(im, sampleRng(0, 0, 0)).data);
  });

  it('compose and fromSpec rebuild the same pipeline from its spec', () => {
    const t = transforms.compose(transforms.randomCrop(5, { padding: 1 }), transforms.randomHorizontalFlip(), transforms.normalize([0.5], [0.25]));
    expect(t.spec?.name).toBe('compose');
    const again = transforms.fromSpec(JSON.parse(JSON.stringify(t.spec)));
    const im = ramp(1, 5, 5);
    for (let i = 0; i < 20; i++) expect(again(im, sampleRng(0, 0, i)).data).toEqual(t(im, sampleRng(0, 0, i)).data);
    expect(() => transforms.fromSpec([{ name: 'blur' } as never])).toThrow(/unknown transform "blur"/);
  });

  it('toTensor turns HWC bytes into CHW floats / 255', () => {
    const hwc = Uint8Array.from([0, 51, 255, 102, 153, 204]); // 1x2 pixels, 3 channels
    const out = transforms.toTensor(hwc, 1, 2, 3);
    expect([out.channels, out.height, out.width]).toEqual([3, 1, 2]);
    expect(Array.from(out.data)).toEqual([0, 102, 51, 153, 255, 204].map((v) => Math.fround(v / 255)));
  });

  it('rejects bad arguments naming the transform', () => {
    expect(() => transforms.normalize([0.5, 0.5], [1, 2, 3])).toThrow(/normalize: mean has 2 values, std 3; give one per channel, or one for all/);
    expect(() => transforms.normalize([], [])).toThrow(/normalize: mean has 0 values/);
    expect(() => transforms.normalize([0.5, 0.5], [1])(ramp(3, 2, 2), sampleRng(0, 0, 0))).toThrow(/image has 3 channels, mean 2 values/);
    expect(() => transforms.resize(0)).toThrow(/resize: size 0/);
    expect(() => transforms.resize([4, 5, 6] as never)).toThrow(/resize: size \[4,5,6\] must be a positive integer, \[n\] or \[h, w\]/);
    expect(() => transforms.randomHorizontalFlip(2)).toThrow(/p 2 must lie in \[0, 1\]/);
    expect(() => transforms.randomCrop(3, { padding: -1 })).toThrow(/randomCrop: padding -1 must be a non-negative integer/);
    expect(() => transforms.randomCrop(3, { padding: 1, paddingMode: 'reflect', fill: 0.5 })).toThrow(/fill applies to paddingMode 'constant' only, not 'reflect'/);
    expect(() => transforms.randomCrop(3, { padIfNeeded: 'yes' as never })).toThrow(/randomCrop: padIfNeeded "yes" must be true or false/);
    expect(() => transforms.resize(3, { antialias: 1 as never })).toThrow(/resize: antialias 1 must be true or false/);
    expect(() => transforms.randomResizedCrop(4, { scale: [-0.1, 1] })).toThrow(/randomResizedCrop: scale \[-0.1,1\] must be \(min, max\) with 0 <= min <= max/);
    expect(() => transforms.randomResizedCrop(4, { ratio: [0, 1] })).toThrow(/ratio \[0,1\] \(min, max\) with 0 < min <= max/);
  });

  it('refuses option names it does not know, in constructors and in specs, instead of ignoring them', () => {
    expect(() => transforms.randomCrop(3, { padding: 1, padding_mode: 'reflect' } as never)).toThrow(/randomCrop: unknown option padding_mode \(known: padding, fill, paddingMode, padIfNeeded\)/);
    expect(() => transforms.resize(4, { antialias: true, maxSize: 9 } as never)).toThrow(/resize: unknown option maxSize \(known: antialias\)/);
    expect(() => transforms.randomResizedCrop(4, { interpolation: 'nearest' } as never)).toThrow(/randomResizedCrop: unknown option interpolation/);
    const spec = (s: object) => () => transforms.fromSpec([s as TransformSpec]);
    expect(spec({ name: 'randomCrop', size: 3, pad_if_needed: true })).toThrow(/randomCrop: unknown option pad_if_needed/);
    expect(spec({ name: 'randomHorizontalFlip', prob: 0.5 })).toThrow(/transforms.fromSpec\(randomHorizontalFlip\): unknown option prob \(known: p\)/);
    expect(spec({ name: 'normalize', mean: [0], std: [1], inplace: true })).toThrow(/fromSpec\(normalize\): unknown option inplace/);
    expect(spec({ name: 'compose', transforms: [], extra: 1 })).toThrow(/fromSpec\(compose\): unknown option extra/);
  });

  it('every option travels in the spec: fromSpec rebuilds the same transform', () => {
    const im = ramp(2, 9, 7);
    const built = [
      transforms.randomCrop(6, { padding: [1, 2], paddingMode: 'symmetric', padIfNeeded: true }),
      transforms.randomCrop([5, 9], { padding: [1, 0, 2, 1], fill: 0.25, padIfNeeded: true }),
      transforms.randomCrop([4], { padding: 2, paddingMode: 'edge' }),
      transforms.resize([4, 3], { antialias: false }),
      transforms.resize([4]),
      transforms.randomResizedCrop([3, 5], { scale: [0, 1], ratio: [0.5, 2], antialias: false }),
      transforms.normalize([0.5], [0.2, 0.3]),
    ];
    for (const t of built) {
      const again = transforms.fromSpec(JSON.parse(JSON.stringify(t.spec)) as TransformSpec);
      expect(again.spec).toEqual(t.spec);
      for (let i = 0; i < 10; i++) expect(again(im, sampleRng(2, 0, i)).data).toEqual(t(im, sampleRng(2, 0, i)).data);
    }
    // antialias: false in a spec stays false (the default is true), and the two differ when shrinking.
    const aa = transforms.fromSpec({ name: 'resize', size: [4, 3] });
    expect(aa(im, sampleRng(0, 0, 0)).data).not.toEqual(built[3]!(im, sampleRng(0, 0, 0)).data);
  });

  it('accepts torchvision\'s one-element sizes and a zero minimum scale', () => {
    const im = ramp(1, 8, 6);
    const shape = (o: Image) => [o.channels, o.height, o.width];
    expect(shape(transforms.resize([4])(im, sampleRng(0, 0, 0)))).toEqual([1, 5, 4]); // the shorter edge, as an int
    expect(shape(transforms.randomCrop([3])(im, sampleRng(0, 0, 0)))).toEqual([1, 3, 3]);
    for (let i = 0; i < 20; i++) expect(shape(transforms.randomResizedCrop([4], { scale: [0, 1] })(im, sampleRng(0, 0, i)))).toEqual([1, 4, 4]);
  });
});
