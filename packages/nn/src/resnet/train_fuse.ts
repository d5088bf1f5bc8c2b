/**
 * fuseForTraining: a training twin of a ResNet in which every batch norm that a ReLU follows runs
 * that ReLU in its own pass, and each block's last batch norm adds the identity there too
 * (batchNormFused, cuDNN's BN_ADD_ACTIVATION). In training the backward recomputes the ReLU's mask
 * from the batch norm's input, so the ReLU takes no pass of its own forward or backward, nor does
 * the residual add forward. The blocks of the original stay as plain as torchvision's: the twin
 * is a separate module tree around the same layers.
 */
import { add, flatten, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { BatchNorm2d, ReLU, Sequential } from '../layers/index.js';
import { BasicBlock, Bottleneck, freeingUnsaved } from './blocks.js';
import { ResNet } from './resnet.js';

/** Exact class (a subclass may have another forward); a function so TypeScript does not narrow. */
const isA = (m: Module, cls: abstract new (...a: never[]) => Module): boolean => m.constructor === cls;

/**
 * act(norm(x) + residual?) in one batch-norm pass when `norm` is a BatchNorm2d, `act` a ReLU and
 * neither has hooks (a hook must see its own layer's output); otherwise layer by layer.
 */
function normRelu(norm: Module, act: Module, x: Tensor, residual: Tensor | null = null): Tensor {
  if (isA(norm, BatchNorm2d) && isA(act, ReLU) && !norm.hasHooks() && !act.hasHooks()) {
    return (norm as BatchNorm2d).forwardFused(x, { residual, relu: true });
  }
  const y = norm.call(x) as Tensor;
  return act.call(residual ? add(y, residual) : y) as Tensor;
}

/** Registers every child of `from` on `to` under its name, in order (so stateDict keys and order match). */
function adoptChildren(to: Module, from: Module, replace: (m: Module) => Module = (m) => m): void {
  for (const [name, m] of from.namedChildren(false)) to.registerModule(name, replace(m));
}

/**
 * A BasicBlock or Bottleneck with conv<k>·bn<k>·relu fused for training: its children are the
 * block's own (same names, same module objects), so it trains them and has their state dict.
 */
export class FusedTrainingBlock extends Module {
  declare conv1: Module;
  declare bn1: Module;
  declare conv2: Module;
  declare bn2: Module;
  declare conv3?: Module;
  declare bn3?: Module;
  declare relu: Module;
  declare downsample: Module | null;
  /** 2 for a BasicBlock, 3 for a Bottleneck. */
  readonly depth: number;

  constructor(block: BasicBlock | Bottleneck) {
    super();
    this.depth = block instanceof Bottleneck ? 3 : 2;
    adoptChildren(this, block);
  }

  override forward(x: Tensor): Tensor {
    return freeingUnsaved(this, () => {
      const identity = this.downsample ? this.downsample.call(x) as Tensor : x;
      const kids = this as unknown as Record<string, Module>;
      let out = x;
      for (let k = 1; k <= this.depth; k++) {
        const y = kids[`conv${k}`]!.call(out) as Tensor;
        out = normRelu(kids[`bn${k}`]!, this.relu, y, k === this.depth ? identity : null);
      }
      return out;
    });
  }
}

/** A ResNet's training twin: the stem's bn1·relu fused, its blocks FusedTrainingBlocks, the rest shared. */
export class FusedTrainingResNet extends Module {
  declare conv1: Module;
  declare bn1: Module;
  declare relu: Module;
  declare maxpool: Module;
  declare layer1: Module;
  declare layer2: Module;
  declare layer3: Module;
  declare layer4: Module;
  declare avgpool: Module;
  declare fc: Module;

  constructor(model: ResNet) {
    super();
    adoptChildren(this, model, twinOf);
  }

  /** The map before pooling, as ResNet.features. */
  features(x: Tensor): Tensor {
    x = this.maxpool.call(normRelu(this.bn1, this.relu, this.conv1.call(x) as Tensor)) as Tensor;
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) x = layer.call(x) as Tensor;
    return x;
  }

  override forward(x: Tensor): Tensor {
    return this.fc.call(flatten(this.avgpool.call(this.features(x)) as Tensor, 1)) as Tensor;
  }
}

/** A Sequential's twin holds its children's twins under the same names; one with no block is itself. */
function twinOf(m: Module): Module {
  if (isA(m, BasicBlock) || isA(m, Bottleneck)) return new FusedTrainingBlock(m as BasicBlock | Bottleneck);
  if (!isA(m, Sequential)) return m;
  const kids = [...m.namedChildren(false)].map(([name, c]) => [name, twinOf(c)] as const);
  if (kids.every(([name, c]) => c === (m as unknown as Record<string, Module>)[name])) return m;
  const s = new Sequential();
  for (const [name, c] of kids) s.registerModule(name, c);
  return s.train(m.training);
}

/**
 * A training twin of `model` in which each batch norm followed by a ReLU (the stem's bn1, each
 * block's bn<k>) runs the ReLU in its own pass, and each block's last batch norm adds the identity
 * there as well (batchNormFused; oneDNN's and cuDNN's fused BN-ReLU). The twin:
 * - holds `model`'s own layers and tensors, not copies: training it trains `model`, an optimizer
 *   over either's parameters steps both, and train()/eval() on it switch `model`'s layers too;
 * - has `model`'s state dict, key for key and in order (ReLU and the twin's containers hold no
 *   tensors), so checkpoints load into either;
 * - computes what `model` computes, except that bn(x) + identity is rounded once instead of
 *   twice (a bfloat16 sum that cancels may then keep a tiny value the unfused sum rounds to 0);
 * - runs a batch norm or ReLU with hooks (or a norm layer other than BatchNorm2d, SyncBatchNorm
 *   included) as separate layers, so every hook still sees its own layer's output.
 * It knows ResNet, BasicBlock, Bottleneck and Sequential by exact class; any other module is
 * shared as it is (a subclass of a block may have another forward, so it is not fused).
 *
 * @example
 * const model = resnet50();
 * const fast = fuseForTraining(model);          // train fast; save model or fast, same keys
 * const opt = new SGD(model.parameters(), { lr: 0.1 });
 * crossEntropy(fast.call(x), y).backward();
 */
export function fuseForTraining(model: ResNet): FusedTrainingResNet;
export function fuseForTraining(model: Module): Module;
export function fuseForTraining(model: Module): Module {
  if (isA(model, ResNet)) return new FusedTrainingResNet(model as ResNet).train(model.training);
  return twinOf(model);
}
