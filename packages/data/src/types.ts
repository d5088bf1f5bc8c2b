/** The data contracts every dataset, transform and loader of @nodegrad/data shares. */

/** One image: channels × height × width floats, row-major (CHW, as a PyTorch image tensor). */
export interface Image {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** One labelled example. */
export interface Sample {
  image: Image;
  label: number;
}

/** A uniform random source on [0, 1). */
export type Rng = () => number;

/** Where a worker thread finds a dataset again: a module URL, the exported factory's name and its JSON args. */
export interface WorkerSpec {
  module: string;
  factory: string;
  args: unknown;
}

/** Indexed, labelled images; `get` may be async (decoding a file) and receives the sample's own RNG. */
export interface Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  get(index: number, rng: Rng): Sample | Promise<Sample>;
  /** How a worker thread rebuilds this dataset: a module URL, an exported factory name and JSON args. */
  workerSpec?(): WorkerSpec;
}

/**
 * A problem with a dataset's files (missing, truncated, of the wrong format, undecodable): the
 * message names the file. A worker thread's DataError reaches the main thread as a DataError.
 */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** Checks an index against a dataset's length, naming the dataset in the error. */
export function checkIndex(name: string, index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new RangeError(`${name}.get: index ${index} is out of range [0, ${length})`);
  }
}

/**
 * Refuses option names `what` does not know: under another name (torch's drop_last) one would be
 * ignored. @nodegrad/autograd exports the same check; this copy keeps the modules a DataLoader
 * worker loads (transforms, datasets, collate) free of autograd.
 */
export function checkOptionNames(what: string, opts: object, known: readonly string[]): void {
  const unknown = Object.keys(opts).filter((k) => !known.includes(k));
  if (unknown.length) throw new RangeError(`${what}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${known.join(', ')})`);
}
