import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sampleRng, transforms, type Image } from '@nodegrad/data';

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

  it('resize matches torchvision bilinear (antialias=False) on every fixture case', () => {
    expect(fx.resize.length).toBeGreaterThanOrEqual(7);
    for (const c of fx.resize) {
      const out = transforms.resize(c.size)(img(c.input), sampleRng(0, 0, 0));
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
    expect(() => transforms.normalize([0.5, 0.5], [1])).toThrow(/normalize: mean has 2 values, std 1/);
    expect(() => transforms.normalize([0.5], [1])(ramp(3, 2, 2), sampleRng(0, 0, 0))).toThrow(/image has 3 channels/);
    expect(() => transforms.resize(0)).toThrow(/resize: size 0/);
    expect(() => transforms.randomHorizontalFlip(2)).toThrow(/p 2 must lie in \[0, 1\]/);
  });
});
