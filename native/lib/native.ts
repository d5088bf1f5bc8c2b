/**
 * The whole native surface in one place: what build/Release/nodegrad.node exports. Each device is
 * an object of memory functions and a kernel table keyed by the KernelNames of the Backend
 * interface; tensors cross as opaque handles inside Raw objects ({ buf, shape, dtype }); data is
 * copied only by fromArray (upload) and readSync (download).
 */
import type { DType, Kernels, Raw, Shape, TypedArray } from '@nodegrad/autograd';

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
  readonly kernels: Kernels;
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
}
