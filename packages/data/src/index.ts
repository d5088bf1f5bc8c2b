/** @nodegrad/data: datasets, seeded transforms, DistributedSampler and DataLoader. */
export type { Image, Sample, Rng, Dataset, WorkerSpec } from './types.js';
export { DataError } from './types.js';
export { sampleRng, randomPermutation } from './rng.js';
export { transforms, type Transform, type TransformSpec, type TransformOption, type Size } from './transforms.js';
export { TensorDataset, type TensorDatasetOptions } from './tensor_dataset.js';
export { mnist, MnistDataset, type MnistOptions } from './mnist.js';
export { cifar10, Cifar10Dataset, CIFAR10_CLASSES, type Cifar10Options } from './cifar10.js';
export { ImageFolder, type ImageFolderOptions, type ImageFile, type SkippedFile } from './image_folder.js';
export { DistributedSampler, type DistributedSamplerOptions } from './sampler.js';
export { DataLoader, type Batch, type DataLoaderOptions } from './loader.js';
