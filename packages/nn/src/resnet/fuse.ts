/**
 * Conv-BatchNorm folding for inference. In eval mode BatchNorm is the affine map
 * y = (x - mean) * gamma / sqrt(var + eps) + beta, so it folds into the convolution before it:
 *   w' = w * s,  b' = beta + (b - mean) * s,  with s = gamma / sqrt(var + eps) per output channel.
 * Two transforms use it: fuseConvBn rewrites a model in place, leaving its structure; fuseForInference
 * makes an inference copy whose convolutions also run their ReLU and residual add as one kernel.
 */
import { add, clone, mul, noGrad, ones, reshape, rsqrt, sub, tidy, zeros, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { skipInit } from '../init.js';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNormBase, Conv2d, Dropout, ELU, Flatten, GELU, Hardtanh, Identity, LeakyReLU, Linear,
  LogSoftmax, MaxPool2d, ReLU, Sequential, SiLU, Sigmoid, Softmax, Softplus, Tanh,
} from '../layers/index.js';
import { BasicBlock, Bottleneck } from './blocks.js';
import { FusedBlock, FusedConv2d, FusedResNet } from './fused_layers.js';
import { ResNet } from './resnet.js';

/**
 * Folds every BatchNorm (BatchNorm2d, SyncBatchNorm) into the Conv2d that feeds it, in place,
 * and returns the model in eval mode. Pairs are siblings `conv<k>`/`bn<k>` (conv1/bn1,
 * conv2/bn2, conv3/bn3 in ResNets) and consecutive Sequential children (`downsample.0`/`.1`);
 * each folded BN becomes an Identity, so module paths stay put. The result is for inference
 * only: BN's batch statistics are gone, and its stateDict no longer has the BN keys (convs gain
 * a `bias`). To keep the original, build a fresh model and `loadStateDict` into it first.
 *
 * @example
 * const fast = fuseConvBn(resnet18().eval()); // same eval outputs, fewer ops
 */
export function fuseConvBn<M extends Module>(model: M): M {
  model.eval();
  for (const [path, parent] of [...model.namedModules()]) {
    for (const [convName, bnName] of foldablePairs(parent)) {
      const conv = (parent as unknown as Record<string, Module>)[convName] as Conv2d;
      const bn = (parent as unknown as Record<string, Module>)[bnName] as BatchNormBase;
      foldInto(conv, bn, path ? `${path}.${bnName}` : bnName);
      parent.registerModule(bnName, new Identity());
    }
  }
  return model;
}

/** Names of (conv, bn) children of `m` that fold: conv<k>/bn<k> siblings, and Sequential neighbours. */
function foldablePairs(m: Module): [string, string][] {
  const kids = new Map(m.namedChildren(false));
  const pairs: [string, string][] = [];
  if (m instanceof Sequential) {
    const names = [...kids.keys()];
    for (let i = 0; i + 1 < names.length; i++) {
      if (kids.get(names[i]!) instanceof Conv2d && kids.get(names[i + 1]!) instanceof BatchNormBase) {
        pairs.push([names[i]!, names[i + 1]!]);
      }
    }
    return pairs;
  }
  for (const [name, child] of kids) {
    const k = /^conv(\d*)$/.exec(name)?.[1];
    if (k === undefined || !(child instanceof Conv2d)) continue;
    if (kids.get(`bn${k}`) instanceof BatchNormBase) pairs.push([name, `bn${k}`]);
  }
  return pairs;
}

/** Rewrites conv.weight and conv.bias so that conv alone computes bn(conv(x)) in eval mode. */
function foldInto(conv: Conv2d, bn: BatchNormBase, bnPath: string): void {
  const { weight, bias } = foldConvBn(conv, bn, `fuseConvBn: ${bnPath}`);
  conv.registerParameter('weight', weight);
  conv.registerParameter('bias', bias);
}

/**
 * The weight and bias of one convolution computing bn(conv(x)) in eval mode: new tensors (made
 * under noGrad, so without history), conv and bn untouched. `where` starts the error message.
 */
function foldConvBn(conv: Conv2d, bn: BatchNormBase, where: string): { weight: Tensor; bias: Tensor } {
  const mean = bn.running_mean;
  const variance = bn.running_var;
  if (!mean || !variance) {
    throw new Error(`${where} has no running statistics (trackRunningStats=false), so it cannot be folded`);
  }
  const w = conv.weight;
  const c = w.shape[0]!;
  if (mean.shape[0] !== c) {
    throw new Error(`${where} has ${mean.shape[0]} features but the conv before it has ${c} output channels`);
  }
  return noGrad(() => {
    const like = { dtype: w.dtype, device: w.device };
    const gamma = bn.weight ?? ones([c], like);
    const beta = bn.bias ?? zeros([c], like);
    const b = conv.bias ?? zeros([c], like);
    const scale = mul(gamma, rsqrt(add(variance, bn.eps)));
    return {
      weight: mul(w, reshape(scale, [c, 1, 1, 1])),
      bias: add(beta, mul(sub(b, mean), scale)),
    };
  });
}

/**
 * An inference copy of `model` in which every conv → BatchNorm (→ ReLU) is one conv2dFused call,
 * and so is each residual block's last conv → bn → + identity → relu (oneDNN post-ops on 'cpu';
 * the same composite ops as the plain model elsewhere). The copy:
 * - leaves `model` untouched (it may keep training) and shares no tensor with it: its weights are a
 *   snapshot, so fuse again after changing the original (as torch.ao's fuse_modules, inplace=False);
 * - is in eval mode, its parameters do not require grad, and `train()` on it, or on a module that
 *   holds it, throws: BatchNorm's batch statistics are gone;
 * - has fuseConvBn's state dict: torchvision's conv keys, each conv with a `bias`, no BatchNorm
 *   keys (fc and other layers keep theirs); module paths of convs and blocks are the original's;
 * - carries no hooks of the original.
 * It knows ResNet, BasicBlock, Bottleneck, Sequential and nodegrad's layers, by exact class (a
 * subclass may have another forward); anything else is an error that names its path.
 *
 * @example
 * const fast = fuseForInference(model); // model stays trainable
 * const logits = noGrad(() => fast.call(x));
 */
export function fuseForInference(model: ResNet): FusedResNet;
export function fuseForInference(model: Module): Module;
export function fuseForInference(model: Module): Module {
  // tidy frees the folding's temporaries; the copy's tensors are kept by the modules holding them.
  return tidy(() => noGrad(() => inferenceCopy(model, ''))).eval().requiresGrad_(false);
}

type Copier = (m: Module, path: string) => Module;
const at = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** How each known module type is copied, keyed by exact class. */
const COPIERS = new Map<unknown, Copier>([
  [ResNet, (m, p) => fusedResNet(m as ResNet, p)],
  [BasicBlock, (m, p) => fusedBlock(m as BasicBlock, p, 2)],
  [Bottleneck, (m, p) => fusedBlock(m as Bottleneck, p, 3)],
  [Sequential, (m, p) => fusedSequential(m as Sequential, p)],
  [Conv2d, (m, p) => fusedConv(m, null, false, p, '')],
  [Linear, (m) => copyLinear(m as Linear)],
  [MaxPool2d, (m) => {
    const { kernelSize, stride, padding, dilation, ceilMode } = m as MaxPool2d;
    return new MaxPool2d(kernelSize, { stride, padding, dilation, ceilMode });
  }],
  [AvgPool2d, (m) => {
    const { kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride } = m as AvgPool2d;
    return new AvgPool2d(kernelSize, { stride, padding, ceilMode, countIncludePad, divisorOverride });
  }],
  [AdaptiveAvgPool2d, (m) => new AdaptiveAvgPool2d((m as AdaptiveAvgPool2d).outputSize)],
  [Flatten, (m) => new Flatten((m as Flatten).startDim, (m as Flatten).endDim)],
  [Dropout, (m) => new Dropout((m as Dropout).p)],
  [ReLU, () => new ReLU()],
  [Sigmoid, () => new Sigmoid()],
  [Tanh, () => new Tanh()],
  [SiLU, () => new SiLU()],
  [GELU, (m) => new GELU((m as GELU).approximate)],
  [ELU, (m) => new ELU((m as ELU).alpha)],
  [LeakyReLU, (m) => new LeakyReLU((m as LeakyReLU).negativeSlope)],
  [Hardtanh, (m) => new Hardtanh((m as Hardtanh).minVal, (m as Hardtanh).maxVal)],
  [Softplus, (m) => new Softplus((m as Softplus).beta, (m as Softplus).threshold)],
  [Softmax, (m) => new Softmax((m as Softmax).dim)],
  [LogSoftmax, (m) => new LogSoftmax((m as LogSoftmax).dim)],
  [Identity, () => new Identity()],
]);

function inferenceCopy(m: Module, path: string): Module {
  const copy = COPIERS.get(m.constructor);
  if (copy) return copy(m, path);
  const what = `fuseForInference: '${path || '(the model)'}' is a ${m.constructor.name}`;
  if (m instanceof BatchNormBase) throw new Error(`${what} that does not follow a Conv2d: there is no convolution to fold it into`);
  throw new Error(`${what}, which it cannot copy: it knows ResNet, BasicBlock, Bottleneck, Sequential and ` +
    "nodegrad's layers, by exact class (a subclass may have another forward)");
}

/** conv → norm (folded; a BatchNorm, an Identity or null) → relu? as one FusedConv2d with new tensors. */
function fusedConv(conv: Module, norm: Module | null, relu: boolean, convPath: string, normPath: string): FusedConv2d {
  if (conv.constructor !== Conv2d) throw new Error(`fuseForInference: '${convPath}' is a ${conv.constructor.name}, not a Conv2d`);
  const c = conv as Conv2d;
  if (norm instanceof BatchNormBase) {
    const { weight, bias } = foldConvBn(c, norm, `fuseForInference: ${normPath}`);
    return new FusedConv2d(c, weight, bias, { relu });
  }
  if (norm && norm.constructor !== Identity) {
    throw new Error(`fuseForInference: '${normPath}' is a ${norm.constructor.name}: only a BatchNorm folds into the convolution before it`);
  }
  return new FusedConv2d(c, clone(c.weight), c.bias && clone(c.bias), { relu });
}

function checkRelu(m: Module, path: string): void {
  if (m.constructor !== ReLU) {
    throw new Error(`fuseForInference: '${path}' is a ${m.constructor.name}: only a ReLU runs as the convolution's epilogue`);
  }
}

function fusedResNet(m: ResNet, path: string): FusedResNet {
  checkRelu(m.relu, at(path, 'relu'));
  const copy = (name: 'maxpool' | 'layer1' | 'layer2' | 'layer3' | 'layer4' | 'avgpool' | 'fc') => inferenceCopy(m[name], at(path, name));
  return new FusedResNet({
    conv1: fusedConv(m.conv1, m.bn1, true, at(path, 'conv1'), at(path, 'bn1')),
    maxpool: copy('maxpool'), layer1: copy('layer1'), layer2: copy('layer2'), layer3: copy('layer3'), layer4: copy('layer4'),
    avgpool: copy('avgpool'), fc: copy('fc'),
  });
}

/** conv<i> · bn<i> · relu for i = 1..k; the block's ReLU ends every one (the last after the residual add). */
function fusedBlock(b: BasicBlock | Bottleneck, path: string, k: number): FusedBlock {
  checkRelu(b.relu, at(path, 'relu'));
  const kids = b as unknown as Record<string, Module>;
  const convs = Array.from({ length: k }, (_, i) =>
    fusedConv(kids[`conv${i + 1}`]!, kids[`bn${i + 1}`]!, true, at(path, `conv${i + 1}`), at(path, `bn${i + 1}`)));
  return new FusedBlock(convs, b.downsample && inferenceCopy(b.downsample, at(path, 'downsample')));
}

/**
 * Each Conv2d with the BatchNorm and ReLU that follow it as one FusedConv2d under the conv's name;
 * the folded positions become Identity, so the other children keep their names (downsample.0).
 */
function fusedSequential(s: Sequential, path: string): Sequential {
  const kids = [...s.namedChildren(false)];
  const out = new Sequential();
  for (let i = 0; i < kids.length; i++) {
    const [name, m] = kids[i]!;
    if (m.constructor !== Conv2d) {
      out.registerModule(name, inferenceCopy(m, at(path, name)));
      continue;
    }
    const norm = kids[i + 1]?.[1] instanceof BatchNormBase ? kids[i + 1]! : null;
    const after = kids[i + (norm ? 2 : 1)];
    const relu = after?.[1].constructor === ReLU ? after : null;
    out.registerModule(name, fusedConv(m, norm?.[1] ?? null, relu !== null, at(path, name), norm ? at(path, norm[0]) : ''));
    for (const absorbed of [norm, relu]) if (absorbed) out.registerModule(absorbed[0], new Identity());
    i += (norm ? 1 : 0) + (relu ? 1 : 0);
  }
  return out;
}

/** A Linear holding copies of l's tensors, built without the init whose random values would be overwritten. */
function copyLinear(l: Linear): Linear {
  const c = skipInit(() => new Linear(l.inFeatures, l.outFeatures, { bias: l.bias !== null, device: l.weight.device }));
  const allocated = [c.weight, c.bias];
  c.registerParameter('weight', clone(l.weight));
  c.registerParameter('bias', l.bias && clone(l.bias));
  for (const t of allocated) t?.dispose();
  return c;
}
