/**
 * The two residual blocks of torchvision's ResNet family, name for name (conv1 bn1 relu conv2 bn2
 * [conv3 bn3] downsample), so their state-dict keys are torchvision's. Forward is written
 * functionally, relu(add(branch, identity)), so the tape can differentiate it (torchvision's
 * `out += identity` and ReLU(inplace=True) are in-place tricks we do not copy). One forward for
 * training and eval; the fused inference form is a separate model made by fuseForInference.
 */
import { add, tidyKeepingSaved, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { BatchNorm2d, Conv2d, ReLU, type NormLayer } from '../layers/index.js';

/** Options every block constructor takes (torchvision's positional arguments after `planes`). */
export interface BlockOptions {
  /** Stride of the block's 3x3 convolution (and of `downsample`, which the caller builds). */
  stride?: number;
  /** Projection of the identity when shape changes: Sequential(conv1x1, norm), or null. */
  downsample?: Module | null;
  groups?: number;
  /** torchvision's `base_width` (the ResNet's `widthPerGroup`). */
  baseWidth?: number;
  dilation?: number;
  normLayer?: NormLayer;
}

/** A block class as `ResNet` needs it: a constructor plus its channel `expansion`. */
export interface BlockType {
  new (inplanes: number, planes: number, opts?: BlockOptions): BasicBlock | Bottleneck;
  readonly expansion: number;
}

const defaultNorm: NormLayer = (n) => new BatchNorm2d(n);

/** 3x3 convolution with padding = dilation, no bias (torchvision's conv3x3). */
export function conv3x3(inPlanes: number, outPlanes: number, stride = 1, groups = 1, dilation = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: dilation, groups, dilation, bias: false });
}

/** 1x1 convolution, no bias (torchvision's conv1x1). */
export function conv1x1(inPlanes: number, outPlanes: number, stride = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

/** What both blocks share: relu(residual(x) + identity(x)). */
abstract class ResidualBlock extends Module {
  declare relu: ReLU;
  declare downsample: Module | null;

  /** The residual branch alone (without the identity and the final ReLU). */
  abstract residual(x: Tensor): Tensor;

  forward(x: Tensor): Tensor {
    return freeingUnsaved(this, () => {
      const identity = this.downsample ? this.downsample.call(x) : x;
      return this.relu.call(add(this.residual(x), identity));
    });
  }
}

/**
 * Runs a block's forward and frees the intermediates the tape does not keep (each bn's output once
 * the relu saved its own, the sum before the last relu) as it returns, as PyTorch's in-place ReLU
 * and `out += identity` save that memory. Only when no layer inside has hooks: a hook may keep
 * what it is shown.
 */
export function freeingUnsaved(block: Module, fn: () => Tensor): Tensor {
  for (const m of block.modules()) if (m !== block && m.hasHooks()) return fn();
  return tidyKeepingSaved(fn);
}

/** Two 3x3 convolutions (ResNet-18/34). */
export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  readonly expansion = 1;
  readonly stride: number;
  declare conv1: Conv2d;
  declare bn1: Module;
  declare conv2: Conv2d;
  declare bn2: Module;

  constructor(inplanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const { stride = 1, downsample = null, groups = 1, baseWidth = 64, dilation = 1, normLayer = defaultNorm } = opts;
    if (groups !== 1 || baseWidth !== 64) {
      throw new Error(
        `BasicBlock: only groups=1 and baseWidth=64 are supported, got groups=${groups}, baseWidth=${baseWidth}`);
    }
    if (dilation > 1) throw new Error(`BasicBlock: dilation > 1 is not supported, got dilation=${dilation}`);
    this.stride = stride;
    // Both conv1 and downsample reduce the resolution when stride != 1.
    this.registerModule('conv1', conv3x3(inplanes, planes, stride));
    this.registerModule('bn1', normLayer(planes));
    this.registerModule('relu', new ReLU());
    this.registerModule('conv2', conv3x3(planes, planes));
    this.registerModule('bn2', normLayer(planes));
    this.registerModule('downsample', downsample);
  }

  /** The residual branch alone (without the identity and the final ReLU). */
  residual(x: Tensor): Tensor {
    const out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    return this.bn2.call(this.conv2.call(out));
  }
}


/**
 * 1x1 → 3x3 → 1x1 with `expansion` 4 (ResNet-50 and deeper, ResNeXt, Wide ResNet). The stride
 * sits on the 3x3 convolution ("ResNet V1.5", as torchvision), not on the first 1x1 as in the
 * original paper (arXiv:1512.03385).
 */
export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  readonly expansion = 4;
  readonly stride: number;
  declare conv1: Conv2d;
  declare bn1: Module;
  declare conv2: Conv2d;
  declare bn2: Module;
  declare conv3: Conv2d;
  declare bn3: Module;

  constructor(inplanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const { stride = 1, downsample = null, groups = 1, baseWidth = 64, dilation = 1, normLayer = defaultNorm } = opts;
    // Width of the grouped 3x3: ResNeXt's "cardinality x bottleneck width" (arXiv:1611.05431).
    const width = Math.floor(planes * (baseWidth / 64)) * groups;
    this.stride = stride;
    this.registerModule('conv1', conv1x1(inplanes, width));
    this.registerModule('bn1', normLayer(width));
    this.registerModule('conv2', conv3x3(width, width, stride, groups, dilation));
    this.registerModule('bn2', normLayer(width));
    this.registerModule('conv3', conv1x1(width, planes * Bottleneck.expansion));
    this.registerModule('bn3', normLayer(planes * Bottleneck.expansion));
    this.registerModule('relu', new ReLU());
    this.registerModule('downsample', downsample);
  }

  /** The residual branch alone (without the identity and the final ReLU). */
  residual(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.relu.call(this.bn2.call(this.conv2.call(out)));
    return this.bn3.call(this.conv3.call(out));
  }
}
