/** A dataset over in-memory images and labels, as torch.utils.data.TensorDataset. */
import { fmt, Tensor } from '@nodegrad/autograd';
import { resolveTransform, type Transform, type TransformOption } from './transforms.js';
import { checkIndex, type Dataset, type Rng, type Sample } from './types.js';

/** Options of `TensorDataset`. */
export interface TensorDatasetOptions {
  /** [C, H, W] of one image; required when `x` is a typed array. */
  shape?: [number, number, number];
  /** Class names; default '0' .. the largest label. */
  classes?: string[];
  transform?: TransformOption;
}

/**
 * Images x ([N, C, H, W] float tensor, or a flat array with `shape`) and labels y ([N] int64
 * tensor, or an array of integers). It has no workerSpec: its data lives in this thread's memory,
 * so a DataLoader with workers: 1 loads it on the main thread (and says so once).
 */
export class TensorDataset implements Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  private readonly x: Float32Array;
  private readonly labels: Float64Array;
  private readonly chw: [number, number, number];
  private readonly transform: Transform | undefined;

  constructor(x: Tensor | Float32Array | Float64Array, y: Tensor | ArrayLike<number>, opts: TensorDatasetOptions = {}) {
    if (x instanceof Tensor) {
      if (x.shape.length !== 4) throw new RangeError(`TensorDataset: x must be [N, C, H, W], got ${fmt(x.shape)}`);
      if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`TensorDataset: x must be float, got ${x.dtype}`);
      this.chw = [x.shape[1]!, x.shape[2]!, x.shape[3]!];
      this.x = Float32Array.from(x.toTypedArray());
    } else {
      if (!opts.shape) throw new TypeError('TensorDataset: x is a typed array, so opts.shape ([C, H, W]) is required');
      this.chw = opts.shape;
      this.x = x instanceof Float32Array ? x : Float32Array.from(x);
    }
    const per = this.chw[0] * this.chw[1] * this.chw[2];
    const n = this.x.length / per;
    if (!Number.isInteger(n)) throw new RangeError(`TensorDataset: x has ${this.x.length} values, not a multiple of C*H*W = ${per}`);
    if (y instanceof Tensor) {
      if (y.shape.length !== 1) throw new RangeError(`TensorDataset: y must be [N], got ${fmt(y.shape)}`);
      this.labels = Float64Array.from(y.toTypedArray());
    } else {
      this.labels = Float64Array.from(Array.from(y));
    }
    if (this.labels.length !== n) throw new RangeError(`TensorDataset: x holds ${n} images but y has ${this.labels.length} labels`);
    const bad = this.labels.findIndex((l) => !Number.isInteger(l) || l < 0);
    if (bad >= 0) throw new RangeError(`TensorDataset: label ${this.labels[bad]} at ${bad} is not a non-negative integer`);
    this.length = n;
    const top = this.labels.reduce((a, b) => Math.max(a, b), -1);
    this.classes = opts.classes ?? Array.from({ length: top + 1 }, (_, i) => String(i));
    this.transform = resolveTransform(opts.transform).fn;
  }

  /** The i-th image (a copy) and label; `rng` drives the transform. */
  get(index: number, rng: Rng): Sample {
    checkIndex('TensorDataset', index, this.length);
    const [channels, height, width] = this.chw;
    const per = channels * height * width;
    const image = { data: this.x.slice(index * per, (index + 1) * per), channels, height, width };
    return { image: this.transform ? this.transform(image, rng) : image, label: this.labels[index]! };
  }
}
