/**
 * The eval-mode fast path of the ResNet stem and blocks. In inference BatchNorm is a per-channel
 * affine map, so conv → bn folds into one convolution (fuse.ts's formulas), and the ReLU after it,
 * or a block's residual add and final ReLU, become the convolution's epilogue: conv2dFused runs
 * conv → bn (→ + identity) (→ relu) as one kernel (oneDNN post-ops on 'cpu'). Unlike fuseConvBn
 * the model is left as it is: the folded tensors are cached beside it and refolded when a tensor
 * they come from is replaced or changed in place (its version counter moves).
 */
import { conv2dFused, isGradEnabled, keep, tidy, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { BatchNormBase, Conv2d, Identity, ReLU, Sequential } from '../layers/index.js';
import { foldConvBn } from './fuse.js';

/** One conv → bn pair as a single convolution: conv2dFused's weight and bias, the conv's geometry. */
interface Folded {
  weight: Tensor;
  bias: Tensor | null;
  conv: Conv2d;
}

/** The tensors a fold reads, each with its version: the fold is current while all are the same. */
function sources(conv: Conv2d, bn: BatchNormBase): unknown[] {
  const ts = [conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var];
  return [...ts.flatMap((t) => [t, t?.version]), bn.eps];
}

/** A plain layer reached without its `call()`: hooks on it would be skipped, so it must have none. */
function plain(m: Module | null): boolean {
  return m !== null && !m.hasHooks();
}

/** Whether bn is an eval-mode BatchNorm over conv's output channels, with running statistics. */
function foldable(conv: Conv2d, bn: Module): bn is BatchNormBase {
  if (!(bn instanceof BatchNormBase) || bn.training || !bn.running_mean || !bn.running_var) return false;
  const w = conv.weight;
  return [bn.running_mean, bn.running_var, bn.weight, bn.bias].every((t) =>
    !t || (t.shape.length === 1 && t.shape[0] === w.shape[0] && t.dtype === w.dtype && t.device === w.device));
}

/** Whether m is a ReLU that may run as a post-op. */
export function isPlainRelu(m: Module | null): boolean {
  return m instanceof ReLU && plain(m);
}

/** [conv, norm] of a downsample Sequential(conv1x1, norm), or null for any other module. */
export function sequentialPair(m: Module | null): [Module, Module] | null {
  if (!(m instanceof Sequential) || !plain(m)) return null;
  const kids = m.children();
  return kids.length === 2 ? [kids[0]!, kids[1]!] : null;
}

/** relu?(bn(conv(x)) + residual) as one conv2dFused call. */
export function runFolded(f: Folded, x: Tensor, residual: Tensor | null = null, relu = false): Tensor {
  const { stride, padding, dilation, groups } = f.conv;
  return conv2dFused(x, f.weight, f.bias, { stride, padding, dilation, groups, residual, relu });
}

/**
 * A module's folded conv → bn pairs, by name. The folded tensors outlive any `tidy` (they are
 * kept) and are freed when refolded, or by `clear()` when the module trains again.
 */
export class ConvBnFolds {
  private readonly entries = new Map<string, { sources: unknown[]; folded: Folded }>();

  /**
   * Whether owner's forward on x may take the fused path: eval mode, and nothing for the tape to
   * record. A training-mode forward frees the cache: its weights are about to change.
   */
  applies(owner: Module, x: Tensor): boolean {
    if (owner.training) {
      this.clear();
      return false;
    }
    return !(isGradEnabled() && (x.requiresGrad || owner.parameters().some((p) => p.requiresGrad)));
  }

  /**
   * conv → bn as one convolution, refolded only when a source tensor changed; null when the pair
   * cannot fold (another layer type, hooks, a BN in training mode or without running statistics).
   * A BN already folded away by fuseConvBn (an Identity) leaves the conv's own weight and bias.
   */
  get(name: string, conv: Module | null, bn: Module | null): Folded | null {
    if (!(conv instanceof Conv2d) || !plain(conv) || !plain(bn)) return null;
    if (bn instanceof Identity) return { weight: conv.weight, bias: conv.bias, conv };
    if (!foldable(conv, bn!)) return null;
    const now = sources(conv, bn);
    const entry = this.entries.get(name);
    if (entry && entry.folded.conv === conv && now.every((s, i) => s === entry.sources[i])) return entry.folded;
    if (entry) free(entry.folded);
    const { weight, bias } = tidy(() => foldConvBn(conv, bn, `eval fusion: ${name}`));
    const folded = { weight: keep(weight), bias: keep(bias), conv };
    this.entries.set(name, { sources: now, folded });
    return folded;
  }

  /** Frees every folded tensor. */
  clear(): void {
    for (const { folded } of this.entries.values()) free(folded);
    this.entries.clear();
  }
}

function free(f: Folded): void {
  f.weight.dispose();
  f.bias?.dispose();
}
