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
  /** Uploads `data` (Float64Array for int64; Float32Array for the half types, rounded to the type to nearest even). */
  fromArray(data: TypedArray, shape: Shape, dtype: DType): Raw;
  /**
   * A plain row-major copy of the elements (Float64Array for int64, Float32Array for the half
   * types), whatever layout the buffer holds.
   */
  readSync(x: Raw): TypedArray;
  copyInto(dst: Raw, src: Raw): void;
  /** Frees a storage (a Raw's `buf` handle, or a handle's code) now. */
  free(buf: unknown): void;
  /**
   * Gives a handle to the garbage collector, which frees its storage when it finds it dead. A
   * handle object backend.ts made has no finalizer until then; an External has one from birth.
   */
  collectable(buf: unknown): void;
  /** Blocks until every kernel queued so far has finished. */
  sync(): void;
  memoryStats(): MemoryStats;
  /** Returns the memory the allocator keeps for reuse to the system. */
  trimPool(): void;
  /** Debug: the layout the buffer holds ('nchw', or oneDNN's 'nChw8c' / 'nChw16c' / 'nhwc' on 'cpu'). */
  layoutOf(x: Raw): string;
  /** The Kernels interface itself: a key is absent only for an optional kernel the device lacks. */
  readonly kernels: Kernels;
  /**
   * The same kernels and upload, each returning a single result as undefined, with [dtype index,
   * rank, handle code, dims...] written to the scratch `setResultScratch` set on this thread
   * (backend.ts builds the Raw object and its handle); other results are returned as `kernels`
   * returns them. A tensor argument may cross as its handle's code with its dtype and shape in its
   * slot of the argument scratch (backend.ts, toHandle).
   */
  readonly handleKernels: Record<string, (...args: unknown[]) => unknown>;
  fromArrayHandle(data: TypedArray, shape: Shape, dtype: DType): unknown;
  setResultScratch(results: Float64Array, args?: Float64Array): void;
}

export interface NativeAddon {
  cpu: NativeDevice;
  /** The optional parts compiled in (CMakeLists.txt). */
  buildInfo: { onednn: FeatureStatus; mpi: FeatureStatus };
  /** The MPI process group (src/mpi), when built with MPI. */
  mpi?: MpiAddon;
  /** Fixes the kernels' thread count; throws once a oneDNN primitive exists. Unset: OMP_NUM_THREADS. */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Cached oneDNN primitives now, and how many were ever made (a repeated shape adds none). */
  primitiveCacheStats(): { entries: number; created: number };
}

/** The caching allocator's counters for one GPU (cuda.memoryStats). */
export interface CudaMemoryStats {
  allocated: number;
  reserved: number;
  peakAllocated: number;
  peakReserved: number;
  /** allocate() calls, and those a cached block met. */
  allocations: number;
  cacheHits: number;
  /** cudaMalloc'd segments, and those given back (emptyCache, or to retry after out of memory). */
  segmentsAllocated: number;
  segmentsReleased: number;
}

/** Versions as loaded: driver and runtime as 1000 * major + 10 * minor, cuDNN as 91900, NCCL as 22809. */
export interface CudaVersions {
  driver?: number;
  runtime?: number;
  cudnn: number;
  cublas: string;
  nccl?: number;
}

export interface CudaFlags {
  cudnnBenchmark: boolean;
  deterministic: boolean;
  tf32Matmul: boolean;
  tf32Cudnn: boolean;
}

/** What build-cuda/Release/nodegrad_cuda.node exports (src/cuda/addon.cc). */
export interface CudaAddon {
  /** Whether the driver answered and found a GPU; `reason` says why not. */
  available: boolean;
  reason?: string;
  deviceCount: number;
  /** 'cuda:0'.. as devices of the shared bindings. */
  devices: Record<string, NativeDevice>;
  versions(): CudaVersions;
  deviceProperties(index: number): { name: string; computeCapability: string; totalMemory: number; multiProcessors: number };
  synchronize(index: number): void;
  memoryStats(index: number): CudaMemoryStats;
  resetPeakMemoryStats(index: number): void;
  /** Sets the flags given and returns them all. */
  setFlags(flags: Partial<CudaFlags>): CudaFlags;
  /** Entries of the benchmark mode's algorithm cache. */
  cudnnAlgorithmCacheSize(): number;
  /** The NCCL process group's binding (src/cuda/nccl.cc). */
  nccl: NcclAddon;
}

export type NcclComm = { readonly __ncclComm: unique symbol };
export type NcclWork = { readonly __ncclWork: unique symbol };
/**
 * exports.nccl: communicators over the job's GPUs; each collective runs on the communicator's own
 * stream after the compute stream's queued work and returns an event-backed work. The caller
 * keeps the tensors alive until it has waited for the work.
 */
export interface NcclAddon {
  /** 128 bytes: rank 0 makes it, every rank passes it to init. */
  uniqueId(): Uint8Array;
  /** A collective still pending `timeoutMs` after it was issued ends the process (default 30 min). */
  init(device: number, rank: number, size: number, id: Uint8Array, timeoutMs?: number): NcclComm;
  destroy(comm: NcclComm): void;
  allReduce(comm: NcclComm, t: MpiTensor, op: MpiReduceOp): NcclWork;
  /** One NCCL group call over several tensors. */
  allReduceCoalesced(comm: NcclComm, ts: MpiTensor[], op: MpiReduceOp): NcclWork;
  broadcast(comm: NcclComm, t: MpiTensor, src: number): NcclWork;
  broadcastCoalesced(comm: NcclComm, ts: MpiTensor[], src: number): NcclWork;
  /** Equal sizes: `out` holds worldSize blocks of t's size. */
  allGather(comm: NcclComm, t: MpiTensor, out: MpiTensor): NcclWork;
  reduceScatter(comm: NcclComm, input: MpiTensor, out: MpiTensor, op: MpiReduceOp): NcclWork;
  /** The device's compute stream waits for the collective; the host does not. */
  wait(w: NcclWork): void;
  done(w: NcclWork): boolean;
  /** Blocks the host until the collective is done. */
  synchronize(w: NcclWork): void;
  /** Holds the communicator's stream for `ms`, as a rank that never joins would: the watchdog's test. */
  stallForTesting(comm: NcclComm, ms: number): void;
}

/** A queued collective of the MPI process group (src/mpi/comm.h). */
export type MpiWork = { readonly __mpiWork: unique symbol };
export type MpiReduceOp = 'sum' | 'avg' | 'max' | 'min';
/** A host tensor as the MPI binding reads it: a 'cpu' Raw, or a 'ts' one whose buf is a typed array. */
export type MpiTensor = { buf: unknown; shape: readonly number[]; dtype: string };

/**
 * exports.mpi: every call runs on one communication thread, in issue order; a collective returns
 * its work at once. The caller keeps the tensors alive (and unwritten) until the work is done.
 */
export interface MpiAddon {
  /** MPI_Init_thread on the communication thread, once; later calls return the same. */
  init(): { rank: number; size: number; threadLevel: number; library: string };
  /**
   * MPI_Finalize after everything queued (waits for the other ranks); MPI cannot start again.
   * `exiting`: the process exits next; a collective still running is abandoned, not waited for.
   * `failed`: it exits with an error, without MPI_Finalize, so that mpirun ends the whole job.
   */
  finalize(exiting?: boolean, failed?: boolean): void;
  allReduce(t: MpiTensor, op: MpiReduceOp): MpiWork;
  /** One collective over tensors of one dtype, packed and unpacked on the communication thread. */
  allReduceCoalesced(ts: MpiTensor[], op: MpiReduceOp): MpiWork;
  broadcast(t: MpiTensor, src: number): MpiWork;
  /** One broadcast over tensors of one dtype, packed and unpacked on the communication thread. */
  broadcastCoalesced(ts: MpiTensor[], src: number): MpiWork;
  /** counts[r] elements from rank r into `out`, in rank order (MPI_Allgatherv). */
  allGather(t: MpiTensor, out: MpiTensor, counts: number[]): MpiWork;
  /** `input` holds worldSize blocks of out's size; rank r gets the reduction of block r. */
  reduceScatter(input: MpiTensor, out: MpiTensor, op: MpiReduceOp): MpiWork;
  barrier(): MpiWork;
  /** True when done (throwing the collective's error), false when `timeoutMs` (> 0) passed first. */
  wait(w: MpiWork, timeoutMs: number): boolean;
  done(w: MpiWork): boolean;
  whenDone(w: MpiWork): Promise<void>;
}
