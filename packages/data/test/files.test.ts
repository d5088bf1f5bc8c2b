import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cifar10, DataLoader, ImageFolder, sampleRng, type Sample } from '@nodegrad/data';

const root = mkdtempSync(join(tmpdir(), 'nodegrad-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const rng = sampleRng(0, 0, 0);

// A CIFAR-10 record: label byte, then R, G, B planes of 32x32; pixel p of channel c holds (label*7 + c*50 + p) % 256.
function record(label: number): Buffer {
  const b = Buffer.alloc(3073);
  b[0] = label;
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) b[1 + c * 1024 + p] = (label * 7 + c * 50 + p) % 256;
  return b;
}

describe('cifar10', () => {
  const dir = join(root, 'cifar');
  mkdirSync(dir);
  writeFileSync(join(dir, 'test_batch.bin'), Buffer.concat([record(3), record(9), record(0)]));
  for (let i = 1; i <= 5; i++) writeFileSync(join(dir, `data_batch_${i}.bin`), Buffer.concat([record(i), record(i + 1)]));

  it('reads the binary format: labels, CHW planes, values / 255', () => {
    const ds = cifar10(dir, 'test');
    expect(ds.length).toBe(3);
    expect(ds.classes[3]).toBe('cat');
    const s = ds.get(1, rng) as Sample;
    expect(s.label).toBe(9);
    expect([s.image.channels, s.image.height, s.image.width]).toEqual([3, 32, 32]);
    // Channel 1 (green), row 2, column 5 is pixel 69 of the green plane.
    expect(s.image.data[1024 + 2 * 32 + 5]).toBe(Math.fround(((9 * 7 + 50 + 69) % 256) / 255));
    expect(s.image.data[0]).toBe(Math.fround(63 / 255));
  });

  it('concatenates data_batch_1..5 for train and honours limit', () => {
    const train = cifar10(dir, 'train');
    expect(train.length).toBe(10);
    expect(Array.from({ length: 10 }, (_, i) => (train.get(i, rng) as Sample).label)).toEqual([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    expect(cifar10(dir, 'train', { limit: 4 }).length).toBe(4);
  });

  it('names the missing file, the wrong size and the missing folder', () => {
    expect(() => cifar10(join(root, 'nowhere'), 'test')).toThrow(/folder .*nowhere does not exist/);
    const partial = join(root, 'partial');
    mkdirSync(partial);
    writeFileSync(join(partial, 'data_batch_1.bin'), record(0));
    expect(() => cifar10(partial, 'train')).toThrow(/missing file .*data_batch_2\.bin/);
    writeFileSync(join(partial, 'test_batch.bin'), Buffer.concat([record(1), Buffer.alloc(100)]));
    expect(() => cifar10(partial, 'test')).toThrow(/test_batch\.bin has 3173 bytes, not a multiple of 3073/);
  });
});

describe('ImageFolder', () => {
  const dir = join(root, 'images');
  // Class 'cat' gets PNGs, 'dog' JPEGs, one RGBA and one greyscale; a stray text file is ignored.
  const make = async () => {
    mkdirSync(join(dir, 'dog'), { recursive: true });
    mkdirSync(join(dir, 'cat'), { recursive: true });
    const rgb = (w: number, h: number, f: (p: number, c: number) => number) =>
      Buffer.from(Uint8Array.from({ length: w * h * 3 }, (_, i) => f(Math.floor(i / 3), i % 3)));
    await sharp(rgb(4, 3, (p, c) => p * 10 + c), { raw: { width: 4, height: 3, channels: 3 } }).png().toFile(join(dir, 'cat', 'b.png'));
    await sharp(rgb(4, 3, () => 200), { raw: { width: 4, height: 3, channels: 3 } }).png().toFile(join(dir, 'cat', 'a.png'));
    await sharp(Buffer.alloc(4 * 3 * 4, 128), { raw: { width: 4, height: 3, channels: 4 } }).png().toFile(join(dir, 'cat', 'c.png'));
    await sharp(rgb(8, 6, () => 90), { raw: { width: 8, height: 6, channels: 3 } }).jpeg({ quality: 100 }).toFile(join(dir, 'dog', 'x.jpg'));
    await sharp(Buffer.alloc(8 * 6, 30), { raw: { width: 8, height: 6, channels: 1 } }).png().toFile(join(dir, 'dog', 'y.PNG'));
    writeFileSync(join(dir, 'dog', 'notes.txt'), 'not an image');
  };

  beforeAll(make);

  it('labels by sorted folder, decodes PNG/JPEG to RGB in [0, 1]', async () => {
    const ds = await ImageFolder.load(dir);
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect([ds.ignored, ds.skipped]).toEqual([[join(dir, 'dog', 'notes.txt')], []]);
    expect(ds.files.map((f) => [f.path.slice(dir.length + 1), f.label])).toEqual([['cat/a.png', 0], ['cat/b.png', 0], ['cat/c.png', 0], ['dog/x.jpg', 1], ['dog/y.PNG', 1]]);
    const b = await ds.get(1, rng);
    expect([b.image.channels, b.image.height, b.image.width, b.label]).toEqual([3, 3, 4, 0]);
    // Pixel (row 1, col 2) is pixel 6: channel c holds 60 + c, losslessly through PNG.
    expect([0, 1, 2].map((c) => b.image.data[c * 12 + 6])).toEqual([60, 61, 62].map((v) => Math.fround(v / 255)));
    const jpeg = await ds.get(3, rng);
    expect([jpeg.image.channels, jpeg.image.height, jpeg.image.width, jpeg.label]).toEqual([3, 6, 8, 1]);
    for (const v of jpeg.image.data) expect(Math.abs(v * 255 - 90)).toBeLessThanOrEqual(2);
    const grey = await ds.get(4, rng);
    expect(grey.image.channels).toBe(3);
    expect(Array.from(new Set(grey.image.data))).toEqual([Math.fround(30 / 255)]);
  });

  it('resizes to `size` while decoding, so mixed sizes batch, in a worker too', async () => {
    const ds = await ImageFolder.load(dir, { size: [5, 7], transform: [{ name: 'randomHorizontalFlip' }] });
    const s = await ds.get(3, rng);
    expect([s.image.height, s.image.width]).toEqual([5, 7]);
    const batches = async (workers: 0 | 1) => {
      const dl = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 1, workers });
      const out: number[][] = [];
      for await (const b of dl.batches()) out.push([...b.x.shape, ...b.y.toTypedArray(), ...b.x.toTypedArray()]);
      await dl.close();
      return out;
    };
    const main = await batches(0);
    expect(main.map((b) => b.slice(0, 4))).toEqual([[3, 3, 5, 7], [2, 3, 5, 7]]);
    expect(await batches(1)).toEqual(main);
  });

  it('errors name the folder or the file', async () => {
    await expect(ImageFolder.load(join(root, 'missing'))).rejects.toThrow(/folder .*missing does not exist/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    await expect(ImageFolder.load(empty)).rejects.toThrow(/has no class sub-folders/);
    const bad = join(root, 'bad');
    mkdirSync(join(bad, 'only'), { recursive: true });
    writeFileSync(join(bad, 'only', 'broken.png'), 'this is not a png');
    // The scan at load finds it: an error naming it, or with onBadImage 'skip' a list of it.
    await expect(ImageFolder.load(bad)).rejects.toThrow(/1 file under .*bad cannot be used: .*only\/broken\.png is not a PNG or JPEG file \(it starts with 74 68 69 73\)/);
    writeFileSync(join(bad, 'only', 'good.png'), readFileSync(join(dir, 'cat', 'a.png')));
    const png = readFileSync(join(dir, 'cat', 'b.png'));
    writeFileSync(join(bad, 'only', 'cut.png'), png.subarray(0, png.length - 12));
    const scanned = await ImageFolder.load(bad, { onBadImage: 'skip' });
    expect(scanned.files.map((f) => f.path)).toEqual([join(bad, 'only', 'good.png')]);
    expect(scanned.skipped).toEqual([
      { path: join(bad, 'only', 'broken.png'), problem: 'is not a PNG or JPEG file (it starts with 74 68 69 73)' },
      { path: join(bad, 'only', 'cut.png'), problem: 'is a truncated PNG (no IEND chunk)' },
    ]);
    // Past the scan, a file that does not decode is an error naming it, in the main thread and a worker.
    const ds = new ImageFolder(bad, ['only'], [{ path: join(bad, 'only', 'broken.png'), label: 0 }]);
    await expect(ds.get(0, rng)).rejects.toThrow(/cannot decode .*only\/broken\.png/);
    // The same error crosses the worker thread.
    const dl = new DataLoader(ds, { batchSize: 1, workers: 1 });
    await expect((async () => { for await (const _ of dl.batches()) { /* drain */ } })()).rejects.toThrow(/cannot decode .*broken\.png/);
    await dl.close();
    // Different sizes without `size` cannot be stacked: the loader names the sample.
    const mixed = await ImageFolder.load(dir);
    const dl2 = new DataLoader(mixed, { batchSize: 5 });
    await expect((async () => { for await (const _ of dl2.batches()) { /* drain */ } })()).rejects.toThrow(/sample 3 is 3x6x8 but the batch started with 3x3x4/);
  });
});
