/**
 * Builds what a run needs from its configuration: the datasets, the model (with --weights and
 * --freeze-backbone applied), the optimizer and the per-step LR schedule.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { manualSeed, type Tensor } from '@nodegrad/autograd';
import { DataLoader, DistributedSampler, ImageFolder, cifar10, mnist, type Dataset, type Rng, type Sample, type TransformSpec } from '@nodegrad/data';
import {
  Adam, AdamW, CosineAnnealingLR, LinearLR, SGD, SequentialLR, StepLR, loadSafetensors,
  resnet18, resnet34, resnet50, resnet101, resnet152, type LRScheduler, type Optimizer, type ParamGroup,
  type ResNet, type ResNetOptions, type Scheduler,
} from '@nodegrad/nn';
import { CliError } from '../args.js';
import type { TrainConfig } from './config.js';
import { listSome } from './finite.js';
import { misfit } from './weights_fit.js';

export const FACTORIES: Record<TrainConfig['model'], (o: ResNetOptions) => ResNet> = { resnet18, resnet34, resnet50, resnet101, resnet152 };

/** The first `n` samples of a dataset (MNIST does this itself, stratified). */
class Subset implements Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  constructor(private readonly ds: Dataset, n: number) {
    this.length = Math.min(n, ds.length);
    this.classes = ds.classes;
  }
  get(index: number, rng: Rng): Sample | Promise<Sample> {
    return this.ds.get(index, rng);
  }
}

const MNIST_NORM: TransformSpec = { name: 'normalize', mean: [0.1307], std: [0.3081] };
const CIFAR_NORM: TransformSpec = { name: 'normalize', mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
const IMAGENET_NORM: TransformSpec = { name: 'normalize', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The training and validation sets of `--dataset`; augmentation only on the training set. */
export async function loadDatasets(cfg: Pick<TrainConfig, 'dataset' | 'limitTrain' | 'limitVal' | 'imageSize' | 'onBadImage'>):
  Promise<{ train: Dataset; val: Dataset; name: string; warnings: string[] }> {
  const [kind, ...rest] = cfg.dataset.split(':');
  const dir = rest.join(':');
  const limit = (ds: Dataset, n: number | null) => (n === null ? ds : new Subset(ds, n));
  if (kind === 'mnist') {
    // No augmentation: the digits are centred, and a few epochs without it reach > 97% fastest.
    const opts = (n: number | null) => ({ transform: [MNIST_NORM], ...(n === null ? {} : { limit: n }) });
    return { train: mnist('train', opts(cfg.limitTrain)), val: mnist('val', opts(cfg.limitVal)), name: 'the built-in MNIST digits', warnings: [] };
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`--dataset ${cfg.dataset}: no directory '${dir}'`);
  if (kind === 'cifar10') {
    const aug: TransformSpec[] = [{ name: 'randomCrop', size: 32, padding: 4 }, { name: 'randomHorizontalFlip', p: 0.5 }, CIFAR_NORM];
    return {
      train: limit(cifar10(dir, 'train', { transform: aug }), cfg.limitTrain),
      val: limit(cifar10(dir, 'test', { transform: [CIFAR_NORM] }), cfg.limitVal),
      name: `CIFAR-10 (${dir})`,
      warnings: [],
    };
  }
  const sub = (s: string) => {
    const p = join(dir, s);
    if (!existsSync(p)) throw new CliError(`--dataset ${cfg.dataset}: expected '${p}' with one sub-folder per class`);
    return p;
  };
  const size: [number, number] = [cfg.imageSize, cfg.imageSize];
  const onBadImage = cfg.onBadImage;
  const train = await ImageFolder.load(sub('train'), { size, onBadImage, transform: [{ name: 'randomHorizontalFlip', p: 0.5 }, IMAGENET_NORM] });
  const val = await ImageFolder.load(sub('val'), { size, onBadImage, transform: [IMAGENET_NORM] });
  if (train.classes.join() !== val.classes.join()) {
    throw new CliError(`--dataset ${cfg.dataset}: train classes [${train.classes.join(', ')}] differ from val classes [${val.classes.join(', ')}]`);
  }
  return { train: limit(train, cfg.limitTrain), val: limit(val, cfg.limitVal), name: `image folder (${dir})`, warnings: scanWarnings([train, val]) };
}

/** One warning for the files the scan left out, one for the files that are not images. */
function scanWarnings(sets: ImageFolder[]): string[] {
  const skipped = sets.flatMap((s) => s.skipped);
  const ignored = sets.flatMap((s) => s.ignored);
  const total = sets.reduce((n, s) => n + s.length, 0) + skipped.length;
  return [
    ...(skipped.length ? [`warning: left out ${skipped.length} of ${total} images that cannot be used (--on-bad-image skip): ` +
      listSome(skipped.map((f) => `${f.path} ${f.problem}`), 3)] : []),
    ...(ignored.length ? [`note: ignored ${ignored.length} files that are not .png/.jpg/.jpeg: ${listSome(ignored, 3)}`] : []),
  ];
}

/** Channels and size of a dataset's images, from its first sample. */
export async function imageShape(ds: Dataset): Promise<{ channels: number; height: number; width: number }> {
  if (ds.length === 0) throw new CliError('the dataset is empty');
  const { image } = await ds.get(0, () => 0.5);
  return { channels: image.channels, height: image.height, width: image.width };
}

/** The data loaders: training shuffled per (seed, epoch) with the last partial batch dropped. */
/**
 * The loaders of this rank (one of `worldSize`): its equal share of each training batch, and its
 * shard of the validation set, of which the first `valCount` samples are its own (a shard is
 * padded with repeats to an equal length, as DistributedSampler does; the repeats are not counted).
 */
export function makeLoaders(cfg: TrainConfig, train: Dataset, val: Dataset, rank = 0, worldSize = 1):
  { trainLoader: DataLoader; valLoader: DataLoader; valCount: number } {
  if (train.length < cfg.batchSize) {
    throw new CliError(`--batch-size ${cfg.batchSize} is larger than the training set (${train.length} samples)`);
  }
  const common = { device: cfg.device, workers: cfg.workers };
  const valBatch = Math.max(cfg.batchSize, 200);
  if (worldSize === 1) {
    // dropLast: a final batch of a few samples would give BatchNorm noisy statistics.
    const trainLoader = new DataLoader(train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, dropLast: true, ...common });
    return { trainLoader, valLoader: new DataLoader(val, { batchSize: valBatch, ...common }), valCount: val.length };
  }
  const shard = (n: number, shuffle: boolean) => new DistributedSampler(n, { numReplicas: worldSize, rank, shuffle, seed: cfg.seed });
  const trainLoader = new DataLoader(train, { batchSize: cfg.batchSize / worldSize, sampler: shard(train.length, true), dropLast: true, ...common });
  const valLoader = new DataLoader(val, { batchSize: valBatch, sampler: shard(val.length, false), ...common });
  return { trainLoader, valLoader, valCount: Math.ceil((val.length - rank) / worldSize) };
}

/** Builds the model (seeded init) on the run's device; `smallStem` resolved from the image size. */
export function buildModel(cfg: Pick<TrainConfig, 'model' | 'widths' | 'smallStem' | 'seed' | 'device'>,
  shape: { channels: number; height: number; width: number }, numClasses: number): { model: ResNet; smallStem: boolean } {
  const smallStem = cfg.smallStem === 'on' || (cfg.smallStem === 'auto' && Math.max(shape.height, shape.width) <= 64);
  manualSeed(cfg.seed);
  const model = FACTORIES[cfg.model]({
    numClasses, inChannels: shape.channels, smallImageStem: smallStem, ...(cfg.widths ? { widths: cfg.widths } : {}),
  });
  return { model: model.to(cfg.device), smallStem };
}

/**
 * The architecture as checkpoint metadata (model, widths, stem), so that `nodegrad eval` rebuilds
 * the model from the file alone. The stem is read off the model (a 3x3 conv1 is the small one).
 */
export function architectureMetadata(cfg: Pick<TrainConfig, 'model' | 'widths'>, model: ResNet): Record<string, string> {
  return {
    model: cfg.model,
    widths: cfg.widths ? cfg.widths.join(',') : '',
    small_stem: model.conv1.kernelSize[0] === 3 ? 'on' : 'off',
  };
}

/** The architecture a checkpoint's metadata records, where it does (files of older runs do not). */
export function recordedArchitecture(meta: Record<string, string> | null | undefined):
  { model?: string; widths?: string; smallStem?: 'on' | 'off' } {
  if (!meta?.model) return {};
  return {
    model: meta.model,
    ...(meta.widths ? { widths: meta.widths } : {}),
    ...(meta.small_stem === 'on' || meta.small_stem === 'off' ? { smallStem: meta.small_stem } : {}),
  };
}

/**
 * Loads `--weights` into the model: strict, except that an `fc` of another class count is left
 * out (the model's fresh fc, sized to the dataset, replaces it). Returns what it replaced.
 */
export async function loadWeights(model: ResNet, file: string, device: string): Promise<string | null> {
  let dict: Record<string, Tensor>;
  try {
    dict = (await loadSafetensors(file, { device })).tensors;
  } catch (e) {
    throw new CliError(`--weights ${file}: ${(e as Error).message}`);
  }
  const own = model.stateDict();
  let replaced: string | null = null;
  const fcW = dict['fc.weight'];
  if (fcW && own['fc.weight'] && fcW.shape.join() !== own['fc.weight'].shape.join()) {
    replaced = `fc: the checkpoint's ${fcW.shape[0]}-class fc was replaced by a new Linear(${model.fc.inFeatures}, ${model.fc.outFeatures})`;
    dict = Object.fromEntries(Object.entries(dict).filter(([k]) => k !== 'fc.weight' && k !== 'fc.bias'));
  }
  const problem = misfit(own, dict, (k) => replaced !== null && k.startsWith('fc.'));
  if (problem) throw new CliError(`--weights ${file} does not fit the model: ${problem}`);
  model.loadStateDict(dict, { strict: false });
  return replaced;
}

/** The parameters to optimize: all, or with --freeze-backbone fc's alone (the rest stop requiring grad). */
export function trainableParams(model: ResNet, freezeBackbone: boolean): Tensor[] {
  if (!freezeBackbone) return model.parameters();
  for (const [name, p] of model.namedParameters()) if (!name.startsWith('fc.')) p.requiresGrad = false;
  return model.fc.parameters();
}

export function makeOptimizer(cfg: TrainConfig, params: Tensor[]): Optimizer<ParamGroup> {
  const { lr, weightDecay } = cfg;
  if (cfg.optimizer === 'sgd') return new SGD(params, { lr, momentum: cfg.momentum, nesterov: cfg.momentum > 0, weightDecay });
  if (cfg.optimizer === 'adam') return new Adam(params, { lr, weightDecay });
  return new AdamW(params, { lr, weightDecay });
}

/**
 * The LR schedule, stepped once per optimizer step: a linear warm-up from lr/10 over
 * `warmupEpochs`, then cosine annealing to 0 at the last step, or step decay every `stepSize`
 * epochs, or a constant lr. Null when the lr never changes.
 */
export function makeScheduler(cfg: TrainConfig, opt: Optimizer<ParamGroup>, stepsPerEpoch: number): Scheduler | null {
  const total = cfg.epochs * stepsPerEpoch;
  const warmup = Math.min(Math.round(cfg.warmupEpochs * stepsPerEpoch), total - 1);
  let main: LRScheduler | null = null;
  if (cfg.schedule === 'cosine') main = new CosineAnnealingLR(opt, total - warmup);
  else if (cfg.schedule === 'step') main = new StepLR(opt, cfg.stepSize * stepsPerEpoch, { gamma: cfg.gamma });
  if (warmup <= 0) return main;
  const warm = new LinearLR(opt, { startFactor: 0.1, endFactor: 1, totalIters: warmup });
  if (!main) return warm;
  return new SequentialLR(opt, [warm, main], [warmup]);
}
