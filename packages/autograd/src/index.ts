/** @nodegrad/autograd: tensors, the tape, ops with their gradients, backends. */
import { registerBackend } from './registry.js';
import { tsBackend } from './backends/ts/index.js';

registerBackend(tsBackend);

export { Tensor, syncView, type Hook, type Storage } from './tensor.js';
export { formatTensor } from './tensor_str.js';
export type { DType, FloatDType, HalfDType, IntDType, TypedArray } from './dtype.js';
export {
  bytesPerElement, DTYPES, isFloat, isHalf, opmathType, promoteFloat, roundBFloat16, roundFloat16, floatBitsToHalf, floatBitsToBFloat16, halfToFloatBits,
} from './dtype.js';
export { fmt, numel, broadcastShapes, type Shape } from './shape.js';
export { registerBackend, reportUnavailable, getBackend, backends, type BackendStatus } from './registry.js';
export {
  supports, KERNEL_FAMILY,
  type Backend, type Kernels, type KernelName, type KernelFamily, type DTypeSupport, type Raw,
  type ActivationKind,
  type Conv2DParams, type Conv2DFusedParams, type Pool2DParams, type BatchNormUpdateParams,
  type SGDStepParams, type AdamStepParams,
} from './backend.js';
export { tsBackend } from './backends/ts/index.js';
export { autocast, autocastInputs, autocastDType, isAutocastEnabled, type AutocastDevice, type AutocastOptions, type CastPolicy } from './autocast.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled, detectAnomaly } from './grad_mode.js';
export { defineOp, defineFunction, forwardAdCoverage, CtxBase, type Ctx, type OpDef } from './function.js';
export { backward, grad, releaseGrad, type BackwardOptions, type GradOptions } from './engine.js';
export { dual, unpackDual } from './forward_ad.js';
export { tidy, tidyKeepingSaved, pipeKeepingSaved, keep, pinBuffer, unpinBuffer } from './scope.js';
export { Node } from './tape.js';
export { manualSeed, getRngState, setRngState, hostUniform, hostNormal } from './random.js';
export * from './ops/creation.js';
export * from './ops/autograd_api.js';
export * from './ops/arith.js';
export * from './ops/unary.js';
export * from './ops/activation.js';
export * from './ops/compare.js';
export * from './ops/reduce.js';
export * from './ops/reduce_more.js';
export * from './ops/indexing.js';
export * from './ops/contract.js';
export * from './ops/shape.js';
export * from './ops/join.js';
export * from './ops/matmul.js';
export * from './ops/inplace.js';
export * from './ops/conv.js';
export * from './ops/pool.js';
export * from './ops/norm.js';
export {
  batchNormStats, batchNormElemt, batchNormBackwardReduce, batchNormBackwardElemt, batchNormGatherStats,
  batchNormUpdateRunning_, type BatchNormUpdateOptions,
} from './ops/norm_parts.js';
export * from './ops/softmax.js';
export * from './ops/loss.js';
export * from './ops/dropout.js';
export * from './ops/optim.js';
export type { Size2, Reduction } from './ops/nn_util.js';
export { cachedScalarCount, checkOptionNames, type TensorLike } from './ops/util.js';
