/**
 * DataLoader: batches of a dataset in a seeded order, optionally loaded and augmented in a worker
 * thread that keeps `prefetch` batches ahead, so data preparation overlaps compute.
 */
import { Worker } from 'node:worker_threads';
import { fromTypedArray, Tensor } from '@nodegrad/autograd';
import { collate, type RawBatch } from './collate.js';
import { randomPermutation } from './rng.js';
import type { DistributedSampler } from './sampler.js';
import { checkOptionNames, DataError, type Dataset, type WorkerSpec } from './types.js';

/** One batch: images [B, C, H, W] float32, labels [B] int64, and the dataset indices they came from. */
export interface Batch {
  x: Tensor;
  y: Tensor;
  indices: number[];
}

/** Options of `DataLoader`. */
export interface DataLoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  sampler?: DistributedSampler;
  /** Where batches are placed; default: the default device. */
  device?: string;
  /** 1: load and augment in a worker thread (the dataset needs a workerSpec); 0: on this thread. */
  workers?: 0 | 1;
  /** Batches the worker prepares ahead of the one being consumed. */
  prefetch?: number;
}

interface Pending {
  resolve: (b: RawBatch) => void;
  reject: (e: Error) => void;
  indices: number[];
}

const OPTIONS = ['batchSize', 'shuffle', 'seed', 'dropLast', 'sampler', 'device', 'workers', 'prefetch'];

// Same extension as this module: .ts under tsx/vitest, .js in dist.
const sibling = (name: string): string => new URL(`./${name}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** Batches over a dataset; the order of an epoch is a pure function of (seed, epoch). */
export class DataLoader {
  private readonly batchSize: number;
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly dropLast: boolean;
  private readonly sampler: DistributedSampler | undefined;
  private readonly device: string | undefined;
  private readonly prefetch: number;
  private readonly spec: WorkerSpec | undefined;
  private epoch = 0;
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  constructor(readonly dataset: Dataset, opts: DataLoaderOptions) {
    checkOptionNames('DataLoader', opts, OPTIONS);
    const { batchSize } = opts;
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`DataLoader: batchSize ${batchSize} must be a positive integer`);
    if (opts.sampler && opts.shuffle) throw new RangeError('DataLoader: sampler and shuffle are mutually exclusive (the sampler shuffles)');
    if (opts.sampler && opts.sampler.datasetLength !== dataset.length) {
      throw new RangeError(`DataLoader: the sampler was made for ${opts.sampler.datasetLength} items, the dataset has ${dataset.length}`);
    }
    const workers = opts.workers ?? 0;
    if (workers !== 0 && workers !== 1) throw new RangeError(`DataLoader: workers ${String(workers)} must be 0 or 1`);
    const prefetch = opts.prefetch ?? 2;
    if (!(Number.isInteger(prefetch) && prefetch >= 1)) throw new RangeError(`DataLoader: prefetch ${prefetch} must be a positive integer`);
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    this.sampler = opts.sampler;
    this.device = opts.device;
    this.prefetch = prefetch;
    if (workers === 1) {
      if (dataset.workerSpec) {
        this.spec = dataset.workerSpec();
      } else {
        console.warn(`DataLoader: ${dataset.constructor.name} has no workerSpec (its data lives in this thread), so it loads on the main thread`);
      }
    }
    if (this.epochIndices().length === 0) {
      const s = this.sampler;
      throw new RangeError(s ? `DataLoader: this rank's shard is empty (${s.datasetLength} items over ${s.numReplicas} replicas, dropLast)`
        : 'DataLoader: the dataset is empty');
    }
  }

  /** Selects the epoch (the shuffle, the sampler's shard and the augmentation streams). */
  setEpoch(e: number): void {
    if (!(Number.isInteger(e) && e >= 0)) throw new RangeError(`DataLoader.setEpoch: epoch ${e} must be a non-negative integer`);
    this.epoch = e;
    this.sampler?.setEpoch(e);
  }

  /** The dataset indices of the current epoch, in order. */
  epochIndices(): number[] {
    if (this.sampler) return this.sampler.indices();
    const n = this.dataset.length;
    return this.shuffle ? randomPermutation(n, this.seed, this.epoch) : Array.from({ length: n }, (_, i) => i);
  }

  /** Batches per epoch (the last, partial batch counts unless dropLast). */
  get batchesPerEpoch(): number {
    const n = this.sampler ? this.sampler.length : this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /**
   * `for await (const batch of loader)`: the current epoch's batches, as `batches()` gives them.
   * A pass that runs to its end moves the loader to the next epoch, so each pass reshuffles, as a
   * PyTorch DataLoader's does; with a sampler the epoch is the sampler's to set (its setEpoch, as
   * in PyTorch) or the loader's (setEpoch).
   */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Batch> {
    yield* this.batches();
    if (!this.sampler) this.epoch++;
  }

  /** Batches of the current epoch starting at batch `start` (for resume). */
  async *batches(start = 0): AsyncIterableIterator<Batch> {
    const total = this.batchesPerEpoch;
    if (!(Number.isInteger(start) && start >= 0 && start <= total)) {
      throw new RangeError(`DataLoader.batches: start ${start} must lie in [0, ${total}]`);
    }
    const order = this.epochIndices();
    const batchIndices = (b: number): number[] => order.slice(b * this.batchSize, (b + 1) * this.batchSize);
    const { seed } = this;
    // The augmentation streams follow the sampler's epoch too, when the user sets only that one.
    const epoch = this.sampler ? this.sampler.epoch : this.epoch;
    if (!this.spec) {
      for (let b = start; b < total; b++) yield this.wrap(await collate(this.dataset, batchIndices(b), seed, epoch));
      return;
    }
    const inFlight: Array<Promise<RawBatch>> = [];
    let next = start;
    try {
      for (let b = start; b < total; b++) {
        while (next < total && next <= b + this.prefetch) inFlight.push(this.request(batchIndices(next++), seed, epoch));
        yield this.wrap(await inFlight.shift()!);
      }
    } finally {
      // An abandoned iteration leaves requests in flight: their batches are discarded on arrival.
      for (const p of inFlight) p.catch(() => {});
    }
  }

  /** Stops the worker thread, if one was started. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    this.failAll(new Error('DataLoader: closed'));
  }

  private wrap(raw: RawBatch): Batch {
    const dev = this.device === undefined ? {} : { device: this.device };
    return {
      x: fromTypedArray(raw.x, raw.shape, { dtype: 'float32', ...dev }),
      y: fromTypedArray(raw.y, [raw.y.length], { dtype: 'int64', ...dev }),
      indices: raw.indices,
    };
  }

  private request(indices: number[], seed: number, epoch: number): Promise<RawBatch> {
    if (this.failure) return Promise.reject(this.failure);
    const worker = this.startWorker();
    const id = this.nextId++;
    worker.ref();
    return new Promise<RawBatch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, indices });
      worker.postMessage({ id, indices, seed, epoch });
    });
  }

  private startWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./worker_entry.mjs', import.meta.url), { workerData: { spec: this.spec, collateModule: sibling('collate') } });
    w.on('message', (msg: { id: number; error?: string; dataError?: boolean; x?: Float32Array; y?: Float64Array; shape?: RawBatch['shape'] }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (this.pending.size === 0) w.unref(); // idle: the worker alone must not keep the process alive
      if (msg.error !== undefined) p.reject(msg.dataError ? new DataError(msg.error) : new Error(msg.error));
      else p.resolve({ x: msg.x!, y: msg.y!, shape: msg.shape!, indices: p.indices });
    });
    w.on('error', (e) => this.failAll(new Error(`DataLoader worker failed: ${e.message}`)));
    w.on('exit', (code) => {
      if (this.worker === w) this.failAll(new Error(`DataLoader worker exited with code ${code}`));
    });
    this.worker = w;
    return w;
  }

  private failAll(e: Error): void {
    if (this.worker) this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
