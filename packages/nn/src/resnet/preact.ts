/**
 * Pre-activation ResNets (He et al., "Identity Mappings in Deep Residual Networks",
 * arXiv:1603.05027): each block normalises and activates its input before each convolution, and
 * the shortcut adds nothing after the sum. Laid out and named as timm's ResNetV2 (`resnetv2_50`,
 * `resnetv2_101`): stem.conv stem.pool, stages.S.blocks.B.{downsample.conv, norm1, conv1, norm2,
 * conv2, norm3, conv3}, norm, head.fc (a 1x1 convolution), so timm state dicts load strictly.
 * timm's BatchNormAct2d is a BatchNorm followed by a ReLU with no parameters of its own; here the
 * block applies the ReLU, so any norm layer (SyncBatchNorm too) fits.
 */
import { add, flatten, noGrad, relu, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, BatchNormBase, Conv2d, Identity, MaxPool2d, Sequential, type NormLayer,
} from '../layers/index.js';
import { constant_, kaimingNormal_, normal_, zeros_ } from '../init.js';
import { conv1x1, conv3x3, freeingUnsaved } from './blocks.js';

/** timm's DownsampleConv with preact: a strided 1x1 convolution of the activated input, no norm after. */
class DownsampleConv extends Module {
  declare conv: Conv2d;
  constructor(inChs: number, outChs: number, stride: number) {
    super();
    this.registerModule('conv', conv1x1(inChs, outChs, stride));
  }

  forward(x: Tensor): Tensor {
    return this.conv.call(x);
  }
}

interface PreActOptions {
  stride?: number;
  /** Whether the block projects its shortcut (timm: the first block of every stage). */
  project?: boolean;
  normLayer?: NormLayer;
}

/** The blocks' common shape: out = residual(relu(norm1(x))) + shortcut. */
abstract class PreActBlock extends Module {
  declare downsample: DownsampleConv | null;
  declare norm1: Module;

  /** The branch after norm1 and its ReLU. */
  abstract branch(preact: Tensor): Tensor;

  forward(x: Tensor): Tensor {
    return freeingUnsaved(this, () => {
      const preact = relu(this.norm1.call(x) as Tensor);
      const shortcut = this.downsample ? this.downsample.call(preact) : x;
      return add(this.branch(preact), shortcut);
    });
  }
}

/** Two 3x3 convolutions, each after norm and ReLU (pre-activation ResNet-18/34). */
export class PreActBasicBlock extends PreActBlock {
  static readonly expansion = 1;
  declare conv1: Conv2d;
  declare norm2: Module;
  declare conv2: Conv2d;

  constructor(inChs: number, outChs: number, opts: PreActOptions = {}) {
    super();
    const { stride = 1, project = false, normLayer = (n: number) => new BatchNorm2d(n) } = opts;
    this.registerModule('downsample', project ? new DownsampleConv(inChs, outChs, stride) : null);
    this.registerModule('norm1', normLayer(inChs));
    this.registerModule('conv1', conv3x3(inChs, outChs, stride));
    this.registerModule('norm2', normLayer(outChs));
    this.registerModule('conv2', conv3x3(outChs, outChs));
  }

  branch(preact: Tensor): Tensor {
    return this.conv2.call(relu(this.norm2.call(this.conv1.call(preact)) as Tensor));
  }

  /** The branch's last convolution, zeroed by zeroInitLast. */
  get last(): Conv2d { return this.conv2; }
}

/** 1x1, 3x3 (strided), 1x1 convolutions, each after norm and ReLU; out = 4 x mid channels. */
export class PreActBottleneck extends PreActBlock {
  static readonly expansion = 4;
  declare conv1: Conv2d;
  declare norm2: Module;
  declare conv2: Conv2d;
  declare norm3: Module;
  declare conv3: Conv2d;

  constructor(inChs: number, outChs: number, opts: PreActOptions = {}) {
    super();
    const { stride = 1, project = false, normLayer = (n: number) => new BatchNorm2d(n) } = opts;
    const mid = outChs / PreActBottleneck.expansion;
    this.registerModule('downsample', project ? new DownsampleConv(inChs, outChs, stride) : null);
    this.registerModule('norm1', normLayer(inChs));
    this.registerModule('conv1', conv1x1(inChs, mid));
    this.registerModule('norm2', normLayer(mid));
    this.registerModule('conv2', conv3x3(mid, mid, stride));
    this.registerModule('norm3', normLayer(mid));
    this.registerModule('conv3', conv1x1(mid, outChs));
  }

  branch(preact: Tensor): Tensor {
    const h = this.conv2.call(relu(this.norm2.call(this.conv1.call(preact)) as Tensor));
    return this.conv3.call(relu(this.norm3.call(h) as Tensor));
  }

  get last(): Conv2d { return this.conv3; }
}

export type PreActBlockType = typeof PreActBasicBlock | typeof PreActBottleneck;

/** timm's ResNetStage: its blocks under `blocks`. */
class Stage extends Module {
  declare blocks: Sequential;
  constructor(blocks: Sequential) {
    super();
    this.registerModule('blocks', blocks);
  }

  forward(x: Tensor): Tensor {
    return this.blocks.call(x);
  }
}

/** timm's ClassifierHead with a 1x1 convolution as `fc`: average pool, fc, flatten. */
class Head extends Module {
  declare global_pool: AdaptiveAvgPool2d;
  declare fc: Conv2d;
  constructor(inChs: number, numClasses: number) {
    super();
    this.registerModule('global_pool', new AdaptiveAvgPool2d([1, 1]));
    this.registerModule('fc', new Conv2d(inChs, numClasses, 1, { bias: true }));
  }

  forward(x: Tensor): Tensor {
    return flatten(this.fc.call(this.global_pool.call(x)), 1);
  }
}

export interface PreActResNetOptions {
  numClasses?: number;
  /** Zero each block's last convolution, so every block starts as its shortcut (timm's zero_init_last; true). */
  zeroInitLast?: boolean;
  normLayer?: NormLayer;
  inChannels?: number;
  /** 3x3 stride-1 stem convolution and no max-pool (`stem.pool` is an Identity), for 28-32 px inputs. */
  smallImageStem?: boolean;
  /** Channels of the stem and of each stage's 3x3 convolutions (64, 128, 256, 512). */
  widths?: readonly [number, number, number, number];
}

/** A pre-activation ResNet: stem, four stages, a final norm and ReLU, average pooling and a 1x1 conv head. */
export class PreActResNet extends Module {
  declare stem: Sequential;
  declare stages: Sequential;
  declare norm: Module;
  declare head: Head;

  constructor(block: PreActBlockType, layers: readonly number[], opts: PreActResNetOptions = {}) {
    super();
    const {
      numClasses = 1000, zeroInitLast = true, normLayer = (n: number) => new BatchNorm2d(n), inChannels = 3,
      smallImageStem = false, widths = [64, 128, 256, 512],
    } = opts;
    if (layers.length !== 4) throw new Error(`PreActResNet: layers must list 4 stage depths, got [${layers.join(', ')}]`);
    if (widths.length !== 4) throw new Error(`PreActResNet: widths must have 4 entries, got ${widths.length}`);
    const stem = new Sequential();
    stem.registerModule('conv', smallImageStem
      ? new Conv2d(inChannels, widths[0], 3, { stride: 1, padding: 1, bias: false })
      : new Conv2d(inChannels, widths[0], 7, { stride: 2, padding: 3, bias: false }));
    stem.registerModule('pool', smallImageStem ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 }));
    this.registerModule('stem', stem);
    const stages = new Sequential();
    let inChs = widths[0];
    layers.forEach((depth, s) => {
      const outChs = widths[s]! * block.expansion;
      const blocks = new Sequential();
      for (let b = 0; b < depth; b++) {
        // timm projects the shortcut of every stage's first block, the first stage's included.
        blocks.registerModule(String(b), new block(b === 0 ? inChs : outChs, outChs,
          { stride: b === 0 && s > 0 ? 2 : 1, project: b === 0, normLayer }));
      }
      stages.registerModule(String(s), new Stage(blocks));
      inChs = outChs;
    });
    this.registerModule('stages', stages);
    this.registerModule('norm', normLayer(inChs));
    this.registerModule('head', new Head(inChs, numClasses));
    this.initWeights(zeroInitLast);
  }

  /** timm's init: kaiming normal (fan_out, relu) convs, head.fc normal(0, 0.01) and zero bias, BN 1 and 0. */
  private initWeights(zeroInitLast: boolean): void {
    noGrad(() => {
      const fc = this.head.fc;
      for (const m of this.modules()) {
        if (m === fc) {
          normal_(fc.weight, 0, 0.01);
          zeros_(fc.bias!);
        } else if (m instanceof Conv2d) {
          kaimingNormal_(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
        } else if (m instanceof BatchNormBase) {
          if (m.weight) constant_(m.weight, 1);
          if (m.bias) constant_(m.bias, 0);
        }
      }
      // After the loop: a block comes before its convolutions in modules(), whose init would undo it.
      if (!zeroInitLast) return;
      for (const m of this.modules()) {
        if (m instanceof PreActBasicBlock || m instanceof PreActBottleneck) zeros_(m.last.weight);
      }
    });
  }

  /** The activated map before pooling: [N, channels, H/32, W/32] (H/8 with the small stem). */
  features(x: Tensor): Tensor {
    return relu(this.norm.call(this.stages.call(this.stem.call(x))) as Tensor);
  }

  forward(x: Tensor): Tensor {
    return this.head.call(this.features(x));
  }
}

/** The pre-activation architectures; 50 and 101 are timm's resnetv2_50 and resnetv2_101. */
export const PREACT_ARCHS = {
  preactResnet18: { block: PreActBasicBlock, layers: [2, 2, 2, 2] },
  preactResnet34: { block: PreActBasicBlock, layers: [3, 4, 6, 3] },
  preactResnet50: { block: PreActBottleneck, layers: [3, 4, 6, 3] },
  preactResnet101: { block: PreActBottleneck, layers: [3, 4, 23, 3] },
  preactResnet152: { block: PreActBottleneck, layers: [3, 8, 36, 3] },
} as const;

const build = (arch: keyof typeof PREACT_ARCHS) => (opts: PreActResNetOptions = {}): PreActResNet =>
  new PreActResNet(PREACT_ARCHS[arch].block, PREACT_ARCHS[arch].layers, opts);

export const preactResnet18 = build('preactResnet18');
export const preactResnet34 = build('preactResnet34');
/** timm's resnetv2_50 (25,549,352 parameters). */
export const preactResnet50 = build('preactResnet50');
/** timm's resnetv2_101. */
export const preactResnet101 = build('preactResnet101');
export const preactResnet152 = build('preactResnet152');
