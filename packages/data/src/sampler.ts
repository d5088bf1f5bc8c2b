/** torch.utils.data.DistributedSampler: each rank's shard of an epoch's indices. */
import { randomPermutation } from './rng.js';
import { checkOptionNames } from './types.js';

/** Options of `DistributedSampler`. */
export interface DistributedSamplerOptions {
  numReplicas: number;
  rank: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
}

/**
 * PyTorch's semantics: the epoch's order (shuffled by the pair (seed, epoch) with nodegrad's own
 * generator, so the order is not torch's; else 0..n-1) is padded by
 * repeating its first indices until it divides evenly by `numReplicas` (or its tail is dropped
 * with `dropLast`), then rank r takes positions r, r + numReplicas, ... Every rank therefore gets
 * `length` indices and the shards are disjoint up to the padding.
 */
export class DistributedSampler {
  /** Indices per rank per epoch. */
  readonly length: number;
  private readonly totalSize: number;
  readonly numReplicas: number;
  private readonly rank: number;
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly dropLast: boolean;
  private currentEpoch = 0;

  constructor(readonly datasetLength: number, opts: DistributedSamplerOptions) {
    checkOptionNames('DistributedSampler', opts, ['numReplicas', 'rank', 'shuffle', 'seed', 'dropLast']);
    const { numReplicas, rank } = opts;
    if (!(Number.isInteger(numReplicas) && numReplicas > 0)) throw new RangeError(`DistributedSampler: numReplicas ${numReplicas} must be a positive integer`);
    if (!(Number.isInteger(rank) && rank >= 0 && rank < numReplicas)) {
      throw new RangeError(`DistributedSampler: rank ${rank} must lie in [0, ${numReplicas - 1}]`);
    }
    if (!(Number.isInteger(datasetLength) && datasetLength > 0)) throw new RangeError(`DistributedSampler: length ${datasetLength} must be a positive integer`);
    this.numReplicas = numReplicas;
    this.rank = rank;
    this.shuffle = opts.shuffle ?? true;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    this.length = this.dropLast && datasetLength % numReplicas !== 0
      ? Math.max(Math.ceil((datasetLength - numReplicas) / numReplicas), 0)
      : Math.ceil(datasetLength / numReplicas);
    this.totalSize = this.length * numReplicas;
  }

  /** Selects the epoch whose shuffle `indices()` returns (call before each epoch, as in PyTorch). */
  setEpoch(e: number): void {
    if (!(Number.isInteger(e) && e >= 0)) throw new RangeError(`DistributedSampler.setEpoch: epoch ${e} must be a non-negative integer`);
    this.currentEpoch = e;
  }

  /** The epoch `setEpoch` selected (0 until then). */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** This rank's dataset indices for the current epoch. */
  indices(): number[] {
    const n = this.datasetLength;
    let order = this.shuffle ? randomPermutation(n, this.seed, this.currentEpoch) : Array.from({ length: n }, (_, i) => i);
    if (this.dropLast) order = order.slice(0, this.totalSize);
    else for (let i = 0; order.length < this.totalSize; i++) order.push(order[i % n]!);
    const out: number[] = [];
    for (let i = this.rank; i < this.totalSize; i += this.numReplicas) out.push(order[i]!);
    return out;
  }
}
