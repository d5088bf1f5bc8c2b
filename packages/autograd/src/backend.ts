/**
 * The Backend interface: a typed table of kernels keyed by kernel name (PascalCase), so the
 * compiler tells a backend what it lacks. Kernels never see the tape: they take raw tensors
 * (a backend buffer, a contiguous row-major shape, a dtype) and return new raw tensors.
 */
import type { DType, TypedArray } from './dtype.js';
import type { Shape } from './shape.js';

/** A contiguous, row-major tensor as a backend sees it. `buf` is the backend's own storage. */
export interface Raw {
  readonly buf: unknown;
  readonly shape: Shape;
  readonly dtype: DType;
}

export type UnaryKernel = (x: Raw) => Raw;
/**
 * Broadcasting, PyTorch rules; operands of one dtype. Add, Sub, Mul and Div also take a half tensor
 * beside a float32 0-d one (either side): computed with the scalar unrounded, the result in the
 * half type, rounded once.
 */
export type BinaryKernel = (a: Raw, b: Raw) => Raw;

export interface Conv2DParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Conv2DFused's parameters: the convolution's, and whether max(0, ·) ends the epilogue. */
export interface Conv2DFusedParams extends Conv2DParams {
  relu: boolean;
}

export interface Pool2DParams {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  ceilMode: boolean;
  /** avgPool2d only: count zero padding in the divisor. */
  countIncludePad: boolean;
}

/** BatchNormUpdateRunning's scalars. */
export interface BatchNormUpdateParams {
  /** The eps invstd was computed with. */
  eps: number;
  /** Elements per channel behind the statistics, over every rank (> 1). */
  count: number;
  /** The batch's weight: momentum, or 1 / batches for a cumulative average. */
  factor: number;
}

/** SGDStep's hyperparameters (torch.optim.SGD's); `firstStep` starts the momentum buffer at g. */
export interface SGDStepParams {
  lr: number; momentum: number; dampening: number; weightDecay: number;
  nesterov: boolean; maximize: boolean; firstStep: boolean;
}

/** AdamStep's hyperparameters (torch.optim.Adam's and AdamW's); `step` is t, counted from 1. */
export interface AdamStepParams {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number;
  /** AdamW: p *= 1 - lr wd before the update, instead of g += wd p. */
  decoupled: boolean;
  amsgrad: boolean; maximize: boolean; step: number;
}

export interface Kernels {
  // Elementwise, same dtype out as in.
  Neg: UnaryKernel; Exp: UnaryKernel; Log: UnaryKernel; Sqrt: UnaryKernel; Rsqrt: UnaryKernel;
  Abs: UnaryKernel; Sign: UnaryKernel; Relu: UnaryKernel; Sigmoid: UnaryKernel; Tanh: UnaryKernel;
  Log1p: UnaryKernel; Expm1: UnaryKernel; Sin: UnaryKernel; Cos: UnaryKernel; Erf: UnaryKernel;
  Add: BinaryKernel; Sub: BinaryKernel; Mul: BinaryKernel; Div: BinaryKernel; Pow: BinaryKernel;
  Maximum: BinaryKernel; Minimum: BinaryKernel;
  /** Comparisons give 1 or 0 in the inputs' dtype (there is no bool dtype). */
  Equal: BinaryKernel; NotEqual: BinaryKernel; Less: BinaryKernel; LessEqual: BinaryKernel;
  Greater: BinaryKernel; GreaterEqual: BinaryKernel;
  /** relu's backward, PyTorch's threshold_backward at 0: (dy, y) -> y <= 0 ? 0 : dy, y relu's output. */
  ReluBackward: BinaryKernel;
  /** Broadcasting select: cond != 0 ? a : b. */
  Where: (cond: Raw, a: Raw, b: Raw) => Raw;
  Clamp: (x: Raw, min: number, max: number) => Raw;
  /** PyTorch's activations; a and b are softplus's beta and threshold, elu's alpha, leakyRelu's slope, hardtanh's bounds. */
  Activation: (x: Raw, kind: ActivationKind, a: number, b: number) => Raw;
  /** Casts between dtypes (float <-> float, int -> float, float -> int truncates). */
  Cast: (x: Raw, dtype: DType) => Raw;

  // Reductions over sorted, distinct axes; reduced axes are kept with size 1.
  Sum: (x: Raw, axes: readonly number[]) => Raw;
  Max: (x: Raw, axes: readonly number[]) => Raw;
  Min: (x: Raw, axes: readonly number[]) => Raw;
  /** Index of the first maximum along one axis (kept with size 1), as int64. */
  ArgMax: (x: Raw, axis: number) => Raw;
  ArgMin: (x: Raw, axis: number) => Raw;
  /** Running sums along axis (from its end when reverse: cumsum's gradient), accumulated in float64. */
  CumSum: (x: Raw, axis: number, reverse: boolean) => Raw;
  /** log(sum(exp(x))) over axes (kept with size 1), max-shifted (0 where the max is infinite); in float64. */
  LogSumExp: (x: Raw, axes: readonly number[]) => Raw;
  /** The vector norm over axes (kept with size 1): ord 2, 1, Infinity, -Infinity or any p > 0; in float64. */
  Norm: (x: Raw, ord: number, axes: readonly number[]) => Raw;

  // Data movement.
  Transpose: (x: Raw, perm: readonly number[]) => Raw;
  BroadcastTo: (x: Raw, shape: Shape) => Raw;
  /** Slice with per-dim start, size and positive step. */
  Slice: (x: Raw, begin: readonly number[], size: readonly number[], step: readonly number[]) => Raw;
  /** Constant padding: pads[i] = [before, after] for dim i (all dims listed). */
  Pad: (x: Raw, pads: readonly (readonly [number, number])[], value: number) => Raw;
  Concat: (xs: readonly Raw[], axis: number) => Raw;
  /**
   * indices (int32/int64, any shape) -> float one-hot with a trailing dim of `numClasses`. An
   * index equal to `ignoreIndex` gives a zero row; any other index outside [0, numClasses) is an
   * error naming it (a host backend throws; an asynchronous device raises it at its next read or
   * sync), so targets are checked where they live, without a read-back.
   */
  OneHot: (indices: Raw, numClasses: number, dtype: DType, ignoreIndex?: number) => Raw;

  // Creation on the device: nothing crosses from the host but the attributes.
  /** A device-side copy of x (same shape and dtype, storage of its own). */
  Copy: (x: Raw) => Raw;
  /** A tensor of `shape` with every element `value` (rounded to dtype). */
  Fill: (shape: Shape, value: number, dtype: DType) => Raw;
  /**
   * Counter-based random draws (philox.ts): element i depends only on (seed, offset + i), so
   * every backend draws the same numbers. Uniform in [0, 1): 24 random bits for float32, 53 for
   * float64, 8 for bfloat16 and 11 for float16 (exact in the type). Normal: Box-Muller in float64,
   * rounded to dtype (a half type through float32).
   */
  RandomUniform: (shape: Shape, dtype: DType, seed: number, offset: number) => Raw;
  RandomNormal: (shape: Shape, dtype: DType, seed: number, offset: number) => Raw;
  /** `value` with probability p (a 53-bit uniform below p), else 0: dropout's scaled keep mask. */
  Bernoulli: (shape: Shape, p: number, value: number, dtype: DType, seed: number, offset: number) => Raw;

  // Linear algebra: [B, M, K] x [B, K, N] -> [B, M, N], with optional transposes of the last two dims.
  BatchMatMul: (a: Raw, b: Raw, transA: boolean, transB: boolean) => Raw;

  // Convolution, NCHW input and OIHW weight (I = C / groups). Each direction is a kernel.
  Conv2D: (x: Raw, w: Raw, p: Conv2DParams) => Raw;
  Conv2DBackpropInput: (dy: Raw, w: Raw, xShape: Shape, p: Conv2DParams) => Raw;
  /**
   * dtype: the result's, x's by default, or float32 for a half x: an autocast weight's gradient in
   * its own type without a Cast of its own ('ts' and most 'cpu' paths give the float32 sums
   * unrounded; oneDNN 2.6's bfloat16 primitive rounds them to bfloat16 first, then widens).
   */
  Conv2DBackpropFilter: (x: Raw, dy: Raw, wShape: Shape, p: Conv2DParams, dtype?: DType) => Raw;
  /**
   * Inference only: relu?(Conv2D(x, w) + bias + residual) in one pass; bias [O] and residual (the
   * output's shape) may be null. Optional: without it conv2dFused composes Conv2D, Add and Relu.
   */
  Conv2DFused?: (x: Raw, w: Raw, bias: Raw | null, residual: Raw | null, p: Conv2DFusedParams) => Raw;

  // Pooling, NCHW. Max pooling's training path is MaxPool2D and MaxPool2DBackward, which a
  // library such as cuDNN implements as it is; the index kernels serve maxPool2dWithIndices and
  // higher-order gradients, with PyTorch's flat plane indices.
  MaxPool2D: (x: Raw, p: Pool2DParams) => Raw;
  /**
   * max pooling's gradient from what cuDNN's pooling backward takes (dy, x, y): each dy goes to
   * the first maximum of its window in x in scan order (a NaN counts as the maximum), as PyTorch.
   * y is the forward's output, unchanged since; a backend may ignore it.
   */
  MaxPool2DBackward: (dy: Raw, x: Raw, y: Raw, p: Pool2DParams) => Raw;
  /** The maxima and, as PyTorch's return_indices, each one's flat index into its input plane (H*W). */
  MaxPool2DWithIndices: (x: Raw, p: Pool2DParams) => { y: Raw; indices: Raw };
  /** Scatter-adds dy into a zero tensor of xShape at the given plane indices. */
  MaxPool2DScatter: (dy: Raw, indices: Raw, xShape: Shape) => Raw;
  /** The adjoint of MaxPool2DScatter: gathers x at the given plane indices. */
  MaxPool2DGather: (x: Raw, indices: Raw) => Raw;
  AvgPool2D: (x: Raw, p: Pool2DParams) => Raw;
  AvgPool2DBackward: (dy: Raw, xShape: Shape, p: Pool2DParams) => Raw;
  AdaptiveAvgPool2D: (x: Raw, outSize: [number, number]) => Raw;
  AdaptiveAvgPool2DBackward: (dy: Raw, xShape: Shape) => Raw;

  // Batch norm over dim 1 of an [N, C, *] tensor, split as PyTorch's CUDA path (batch_norm_stats,
  // batch_norm_elemt, batch_norm_backward_reduce, batch_norm_backward_elemt, and the running update
  // of batch_norm_gather_stats_with_counts) so that SyncBatchNorm can put its collectives between
  // the parts: an all-gather of (mean, invstd, count) after Stats, an all-reduce of (sumDy,
  // sumDyXmu) after BackwardReduce. Per-channel vectors are [C] in x's dtype; weight and bias may
  // be null (1 and 0). All six are required; there is no whole-forward or whole-backward fusion:
  // on 'cpu' the split reads x and dy as often as the fused kernels it replaced did and measured
  // no slower, and a backend's own layout (the 'cpu' blocked formats) passes through x, y, dy and
  // dx of every part. What is fused is what follows a batch norm in a ResNet (cuDNN's
  // BN_ADD_ACTIVATION): Elemt's optional residual and ReLU, and the backward parts' optional mask
  // of that ReLU, recomputed from x (relu with the forward's weight and bias) so that neither the
  // ReLU's output nor its gradient takes a pass of its own.
  /** Per channel, over every dim but 1: the mean and invstd = 1/sqrt(biased var + eps). */
  BatchNormStats: (x: Raw, eps: number) => { mean: Raw; invstd: Raw };
  /**
   * y = (x - mean) * invstd * weight + bias, with batch or running statistics; then, when given,
   * + residual (x's shape and dtype) and relu (v < 0 ? 0 : v, as the Relu kernel).
   */
  BatchNormElemt: (x: Raw, weight: Raw | null, bias: Raw | null, mean: Raw, invstd: Raw, residual?: Raw | null,
    relu?: boolean) => Raw;
  /** 1/sqrt(var + eps) per channel: eval's invstd from the running variance. */
  BatchNormInvstd: (runVar: Raw, eps: number) => Raw;
  /**
   * sumDy = sum dy, sumDyXmu = sum dy * (x - mean) per channel; dweight = sumDyXmu * invstd, dbias = sumDy.
   * With relu, dy is the gradient of relu(bn(x)) (BatchNormElemt with that weight and bias and
   * relu, no residual): it counts only where the forward's value before the ReLU was not <= 0,
   * recomputed from x as Elemt computed it, which is where relu's backward from its output passes.
   */
  BatchNormBackwardReduce: (dy: Raw, x: Raw, mean: Raw, invstd: Raw, relu?: boolean, weight?: Raw | null,
    bias?: Raw | null) => { sumDy: Raw; sumDyXmu: Raw; dweight: Raw; dbias: Raw };
  /**
   * The training-mode dx from the (all-reduced) sums, with count the elements per channel over
   * every rank: dx = (dy - sumDy / count - (x - mean) * invstd^2 * sumDyXmu / count) * invstd * weight;
   * with relu, dy masked by the forward's ReLU as in BatchNormBackwardReduce (bias: the forward's).
   */
  BatchNormBackwardElemt: (dy: Raw, x: Raw, mean: Raw, invstd: Raw, weight: Raw | null, sumDy: Raw, sumDyXmu: Raw,
    count: number, relu?: boolean, bias?: Raw | null) => Raw;
  /**
   * In place, one kernel: running = (1 - factor) running + factor batch, the batch variance being
   * the unbiased 1/invstd^2 - eps scaled by count / (count - 1); a one-element int64 counter
   * (num_batches_tracked), when given, is incremented on the device, so no host read or upload.
   */
  BatchNormUpdateRunning: (runMean: Raw, runVar: Raw, counter: Raw | null, mean: Raw, invstd: Raw,
    p: BatchNormUpdateParams) => void;

  // Softmax family along one axis.
  Softmax: (x: Raw, axis: number) => Raw;
  LogSoftmax: (x: Raw, axis: number) => Raw;

  // Fused optimizer updates over lists of parameters (torch's _fused_sgd_ / _fused_adam_), in
  // place on each param and its state buffers; entry i of every list has params[i]'s shape, and
  // all are of one dtype. Computed per element in float64 with PyTorch 1.13's operation order.
  /** g = ±grad + wd p; buf = firstStep ? g : momentum buf + (1 - dampening) g; p -= lr (nesterov ? g + momentum buf : buf). */
  SGDStep: (params: readonly Raw[], grads: readonly Raw[], momentumBufs: readonly Raw[] | null, o: SGDStepParams) => void;
  /** m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g; p -= lr/(1-b1^t) m / (sqrt(max? v) / sqrt(1-b2^t) + eps). */
  AdamStep: (params: readonly Raw[], grads: readonly Raw[], expAvgs: readonly Raw[], expAvgSqs: readonly Raw[],
    maxExpAvgSqs: readonly Raw[] | null, o: AdamStepParams) => void;
  /**
   * GradScaler's unscale (torch's _amp_foreach_non_finite_check_and_unscale_), in place over a list
   * of one dtype: foundInf (float32, one element) is set to 1 where an element is inf or NaN before
   * scaling, and never cleared; then g = g * invScale, computed in float32 (float64 for float64),
   * with invScale as float32. A GPU runs the whole list in few launches, not a few per gradient.
   */
  NonFiniteCheckAndUnscale: (grads: readonly Raw[], foundInf: Raw, invScale: number) => void;
}

export type KernelName = keyof Kernels;

/** The Activation kernel's functions (gelu is the exact one, geluTanh its tanh approximation). */
export type ActivationKind = 'softplus' | 'gelu' | 'geluTanh' | 'silu' | 'elu' | 'leakyRelu' | 'hardtanh';

/** Kernels a backend may leave out whatever it declares: callers test for them (a fused path). */
export const OPTIONAL_KERNELS: ReadonlySet<KernelName> = new Set<KernelName>(['Conv2DFused']);

/** Kernel families, the unit in which a backend declares the dtypes it computes in. */
export type KernelFamily = 'elementwise' | 'cast' | 'reduce' | 'movement' | 'creation' | 'random' | 'matmul' | 'conv' |
  'pool' | 'norm' | 'softmax' | 'optim';

/** Which family each kernel belongs to. */
export const KERNEL_FAMILY: Record<KernelName, KernelFamily> = {
  Neg: 'elementwise', Exp: 'elementwise', Log: 'elementwise', Sqrt: 'elementwise', Rsqrt: 'elementwise',
  Abs: 'elementwise', Sign: 'elementwise', Relu: 'elementwise', Sigmoid: 'elementwise', Tanh: 'elementwise',
  Log1p: 'elementwise', Expm1: 'elementwise', Sin: 'elementwise', Cos: 'elementwise', Erf: 'elementwise',
  Add: 'elementwise', Sub: 'elementwise', Mul: 'elementwise', Div: 'elementwise', Pow: 'elementwise',
  Maximum: 'elementwise', Minimum: 'elementwise', Equal: 'elementwise', NotEqual: 'elementwise',
  Less: 'elementwise', LessEqual: 'elementwise', Greater: 'elementwise', GreaterEqual: 'elementwise',
  ReluBackward: 'elementwise', Where: 'elementwise', Clamp: 'elementwise', Activation: 'elementwise', Cast: 'cast',
  Sum: 'reduce', Max: 'reduce', Min: 'reduce', ArgMax: 'reduce', ArgMin: 'reduce', CumSum: 'reduce', LogSumExp: 'reduce', Norm: 'reduce',
  Transpose: 'movement', BroadcastTo: 'movement', Slice: 'movement', Pad: 'movement', Concat: 'movement',
  OneHot: 'movement',
  Copy: 'creation', Fill: 'creation',
  RandomUniform: 'random', RandomNormal: 'random', Bernoulli: 'random',
  BatchMatMul: 'matmul',
  Conv2D: 'conv', Conv2DBackpropInput: 'conv', Conv2DBackpropFilter: 'conv', Conv2DFused: 'conv',
  MaxPool2D: 'pool', MaxPool2DBackward: 'pool', MaxPool2DWithIndices: 'pool', MaxPool2DScatter: 'pool',
  MaxPool2DGather: 'pool', AvgPool2D: 'pool',
  AvgPool2DBackward: 'pool', AdaptiveAvgPool2D: 'pool', AdaptiveAvgPool2DBackward: 'pool',
  BatchNormStats: 'norm', BatchNormElemt: 'norm', BatchNormInvstd: 'norm', BatchNormBackwardReduce: 'norm',
  BatchNormBackwardElemt: 'norm', BatchNormUpdateRunning: 'norm',
  Softmax: 'softmax', LogSoftmax: 'softmax',
  SGDStep: 'optim', AdamStep: 'optim', NonFiniteCheckAndUnscale: 'optim',
};

/**
 * The dtypes each kernel family computes in. A kernel called with another dtype throws naming
 * kernel, backend and dtype (the registry's wrapper checks the first tensor argument, or the dtype
 * argument of creation and random kernels); test tables skip such combinations by this
 * declaration, with the reason in the test's name.
 */
export type DTypeSupport = Record<KernelFamily, readonly DType[]>;

/**
 * A device's memory and kernels. The 'ts' backend is the reference every other one is checked
 * against. Kernels may run asynchronously on a device stream: only the reads below wait.
 */
export interface Backend {
  readonly name: string;
  /**
   * Wraps a copy of host data as a backend tensor: the only upload. `data` must be the array
   * type of dtype (`allocArray(dtype)`'s: Float64Array for int64), or it is an error.
   */
  fromArray(data: TypedArray, shape: Shape, dtype: DType): Raw;
  /** Copies a tensor to host memory once the work that writes it is done (Float64Array for int64). */
  readSync(x: Raw): TypedArray;
  /** The same read, resolved after the device's stream reaches it. */
  read(x: Raw): Promise<TypedArray>;
  /** Blocks until every kernel queued so far has finished. */
  sync(): void;
  /** Writes src's elements into dst's storage (same size and dtype): the basis of in-place ops. */
  copyInto(dst: Raw, src: Raw): void;
  /** Releases a storage (a Raw's `buf`) now; optional for garbage-collected backends. */
  free?(buf: unknown): void;
  /**
   * For a backend whose storages a tidy scope frees: hands a storage no scope holds any longer (made
   * outside every tidy, kept, or returned from the outermost) to the garbage collector, which frees
   * it once nothing references it. Until then only `free` releases it, so storages that tidy frees
   * never cost the collector anything (issue 17).
   */
  collectable?(buf: unknown): void;
  readonly dtypes: DTypeSupport;
  readonly kernels: Kernels;
}

/** Whether `backend` declares `kernel` for `dtype` (and implements it, for optional kernels). */
export function supports(backend: Backend, kernel: KernelName, dtype: DType): boolean {
  return !!backend.kernels[kernel] && backend.dtypes[KERNEL_FAMILY[kernel]].includes(dtype);
}
