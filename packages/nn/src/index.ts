/** @nodegrad/nn: modules, layers, the ResNet family, losses, optimizers, schedulers, checkpoints. */
export { Module, type ForwardHook, type ForwardPreHook } from './module.js';
