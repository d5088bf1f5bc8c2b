/** The layers, gathered for the modules built on them (ResNet) and for the package index. */
export { Conv2d, type Conv2dOptions } from './conv.js';
export { BatchNorm2d, BatchNormBase, type BatchNormOptions, type NormLayer } from './norm.js';
export {
  ReLU, Sigmoid, Tanh, SiLU, GELU, ELU, LeakyReLU, Hardtanh, Softplus, Softmax, LogSoftmax, Dropout,
} from './activation.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, type MaxPool2dOptions, type AvgPool2dOptions } from './pooling.js';
export { Linear, Identity, Flatten, type LinearOptions } from './linear.js';
export { Sequential, ModuleList, ModuleDict } from './container.js';
