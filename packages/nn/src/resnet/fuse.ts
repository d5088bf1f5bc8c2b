/**
 * Conv-BatchNorm folding for inference. In eval mode BatchNorm is the affine map
 * y = (x - mean) * gamma / sqrt(var + eps) + beta, so it folds into the convolution before it:
 *   w' = w * s,  b' = beta + (b - mean) * s,  with s = gamma / sqrt(var + eps) per output channel.
 */
import { add, mul, noGrad, ones, reshape, rsqrt, sub, zeros, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { BatchNormBase, Conv2d, Identity, Sequential } from '../layers/index.js';

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
  const kids = new Map(m.namedChildren());
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
export function foldConvBn(conv: Conv2d, bn: BatchNormBase, where: string): { weight: Tensor; bias: Tensor } {
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
