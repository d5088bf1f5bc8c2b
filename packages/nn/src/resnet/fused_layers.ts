/**
 * The inference layers fuseForInference builds (fuse.ts): a convolution with BatchNorm folded into
 * its weight and bias whose ReLU, and a residual block's identity, run as the convolution's
 * epilogue, i.e. one conv2dFused call (oneDNN post-ops on 'cpu', the composite elsewhere), as
 * torch.ao's fused ConvReLU2d and ConvAddReLU2d. They refuse training mode: BatchNorm's batch
 * statistics are gone, and their weights are a snapshot of the model they were made from.
 */
import { conv2dFused, flatten, pipeKeepingSaved, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { Sequential, type Conv2d } from '../layers/index.js';
import { py } from '../layers/repr.js';
import { freeingUnsaved } from './blocks.js';

const INFERENCE_ONLY = 'is for inference only: fuseForInference made it, with BatchNorm folded into the convolutions; ' +
  'train the original model and call fuseForInference again';

/** The geometry of a Conv2d, which a fused convolution keeps. */
export type ConvGeometry = Pick<Conv2d, 'inChannels' | 'outChannels' | 'kernelSize' | 'stride' | 'padding' | 'dilation' | 'groups'>;

/**
 * relu?(conv2d(x, weight, bias) + residual?) as one conv2dFused call; `weight` and `bias` are the
 * folded ones (the keys of the conv it replaces, with a `bias`). The residual, when the layer ends
 * a block, is forward's second argument.
 */
export class FusedConv2d extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  /** Whether max(0, ·) ends the epilogue. */
  readonly relu: boolean;

  constructor(geometry: ConvGeometry, weight: Tensor, bias: Tensor | null, { relu = false } = {}) {
    super();
    this.inChannels = geometry.inChannels;
    this.outChannels = geometry.outChannels;
    this.kernelSize = geometry.kernelSize;
    this.stride = geometry.stride;
    this.padding = geometry.padding;
    this.dilation = geometry.dilation;
    this.groups = geometry.groups;
    this.relu = relu;
    this.registerParameter('weight', weight);
    this.registerParameter('bias', bias);
  }

  override forward(x: Tensor, residual: Tensor | null = null): Tensor {
    const { stride, padding, dilation, groups, relu } = this;
    return conv2dFused(x, this.weight, this.bias, { stride, padding, dilation, groups, residual, relu });
  }

  protected override whyNotTrainable(): string {
    return INFERENCE_ONLY;
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}`;
    const p = this.padding;
    if (typeof p === 'string' || p[0] !== 0 || p[1] !== 0) s += `, padding=${py(p)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${py(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return this.relu ? `${s}, relu=True` : s;
  }
}

/**
 * A residual block (BasicBlock, Bottleneck) fused: conv1 … convK, each conv·bn·relu, the last one
 * adding the identity (or `downsample`'s projection of it) before its ReLU. Children keep the
 * block's names (conv1, conv2, conv3, downsample).
 */
export class FusedBlock extends Module {
  declare conv1: FusedConv2d;
  declare conv2: FusedConv2d;
  /** A Bottleneck's third convolution. */
  declare conv3?: FusedConv2d;
  declare downsample: Module | null;

  constructor(convs: readonly FusedConv2d[], downsample: Module | null) {
    super();
    if (convs.length === 0 || !convs.at(-1)!.relu) {
      throw new Error(`FusedBlock: expected convolutions of which the last ends with the block's ReLU, got ${convs.length}`);
    }
    convs.forEach((c, i) => this.registerModule(`conv${i + 1}`, c));
    this.registerModule('downsample', downsample);
  }

  override forward(x: Tensor): Tensor {
    // As the training forward: a block's intermediate maps are freed as it returns.
    return freeingUnsaved(this, () => {
      const identity = this.downsample ? this.downsample.call(x) : x;
      // The registered children, read each call: assigning block.conv2 replaces what runs.
      const convs = [this.conv1, this.conv2, this.conv3].filter((c): c is FusedConv2d => !!c);
      let out = x;
      for (let i = 0; i < convs.length - 1; i++) out = convs[i]!.call(out);
      return convs[convs.length - 1]!.call(out, identity);
    });
  }

  protected override whyNotTrainable(): string {
    return INFERENCE_ONLY;
  }
}

/** The parts of a fused ResNet: its stem (conv1·bn1·relu as one layer), the rest as ResNet's. */
export interface FusedResNetParts {
  conv1: FusedConv2d;
  maxpool: Module;
  layer1: Module;
  layer2: Module;
  layer3: Module;
  layer4: Module;
  avgpool: Module;
  fc: Module;
}

/** A ResNet for inference: conv1 (bn1 and relu fused in), maxpool, layer1..4 of FusedBlocks, avgpool, fc. */
export class FusedResNet extends Module {
  declare conv1: FusedConv2d;
  declare maxpool: Module;
  declare layer1: Module;
  declare layer2: Module;
  declare layer3: Module;
  declare layer4: Module;
  declare avgpool: Module;
  declare fc: Module;

  constructor(parts: FusedResNetParts) {
    super();
    for (const name of ['conv1', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc'] as const) {
      this.registerModule(name, parts[name]);
    }
  }

  /**
   * The map before pooling, as ResNet.features. Each block's output is freed as soon as the next
   * block has read it (ResNet-50, batch 8, 224²: 236 MiB of maps held until the forward returned).
   * Not when a layer has hooks, which may keep what they are shown.
   */
  features(x: Tensor): Tensor {
    const layers = [this.layer1, this.layer2, this.layer3, this.layer4];
    if (this.modules().some((m) => m.hasHooks())) {
      return layers.reduce((t, layer) => layer.call(t) as Tensor, this.maxpool.call(this.conv1.call(x)) as Tensor);
    }
    // A plain Sequential's forward is its children in turn: each block is a stage of its own.
    const stages = [this.conv1, this.maxpool, ...layers.flatMap((l) => (l instanceof Sequential && l.constructor === Sequential ? [...l] : [l]))];
    return pipeKeepingSaved(x, stages.map((m) => (t: Tensor) => m.call(t) as Tensor));
  }

  override forward(x: Tensor): Tensor {
    return this.fc.call(flatten(this.avgpool.call(this.features(x)), 1));
  }

  protected override whyNotTrainable(): string {
    return INFERENCE_ONLY;
  }
}
