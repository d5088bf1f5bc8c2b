/**
 * An image folder as torchvision's ImageFolder: one sub-folder per class (classes are the sorted
 * sub-folder names), PNG and JPEG files inside, decoded to RGB by sharp (libvips, shipped as
 * prebuilt binaries in npm packages). Decoding happens in `get`, so a loader's worker thread
 * does it off the main thread.
 */
import { readdirSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { fromHwcBytes } from './image_ops.js';
import { resolveTransform, type Transform, type TransformOption, type TransformSpec } from './transforms.js';
import { checkIndex, type Dataset, type Rng, type Sample, type WorkerSpec } from './types.js';
import { makeWorkerSpec } from './worker_spec.js';

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** Options of `ImageFolder.load`. */
export interface ImageFolderOptions {
  /** Resize every image to [height, width] while decoding (sharp, linear kernel, aspect not kept). */
  size?: [number, number];
  transform?: TransformOption;
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

  /** Use `ImageFolder.load`; this takes an already scanned file list. */
  constructor(readonly root: string, readonly classes: readonly string[], readonly files: readonly ImageFile[], private readonly opts: ImageFolderOptions = {}) {
    const size = opts.size;
    if (size !== undefined && !(size.length === 2 && size.every((s) => Number.isInteger(s) && s > 0))) {
      throw new RangeError(`ImageFolder: size ${JSON.stringify(size)} must be [height, width] of positive integers`);
    }
    ({ fn: this.transform, spec: this.transformSpec } = resolveTransform(opts.transform));
  }

  /** Scans `dir`: classes are its sorted sub-folders, samples their PNG/JPEG files in sorted order. */
  static async load(dir: string, opts: ImageFolderOptions = {}): Promise<ImageFolder> {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new Error(`ImageFolder: folder ${dir} does not exist or is not a folder`);
    const entries = await readdir(dir, { withFileTypes: true });
    const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
    if (classes.length === 0) throw new Error(`ImageFolder: ${dir} has no class sub-folders (expected ${dir}/<class>/<image>.png)`);
    const files: ImageFile[] = [];
    classes.forEach((cls, label) => {
      const names = readdirSync(join(dir, cls)).filter((n) => EXTENSIONS.has(extname(n).toLowerCase())).sort();
      for (const n of names) files.push({ path: join(dir, cls, n), label });
    });
    if (files.length === 0) throw new Error(`ImageFolder: no .png/.jpg/.jpeg files under the class folders of ${dir}`);
    return new ImageFolder(dir, classes, files, opts);
  }

  get length(): number {
    return this.files.length;
  }

  /** Decodes the i-th file to RGB (resized when `size` was given), then applies the transform. */
  async get(index: number, rng: Rng): Promise<Sample> {
    checkIndex('ImageFolder', index, this.length);
    const { path, label } = this.files[index]!;
    let pipeline = sharp(path).removeAlpha().toColourspace('srgb');
    if (this.opts.size) {
      const [height, width] = this.opts.size;
      pipeline = pipeline.resize({ width, height, fit: 'fill', kernel: 'linear' });
    }
    let decoded: { data: Buffer; info: OutputInfo };
    try {
      decoded = await pipeline.raw().toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new Error(`ImageFolder: cannot decode ${path}: ${(e as Error).message}`);
    }
    const { data, info } = decoded;
    if (info.channels !== 3) throw new Error(`ImageFolder: ${path} decoded to ${info.channels} channels, expected RGB`);
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
