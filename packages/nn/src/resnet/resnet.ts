/**
 * ResNet (arXiv:1512.03385) as torchvision builds it: the same children under the same names
 * (conv1 bn1 relu maxpool layer1..4 avgpool fc, `downsample.0/.1` in blocks), so torchvision
 * checkpoints load unchanged, and the same initialisation.
 */
import { flatten, noGrad, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, BatchNormBase, Conv2d, Identity, Linear, MaxPool2d, ReLU, Sequential, type NormLayer,
} from '../layers/index.js';
import { constant_, kaimingNormal_ } from '../init.js';
import { BasicBlock, Bottleneck, conv1x1, type BlockType } from './blocks.js';

export interface ResNetOptions {
  /** Size of the `fc` output (1000). */
  numClasses?: number;
  /** Zero the last norm weight of each residual branch, so every block starts as the identity (arXiv:1706.02677). */
  zeroInitResidual?: boolean;
  /** Groups of each Bottleneck's 3x3 convolution (ResNeXt's cardinality; 1). */
  groups?: number;
  /** Channels per group of the Bottleneck's 3x3 (64; 128 makes a Wide ResNet). */
  widthPerGroup?: number;
  /** Replace the stride-2 of layer2, layer3, layer4 with dilation (dense prediction, output stride 16 or 8). */
  replaceStrideWithDilation?: readonly [boolean, boolean, boolean];
  /** Factory of the normalisation layer (BatchNorm2d); pass one returning SyncBatchNorm for multi-GPU training. */
  normLayer?: NormLayer;
  /** Channels of the input image (3). */
  inChannels?: number;
  /** 3x3 stride-1 conv1 and no max-pool (`maxpool` is an Identity), for 28-32 px inputs such as CIFAR-10 and MNIST. */
  smallImageStem?: boolean;
  /**
   * Planes of layer1..layer4 (torchvision's fixed 64, 128, 256, 512); the stem has widths[0]
   * channels. A nodegrad extension for narrow models; keys stay torchvision's.
   */
  widths?: readonly [number, number, number, number];
}

/** The ResNet family: a stem, four stages of residual blocks, global average pooling and `fc`. */
export class ResNet extends Module {
  declare conv1: Conv2d;
  declare bn1: Module;
  declare relu: ReLU;
  declare maxpool: Module;
  declare layer1: Sequential;
  declare layer2: Sequential;
  declare layer3: Sequential;
  declare layer4: Sequential;
  declare avgpool: AdaptiveAvgPool2d;
  declare fc: Linear;
  readonly groups: number;
  readonly baseWidth: number;
  private readonly normLayer: NormLayer;
  // _makeLayer's running state, as in torchvision: channels entering the next stage, and dilation.
  private inplanes: number;
  private dilation = 1;

  constructor(block: BlockType, layers: readonly number[], opts: ResNetOptions = {}) {
    super();
    const {
      numClasses = 1000, zeroInitResidual = false, groups = 1, widthPerGroup = 64,
      replaceStrideWithDilation = [false, false, false], normLayer = (n: number) => new BatchNorm2d(n),
      inChannels = 3, smallImageStem = false, widths = [64, 128, 256, 512],
    } = opts;
    if (layers.length !== 4) throw new Error(`ResNet: layers must list 4 stage depths, got [${layers.join(', ')}]`);
    if (replaceStrideWithDilation.length !== 3) {
      throw new Error(`ResNet: replaceStrideWithDilation must have 3 entries, got ${replaceStrideWithDilation.length}`);
    }
    if (widths.length !== 4) throw new Error(`ResNet: widths must have 4 entries, got ${widths.length}`);
    this.groups = groups;
    this.baseWidth = widthPerGroup;
    this.normLayer = normLayer;
    this.inplanes = widths[0];

    const stem = smallImageStem
      ? new Conv2d(inChannels, this.inplanes, 3, { stride: 1, padding: 1, bias: false })
      : new Conv2d(inChannels, this.inplanes, 7, { stride: 2, padding: 3, bias: false });
    this.registerModule('conv1', stem);
    this.registerModule('bn1', normLayer(this.inplanes));
    this.registerModule('relu', new ReLU());
    // The small stem keeps the `maxpool` name (as an Identity) so module paths do not move.
    this.registerModule('maxpool', smallImageStem ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 }));
    this.registerModule('layer1', this.makeLayer(block, widths[0], layers[0]!));
    this.registerModule('layer2', this.makeLayer(block, widths[1], layers[1]!, 2, replaceStrideWithDilation[0]));
    this.registerModule('layer3', this.makeLayer(block, widths[2], layers[2]!, 2, replaceStrideWithDilation[1]));
    this.registerModule('layer4', this.makeLayer(block, widths[3], layers[3]!, 2, replaceStrideWithDilation[2]));
    this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    this.registerModule('fc', new Linear(widths[3] * block.expansion, numClasses));
    this.initWeights(zeroInitResidual);
  }

  /** torchvision's init: kaiming normal (fan_out, relu) for convs, BN 1 and 0, Linear at PyTorch's default. */
  private initWeights(zeroInitResidual: boolean): void {
    noGrad(() => {
      // BatchNormBase covers BatchNorm2d and SyncBatchNorm (torchvision: BatchNorm2d and GroupNorm).
      for (const m of this.modules()) {
        if (m instanceof Conv2d) {
          kaimingNormal_(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
        } else if (m instanceof BatchNormBase) {
          if (m.weight) constant_(m.weight, 1);
          if (m.bias) constant_(m.bias, 0);
        }
      }
      if (!zeroInitResidual) return;
      for (const m of this.modules()) {
        const last = m instanceof Bottleneck ? m.bn3 : m instanceof BasicBlock ? m.bn2 : null;
        const w = (last as { weight?: Tensor | null } | null)?.weight;
        if (w) constant_(w, 0);
      }
    });
  }

  /** One stage: `blocks` blocks; the first changes stride and width (with a projection shortcut). */
  private makeLayer(block: BlockType, planes: number, blocks: number, stride = 1, dilate = false): Sequential {
    const normLayer = this.normLayer;
    const previousDilation = this.dilation;
    if (dilate) {
      this.dilation *= stride;
      stride = 1;
    }
    let downsample: Module | null = null;
    if (stride !== 1 || this.inplanes !== planes * block.expansion) {
      const out = planes * block.expansion;
      downsample = new Sequential(conv1x1(this.inplanes, out, stride), normLayer(out));
    }
    const common = { groups: this.groups, baseWidth: this.baseWidth, normLayer };
    const layers: Module[] = [
      new block(this.inplanes, planes, { ...common, stride, downsample, dilation: previousDilation }),
    ];
    this.inplanes = planes * block.expansion;
    for (let i = 1; i < blocks; i++) {
      layers.push(new block(this.inplanes, planes, { ...common, dilation: this.dilation }));
    }
    return new Sequential(...layers);
  }

  /** The map before pooling: [N, widths[3] * expansion, H/32, W/32]; H/8 with the small stem, less with dilation. */
  features(x: Tensor): Tensor {
    x = this.maxpool.call(this.relu.call(this.bn1.call(this.conv1.call(x))));
    x = this.layer1.call(x);
    x = this.layer2.call(x);
    x = this.layer3.call(x);
    return this.layer4.call(x);
  }

  forward(x: Tensor): Tensor {
    return this.fc.call(flatten(this.avgpool.call(this.features(x)), 1));
  }
}

/** One row of the depth table: block type, blocks per stage, and fixed ResNeXt/Wide options. */
interface Arch {
  block: BlockType;
  layers: readonly [number, number, number, number];
  groups?: number;
  widthPerGroup?: number;
}

/** torchvision's architectures as data. */
export const RESNET_ARCHS = {
  resnet18: { block: BasicBlock, layers: [2, 2, 2, 2] },
  resnet34: { block: BasicBlock, layers: [3, 4, 6, 3] },
  resnet50: { block: Bottleneck, layers: [3, 4, 6, 3] },
  resnet101: { block: Bottleneck, layers: [3, 4, 23, 3] },
  resnet152: { block: Bottleneck, layers: [3, 8, 36, 3] },
  resnext50_32x4d: { block: Bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4 },
  resnext101_32x8d: { block: Bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8 },
  wide_resnet50_2: { block: Bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 64 * 2 },
  wide_resnet101_2: { block: Bottleneck, layers: [3, 4, 23, 3], widthPerGroup: 64 * 2 },
} as const satisfies Record<string, Arch>;

export type ResNetArch = keyof typeof RESNET_ARCHS;

/** Builds a named architecture; like torchvision, an option that contradicts the architecture is an error. */
export function buildResNet(arch: ResNetArch, opts: ResNetOptions = {}): ResNet {
  const a: Arch = RESNET_ARCHS[arch];
  if (!a) {
    throw new Error(`buildResNet: unknown architecture '${arch}' (known: ${Object.keys(RESNET_ARCHS).join(', ')})`);
  }
  const fixed = { groups: a.groups, widthPerGroup: a.widthPerGroup };
  for (const [k, v] of Object.entries(fixed) as [keyof typeof fixed, number | undefined][]) {
    if (v !== undefined && opts[k] !== undefined && opts[k] !== v) {
      throw new Error(`${arch}: ${k} is fixed at ${v} by the architecture, got ${opts[k]}`);
    }
  }
  return new ResNet(a.block, a.layers, {
    ...opts, groups: a.groups ?? opts.groups, widthPerGroup: a.widthPerGroup ?? opts.widthPerGroup,
  });
}

/** ResNet-18 (11,689,512 parameters with 1000 classes). */
export const resnet18 = (opts: ResNetOptions = {}): ResNet => buildResNet('resnet18', opts);
/** ResNet-34 (21,797,672 parameters). */
export const resnet34 = (opts: ResNetOptions = {}): ResNet => buildResNet('resnet34', opts);
/** ResNet-50 (25,557,032 parameters). */
export const resnet50 = (opts: ResNetOptions = {}): ResNet => buildResNet('resnet50', opts);
/** ResNet-101 (44,549,160 parameters). */
export const resnet101 = (opts: ResNetOptions = {}): ResNet => buildResNet('resnet101', opts);
/** ResNet-152 (60,192,808 parameters). */
export const resnet152 = (opts: ResNetOptions = {}): ResNet => buildResNet('resnet152', opts);
/** ResNeXt-50 32x4d (arXiv:1611.05431; 25,028,904 parameters). */
export const resnext50_32x4d = (opts: ResNetOptions = {}): ResNet => buildResNet('resnext50_32x4d', opts);
/** ResNeXt-101 32x8d (88,791,336 parameters). */
export const resnext101_32x8d = (opts: ResNetOptions = {}): ResNet => buildResNet('resnext101_32x8d', opts);
/** Wide ResNet-50-2 (arXiv:1605.07146; bottleneck twice as wide; 68,883,240 parameters). */
export const wide_resnet50_2 = (opts: ResNetOptions = {}): ResNet => buildResNet('wide_resnet50_2', opts);
/** Wide ResNet-101-2 (126,886,696 parameters). */
export const wide_resnet101_2 = (opts: ResNetOptions = {}): ResNet => buildResNet('wide_resnet101_2', opts);
