/**
 * Batch assembly, the one code path both the main thread (workers: 0) and the worker thread
 * (workers: 1) run, so their batches are identical bit for bit. It imports no tensor code: a
 * worker only produces typed arrays, and the main thread wraps them.
 */
import { sampleRng } from './rng.js';
import type { Dataset } from './types.js';

/** A batch as plain arrays: images [B, C, H, W] float32, labels int64 (held in a Float64Array). */
export interface RawBatch {
  x: Float32Array;
  y: Float64Array;
  shape: [number, number, number, number];
  indices: number[];
}

/** Loads `indices` from `ds`, each sample with its own RNG keyed by (seed, epoch, index), and stacks them. */
export async function collate(ds: Dataset, indices: number[], seed: number, epoch: number): Promise<RawBatch> {
  if (indices.length === 0) throw new RangeError('DataLoader: empty batch');
  let x: Float32Array | undefined;
  let chw: [number, number, number] = [0, 0, 0];
  const y = new Float64Array(indices.length);
  for (let b = 0; b < indices.length; b++) {
    const index = indices[b]!;
    const { image, label } = await ds.get(index, sampleRng(seed, epoch, index));
    const { channels, height, width, data } = image;
    if (x === undefined) {
      chw = [channels, height, width];
      x = new Float32Array(indices.length * channels * height * width);
    } else if (channels !== chw[0] || height !== chw[1] || width !== chw[2]) {
      throw new RangeError(`DataLoader: sample ${index} is ${channels}x${height}x${width} but the batch started with ` +
        `${chw.join('x')}; give the dataset a size or a resize/crop transform`);
    }
    if (data.length !== channels * height * width) throw new RangeError(`DataLoader: sample ${index} has ${data.length} values for ${channels}x${height}x${width}`);
    x.set(data, b * data.length);
    y[b] = label;
  }
  return { x: x!, y, shape: [indices.length, ...chw], indices };
}
