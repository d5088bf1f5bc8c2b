/**
 * An image folder as torchvision's ImageFolder: one sub-folder per class (classes are the sorted
 * sub-folder names), PNG and JPEG files inside, decoded to RGB by sharp (libvips, shipped as
 * prebuilt binaries in npm packages). Decoding happens in `get`, so a loader's worker thread
 * does it off the main thread.
 */
import { readdirSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { OutputInfo } from 'sharp';
import { fromHwcBytes } from './image_ops.js';
import { imageFileProblem } from './image_scan.js';
import { requireOptional } from './optional.js';
import { resolveTransform, type Transform, type TransformOption, type TransformSpec } from './transforms.js';
import { checkIndex, DataError, type Dataset, type Rng, type Sample, type WorkerSpec } from './types.js';
import { makeWorkerSpec } from './worker_spec.js';

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** Options of `ImageFolder.load`. */
export interface ImageFolderOptions {
  /** Resize every image to [height, width] while decoding (sharp, linear kernel, aspect not kept). */
  size?: [number, number];
  transform?: TransformOption;
  /**
   * What `load` does with a file that fails the scan (a truncated or non-image file with an image
   * extension, see image_scan.ts): leave it out and list it in `skipped`, or throw a DataError
   * naming every such file ('fail', the default).
   */
  onBadImage?: 'skip' | 'fail';
}

/** A file `load` left out, and why. */
export interface SkippedFile {
  path: string;
  problem: string;
}

/** One file of the folder and its class index. */
export interface ImageFile {
  path: string;
  label: number;
}

/** Labelled images from class sub-folders (PNG/JPEG), decoded to 3×H×W RGB floats in [0, 1]. */
export class ImageFolder implements Dataset {
  private readonly transform: Transform | undefined;
  private readonly transformSpec: TransformSpec[] | undefined;

  /** Files of the class folders that failed the scan (with onBadImage 'skip'). */
  skipped: readonly SkippedFile[] = [];
  /** Files of the class folders without a PNG/JPEG extension, ignored as torchvision ignores them. */
  ignored: readonly string[] = [];

  /** Use `ImageFolder.load`; this takes an already scanned file list. */
  constructor(readonly root: string, readonly classes: readonly string[], readonly files: readonly ImageFile[], private readonly opts: ImageFolderOptions = {}) {
    const size = opts.size;
    if (size !== undefined && !(size.length === 2 && size.every((s) => Number.isInteger(s) && s > 0))) {
      throw new RangeError(`ImageFolder: size ${JSON.stringify(size)} must be [height, width] of positive integers`);
    }
    ({ fn: this.transform, spec: this.transformSpec } = resolveTransform(opts.transform));
  }

  /**
   * Scans `dir`: classes are its sorted sub-folders, samples their PNG/JPEG files in sorted order,
   * each checked for a complete PNG/JPEG structure (see `onBadImage`). A class folder without any
   * PNG/JPEG file is an error, as in torchvision.
   */
  static async load(dir: string, opts: ImageFolderOptions = {}): Promise<ImageFolder> {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new DataError(`ImageFolder: folder ${dir} does not exist or is not a folder`);
    const entries = await readdir(dir, { withFileTypes: true });
    const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
    if (classes.length === 0) throw new DataError(`ImageFolder: ${dir} has no class sub-folders (expected ${dir}/<class>/<image>.png)`);
    const files: ImageFile[] = [];
    const skipped: SkippedFile[] = [];
    const ignored: string[] = [];
    const empty: string[] = [];
    classes.forEach((cls, label) => {
      const entries = readdirSync(join(dir, cls), { withFileTypes: true }).filter((e) => !e.isDirectory() && !e.name.startsWith('.'));
      const names = entries.map((e) => e.name).filter((n) => EXTENSIONS.has(extname(n).toLowerCase())).sort();
      for (const e of entries) if (!EXTENSIONS.has(extname(e.name).toLowerCase())) ignored.push(join(dir, cls, e.name));
      if (names.length === 0) empty.push(cls);
      for (const n of names) {
        const path = join(dir, cls, n);
        const problem = imageFileProblem(path);
        if (problem) skipped.push({ path, problem });
        else files.push({ path, label });
      }
    });
    if (empty.length) {
      throw new DataError(`ImageFolder: no .png/.jpg/.jpeg file in the class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => join(dir, c)).join(', ')} ` +
        '(every class needs at least one image, as in torchvision)');
    }
    if (skipped.length && opts.onBadImage !== 'skip') {
      throw new DataError(`ImageFolder: ${skipped.length} file${skipped.length > 1 ? 's' : ''} under ${dir} cannot be used: ` +
        `${skipped.slice(0, 5).map((f) => `${f.path} ${f.problem}`).join('; ')}${skipped.length > 5 ? `; and ${skipped.length - 5} more` : ''}`);
    }
    if (files.length === 0) throw new DataError(`ImageFolder: no usable .png/.jpg/.jpeg file under the class folders of ${dir}`);
    const ds = new ImageFolder(dir, classes, files, opts);
    ds.skipped = skipped;
    ds.ignored = ignored;
    return ds;
  }

  get length(): number {
    return this.files.length;
  }

  /** Decodes the i-th file to RGB (resized when `size` was given), then applies the transform. */
  async get(index: number, rng: Rng): Promise<Sample> {
    checkIndex('ImageFolder', index, this.length);
    const { path, label } = this.files[index]!;
    // 'truncated': a cut-short file is an error, a warning of a complete one is not (sharp's
    // default, 'warning', fails on recoverable quirks many cameras' JPEGs have).
    const sharp = requireOptional<typeof import('sharp').default>('sharp');
    let pipeline = sharp(path, { failOn: 'truncated' }).removeAlpha().toColourspace('srgb');
    if (this.opts.size) {
      const [height, width] = this.opts.size;
      pipeline = pipeline.resize({ width, height, fit: 'fill', kernel: 'linear' });
    }
    let decoded: { data: Buffer; info: OutputInfo };
    try {
      decoded = await pipeline.raw().toBuffer({ resolveWithObject: true });
    } catch (e) {
      // libvips repeats its messages over several lines: one line, each message once.
      const why = [...new Set((e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean))].join('; ');
      throw new DataError(`ImageFolder: cannot decode ${path}: ${why}`);
    }
    const { data, info } = decoded;
    if (info.channels !== 3) throw new DataError(`ImageFolder: ${path} decoded to ${info.channels} channels, expected RGB`);
    const image = fromHwcBytes(data, info.height, info.width, 3);
    return { image: this.transform ? this.transform(image, rng) : image, label };
  }

  /** Rebuilt in a worker by `imageFolderFromList` with the same file list (no re-scan). */
  workerSpec(): WorkerSpec {
    const opts = { ...(this.opts.size && { size: this.opts.size }), transform: this.transformSpec };
    return makeWorkerSpec('ImageFolder', import.meta.url, 'imageFolderFromList', [this.root, this.classes, this.files, opts], this.transformSpec);
  }
}

/** The worker-side factory: an ImageFolder over a known file list. */
export function imageFolderFromList(root: string, classes: string[], files: ImageFile[], opts: ImageFolderOptions): ImageFolder {
  return new ImageFolder(root, classes, files, opts);
}
