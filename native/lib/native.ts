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
  free(x: Raw): void;
  memoryStats(): { liveHandles: number; liveBytes: number; poolCachedBytes: number };
  trimPool(): void;
  buildInfo: { onednn: FeatureStatus; cuda: FeatureStatus; nccl: FeatureStatus; mpi: FeatureStatus };

  // Elementwise (bindings/elementwise.cc)
  unary(kernel: string, x: Raw): Raw;
  binary(kernel: string, a: Raw, b: Raw): Raw;
  where(cond: Raw, a: Raw, b: Raw): Raw;
  clamp(x: Raw, min: number, max: number): Raw;
  cast(x: Raw, dtype: DType): Raw;

  // Reductions, movement, softmax (bindings/reduce.cc, movement.cc, softmax.cc)

  // Matmul and convolution (bindings/matmul.cc, conv.cc)

  // Pooling and batch norm (bindings/pool.cc, norm.cc)
}
