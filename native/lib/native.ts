/**
 * The whole native surface in one place: what build/Release/nodegrad.node exports. Tensors cross
 * as opaque handles inside Raw objects ({ buf, shape, dtype }); data is copied only by fromArray
 * (upload) and toArray (download).
 */
import type { DType, Raw, Shape, TypedArray } from '@nodegrad/autograd';

export interface FeatureStatus {
  enabled: boolean;
  /** Why the feature is not built in. */
  reason?: string;
}

export interface NativeAddon {
  // Memory (bindings/buffer.cc)
  fromArray(data: TypedArray, shape: Shape, dtype: DType): Raw;
  toArray(x: Raw): TypedArray;
  copyInto(dst: Raw, src: Raw): void;
  /** Frees a storage (a Raw's `buf` handle) now. */
  free(buf: unknown): void;
  memoryStats(): { liveHandles: number; liveBytes: number; poolCachedBytes: number };
  trimPool(): void;
  /** Debug: the layout the buffer holds ('nchw', or oneDNN's blocked 'nChw8c' / 'nChw16c'); reads are always NCHW. */
  layoutOf(x: Raw): 'nchw' | 'nChw8c' | 'nChw16c';
  /** The optional parts compiled in (CMakeLists.txt): oneDNN only, for now. */
  buildInfo: { onednn: FeatureStatus };

  // Elementwise (bindings/elementwise.cc)
  unary(kernel: string, x: Raw): Raw;
  binary(kernel: string, a: Raw, b: Raw): Raw;
  where(cond: Raw, a: Raw, b: Raw): Raw;
  clamp(x: Raw, min: number, max: number): Raw;
  cast(x: Raw, dtype: DType): Raw;

  // Reductions, movement, softmax (bindings/reduce.cc, movement.cc, softmax.cc)
  reduce(kernel: 'Sum' | 'Max' | 'Min', x: Raw, axes: readonly number[]): Raw;
  argReduce(kernel: 'ArgMax' | 'ArgMin', x: Raw, axis: number): Raw;
  transpose(x: Raw, perm: readonly number[]): Raw;
  broadcastTo(x: Raw, shape: Shape): Raw;
  slice(x: Raw, begin: readonly number[], size: readonly number[], step: readonly number[]): Raw;
  pad(x: Raw, pads: readonly (readonly [number, number])[], value: number): Raw;
  concat(xs: readonly Raw[], axis: number): Raw;
  oneHot(indices: Raw, numClasses: number, dtype: DType, ignoreIndex?: number): Raw;

  // Creation on the device (bindings/creation.cc).
  copy(x: Raw): Raw;
  fill(shape: Shape, value: number, dtype: DType): Raw;
  random(kind: 'uniform' | 'normal' | 'bernoulli', shape: Shape, dtype: DType, seed: number, offset: number,
    p: number, value: number): Raw;
  softmax(x: Raw, axis: number, log: boolean): Raw;

  // Matmul and convolution (bindings/matmul.cc, conv.cc), on oneDNN; built without it they throw.
  batchMatMul(a: Raw, b: Raw, transA: boolean, transB: boolean): Raw;
  conv2d(x: Raw, w: Raw, p: import('@nodegrad/autograd').Conv2DParams): Raw;
  conv2dFused(x: Raw, w: Raw, bias: Raw | null, residual: Raw | null, p: import('@nodegrad/autograd').Conv2DFusedParams): Raw;
  conv2dBackpropInput(dy: Raw, w: Raw, xShape: Shape, p: import('@nodegrad/autograd').Conv2DParams): Raw;
  conv2dBackpropFilter(x: Raw, dy: Raw, wShape: Shape, p: import('@nodegrad/autograd').Conv2DParams): Raw;
  /** Fixes the kernels' thread count; throws once a oneDNN primitive exists. Unset: OMP_NUM_THREADS. */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Cached oneDNN primitives now, and how many were ever made (a repeated shape adds none). */
  primitiveCacheStats(): { entries: number; created: number };

  // Pooling and batch norm (bindings/pool.cc, norm.cc); the same signatures as the Kernels entries.
  maxPool2d(x: Raw, p: import('@nodegrad/autograd').Pool2DParams): { y: Raw; indices: Raw };
  maxPool2dBackward(dy: Raw, indices: Raw, xShape: Shape): Raw;
  maxPool2dGather(x: Raw, indices: Raw): Raw;
  avgPool2d(x: Raw, p: import('@nodegrad/autograd').Pool2DParams): Raw;
  avgPool2dBackward(dy: Raw, xShape: Shape, p: import('@nodegrad/autograd').Pool2DParams): Raw;
  adaptiveAvgPool2d(x: Raw, outSize: [number, number]): Raw;
  adaptiveAvgPool2dBackward(dy: Raw, xShape: Shape): Raw;
  batchNormStats(x: Raw, eps: number): { mean: Raw; invstd: Raw };
  batchNormElemt(x: Raw, weight: Raw | null, bias: Raw | null, mean: Raw, invstd: Raw): Raw;
  batchNormInvstd(runVar: Raw, eps: number): Raw;
  batchNormBackwardReduce(dy: Raw, x: Raw, mean: Raw, invstd: Raw): { sumDy: Raw; sumDyXmu: Raw; dweight: Raw; dbias: Raw };
  batchNormBackwardElemt(dy: Raw, x: Raw, mean: Raw, invstd: Raw, weight: Raw | null, sumDy: Raw, sumDyXmu: Raw,
    count: number): Raw;
  batchNormUpdateRunning(runMean: Raw, runVar: Raw, counter: Raw | null, mean: Raw, invstd: Raw,
    p: import('@nodegrad/autograd').BatchNormUpdateParams): void;

  // Fused optimizer updates (bindings/optim.cc), in place on param and the state buffers.
  sgdStep(param: Raw, grad: Raw, momentumBuf: Raw | null, o: import('@nodegrad/autograd').SGDStepParams): void;
  adamStep(param: Raw, grad: Raw, expAvg: Raw, expAvgSq: Raw, maxExpAvgSq: Raw | null,
    o: import('@nodegrad/autograd').AdamStepParams): void;
}
