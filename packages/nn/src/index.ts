/** @nodegrad/nn: modules, layers, the ResNet family, losses, optimizers, schedulers, checkpoints. */
export { Module, type ForwardHook, type ForwardPreHook } from './module.js';
export {
  Conv2d, BatchNorm2d, BatchNormBase, ReLU, Sigmoid, Tanh, SiLU, GELU, ELU, LeakyReLU, Hardtanh, Softplus, Softmax,
  LogSoftmax, Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, Identity, Flatten, Sequential, ModuleList, ModuleDict,
  type Conv2dOptions, type BatchNormOptions, type NormLayer, type MaxPool2dOptions, type AvgPool2dOptions,
  type LinearOptions,
} from './layers/index.js';
export {
  calculateGain, calculateFanInAndFanOut, uniform_, normal_, constant_, zeros_, ones_,
  kaimingNormal_, kaimingUniform_, xavierUniform_, xavierNormal_, truncNormal_, eye_, dirac_, orthogonal_, skipInit,
  type Nonlinearity, type FanMode, type KaimingOptions,
} from './init.js';
export { BasicBlock, Bottleneck, conv1x1, conv3x3, type BlockOptions, type BlockType } from './resnet/blocks.js';
export {
  ResNet, RESNET_ARCHS, buildResNet, resnet18, resnet34, resnet50, resnet101, resnet152,
  resnext50_32x4d, resnext101_32x8d, wide_resnet50_2, wide_resnet101_2, type ResNetOptions, type ResNetArch,
} from './resnet/resnet.js';
export {
  PreActResNet, PreActBasicBlock, PreActBottleneck, PREACT_ARCHS, preactResnet18, preactResnet34, preactResnet50,
  preactResnet101, preactResnet152, type PreActResNetOptions, type PreActBlockType,
} from './resnet/preact.js';
export { fuseConvBn, fuseForInference } from './resnet/fuse.js';
export { fuseForTraining, FusedTrainingBlock, FusedTrainingResNet } from './resnet/train_fuse.js';
export { FusedBlock, FusedConv2d, FusedResNet, type ConvGeometry, type FusedResNetParts } from './resnet/fused_layers.js';
export {
  CrossEntropyLoss, NLLLoss, MSELoss, type CrossEntropyLossOptions, type NLLLossOptions,
} from './loss.js';
export {
  saveSafetensors, loadSafetensors, serializeSafetensors, parseSafetensors, SafetensorsError,
  type SafetensorsContents, type LoadOptions, type SaveOptions, type StoreAs, type StoredDType,
} from './safetensors.js';
export {
  fusedLists, Optimizer, type ParamGroup, type ParamGroupSpec, type Params, type ParamState, type OptimizerStateDict,
} from './optim/optimizer.js';
export { SGD, type SGDOptions, type SGDGroup } from './optim/sgd.js';
export { Adam, AdamW, type AdamOptions, type AdamGroup } from './optim/adam.js';
export {
  LRScheduler, StepLR, MultiStepLR, CosineAnnealingLR, LinearLR, type Scheduler, type SchedulerOptions,
} from './optim/lr_scheduler.js';
export { SequentialLR } from './optim/sequential_lr.js';
export { clipGradNorm_, clipGradValue_ } from './optim/clip.js';
export { GradScaler, type GradScalerOptions, type GradScalerStateDict } from './optim/grad_scaler.js';
// Mixed precision: autocast lives beside the ops it casts, in @nodegrad/autograd; nn offers it with the scaler.
export { autocast, isAutocastEnabled, type AutocastOptions } from '@nodegrad/autograd';
