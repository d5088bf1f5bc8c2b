/**
 * The whole native surface in one place: what build/Release/nodegrad.node exports. Each device is
 * an object of memory functions and a kernel table keyed by the KernelNames of the Backend
 * interface; tensors cross as opaque handles inside Raw objects ({ buf, shape, dtype }); data is
 * copied only by fromArray (upload) and readSync (download).
 */
import type { DType, KernelName, Kernels, Raw, Shape, TypedArray } from '@nodegrad/autograd';

export interface FeatureStatus {
  enabled: boolean;
  /** Why the feature is not built in. */
  reason?: string;
}

export interface MemoryStats {
  /** Tensors JS holds handles to on the device, and their bytes. */
  liveHandles: number;
  liveBytes: number;
  /** What the device's allocator keeps for reuse. */
  poolCachedBytes: number;
}

/**
 * Batch norm's kernels, which reach the backend outside the device table for now: the addon
 * exports them as batchNormForward / batchNormBackward (bindings/norm.cc) and kernels/norm.ts
 * adapts them, until their binding registers into the table like every other family.
 */
export type NormKernelName = Extract<KernelName, `BatchNorm${string}`>;

/** One device of the addon (bindings/device.cc): memory functions and the kernel table. */
export interface NativeDevice {
  /** The device's name as a backend: 'cpu'. */
  readonly name: string;
  fromArray(data: TypedArray, shape: Shape, dtype: DType): Raw;
  /** A plain row-major copy of the elements (Float64Array for int64), whatever layout the buffer holds. */
  readSync(x: Raw): TypedArray;
  copyInto(dst: Raw, src: Raw): void;
  /** Frees a storage (a Raw's `buf` handle) now. */
  free(buf: unknown): void;
  /** Blocks until every kernel queued so far has finished. */
  sync(): void;
  memoryStats(): MemoryStats;
  /** Returns the memory the allocator keeps for reuse to the system. */
  trimPool(): void;
  /** Debug: the layout the buffer holds ('nchw', or oneDNN's blocked 'nChw8c' / 'nChw16c' on 'cpu'). */
  layoutOf(x: Raw): string;
  /** The Kernels interface itself: a key is absent only for an optional kernel the device lacks. */
  readonly kernels: Omit<Kernels, NormKernelName>;
}

export interface NativeAddon {
  cpu: NativeDevice;
  /** The optional parts compiled in (CMakeLists.txt): oneDNN only, for now. */
  buildInfo: { onednn: FeatureStatus };
  /** Fixes the kernels' thread count; throws once a oneDNN primitive exists. Unset: OMP_NUM_THREADS. */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Cached oneDNN primitives now, and how many were ever made (a repeated shape adds none). */
  primitiveCacheStats(): { entries: number; created: number };

  // Batch norm (bindings/norm.cc), outside the table for now: see NormKernelName.
  batchNormStats(x: Raw, eps: number): { mean: Raw; invstd: Raw };
  batchNormElemt(x: Raw, weight: Raw | null, bias: Raw | null, mean: Raw, invstd: Raw): Raw;
  batchNormInvstd(runVar: Raw, eps: number): Raw;
  batchNormBackwardReduce(dy: Raw, x: Raw, mean: Raw, invstd: Raw): { sumDy: Raw; sumDyXmu: Raw; dweight: Raw; dbias: Raw };
  batchNormBackwardElemt(dy: Raw, x: Raw, mean: Raw, invstd: Raw, weight: Raw | null, sumDy: Raw, sumDyXmu: Raw,
    count: number): Raw;
  batchNormUpdateRunning(runMean: Raw, runVar: Raw, counter: Raw | null, mean: Raw, invstd: Raw,
    p: import('@nodegrad/autograd').BatchNormUpdateParams): void;
}
