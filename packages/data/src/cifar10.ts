/**
 * CIFAR-10 in its binary format (https://www.cs.toronto.edu/~kriz/cifar.html): each record is one
 * label byte then 3072 bytes, the red, green and blue 32×32 planes in row-major order.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { resolveTransform, type Transform, type TransformOption, type TransformSpec } from './transforms.js';
import { checkIndex, DataError, type Dataset, type Rng, type Sample, type WorkerSpec } from './types.js';
import { makeWorkerSpec } from './worker_spec.js';

const SIDE = 32;
const IMAGE_BYTES = 3 * SIDE * SIDE;
const RECORD = 1 + IMAGE_BYTES;

/** The class names of CIFAR-10, in label order (batches.meta.txt). */
export const CIFAR10_CLASSES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Options of `cifar10()`. */
export interface Cifar10Options {
  transform?: TransformOption;
  /** Keep only the first `limit` records. */
  limit?: number;
}

/** The files of a split: data_batch_1..5.bin for 'train', test_batch.bin for 'test'. */
export function cifar10Files(split: 'train' | 'test'): string[] {
  if (split === 'train') return [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  if (split === 'test') return ['test_batch.bin'];
  throw new RangeError(`cifar10: split '${String(split)}' must be 'train' or 'test'`);
}

/** CIFAR-10 records from a folder, as a Dataset (3×32×32, labels 0..9). */
export class Cifar10Dataset implements Dataset {
  readonly classes = CIFAR10_CLASSES;
  private readonly records: Uint8Array;
  private readonly transform: Transform | undefined;
  private readonly transformSpec: TransformSpec[] | undefined;
  readonly length: number;

  constructor(readonly dir: string, readonly split: 'train' | 'test', private readonly opts: Cifar10Options = {}) {
    const files = cifar10Files(split);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new DataError(`cifar10: folder ${dir} does not exist (expected ${files.join(', ')} in it)`);
    }
    const parts = files.map((name) => {
      const file = join(dir, name);
      if (!existsSync(file)) throw new DataError(`cifar10: missing file ${file} (the '${split}' split needs ${files.join(', ')})`);
      const buf = readFileSync(file);
      if (buf.length === 0 || buf.length % RECORD !== 0) {
        throw new DataError(`cifar10: ${file} has ${buf.length} bytes, not a multiple of ${RECORD} (1 label byte + ${IMAGE_BYTES} pixel bytes per image)`);
      }
      for (let r = 0; r < buf.length; r += RECORD) {
        if (buf[r]! > 9) throw new DataError(`cifar10: ${file} record ${r / RECORD} has label ${buf[r]}, not 0..9`);
      }
      return buf;
    });
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    let n = all.length / RECORD;
    if (opts.limit !== undefined) {
      if (!(Number.isInteger(opts.limit) && opts.limit > 0)) throw new RangeError(`cifar10: limit ${opts.limit} must be a positive integer`);
      n = Math.min(n, opts.limit);
    }
    this.records = new Uint8Array(all.buffer, all.byteOffset, n * RECORD);
    this.length = n;
    ({ fn: this.transform, spec: this.transformSpec } = resolveTransform(opts.transform));
  }

  /** The i-th record; `rng` drives the transform. */
  get(index: number, rng: Rng): Sample {
    checkIndex('cifar10', index, this.length);
    const base = index * RECORD;
    const data = new Float32Array(IMAGE_BYTES);
    for (let i = 0; i < IMAGE_BYTES; i++) data[i] = this.records[base + 1 + i]! / 255;
    const image = { data, channels: 3, height: SIDE, width: SIDE };
    return { image: this.transform ? this.transform(image, rng) : image, label: this.records[base]! };
  }

  /** Rebuilt in a worker by `cifar10(dir, split, opts)` from this module. */
  workerSpec(): WorkerSpec {
    const opts = { ...(this.opts.limit !== undefined && { limit: this.opts.limit }), transform: this.transformSpec };
    return makeWorkerSpec('cifar10', import.meta.url, 'cifar10', [this.dir, this.split, opts], this.transformSpec);
  }
}

/** CIFAR-10 from `dir` (the folder holding the .bin files); errors name the missing or malformed file. */
export function cifar10(dir: string, split: 'train' | 'test', opts: Cifar10Options = {}): Dataset {
  return new Cifar10Dataset(dir, split, opts);
}
