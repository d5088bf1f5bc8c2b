/** Loss functions as modules (torch.nn.CrossEntropyLoss, NLLLoss, MSELoss) over autograd's ops. */
import { crossEntropy, mseLoss, nllLoss, type LossTarget, type Reduction, type Tensor } from '@nodegrad/autograd';
import { Module } from './module.js';

export interface NLLLossOptions {
  /** A per-class rescaling weight [C]; kept as the buffer `weight`, as PyTorch's _WeightedLoss. */
  weight?: Tensor | null;
  /** Targets equal to this index add nothing to the loss or to the mean's divisor. */
  ignoreIndex?: number;
  reduction?: Reduction;
}

export interface CrossEntropyLossOptions extends NLLLossOptions {
  /** Mixes the target with the uniform distribution: (1 - eps) * target + eps / C. */
  labelSmoothing?: number;
}

/** Shared by the class-weighted losses: the `weight` buffer, ignoreIndex and reduction. */
abstract class WeightedLoss extends Module {
  declare weight: Tensor | null;
  readonly ignoreIndex: number;
  readonly reduction: Reduction;

  constructor(opts: NLLLossOptions = {}) {
    super();
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.reduction = opts.reduction ?? 'mean';
  }
}

/**
 * Cross entropy of logits against class indices or class probabilities, as F.cross_entropy.
 * @example new CrossEntropyLoss({ labelSmoothing: 0.1 }).call(logits, targets)
 */
export class CrossEntropyLoss extends WeightedLoss {
  readonly labelSmoothing: number;

  constructor(opts: CrossEntropyLossOptions = {}) {
    super(opts);
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }

  override forward(input: Tensor, target: LossTarget): Tensor {
    return crossEntropy(input, target, {
      weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction, labelSmoothing: this.labelSmoothing,
    });
  }
}

/** Negative log-likelihood of class indices given log-probabilities, as F.nll_loss. */
export class NLLLoss extends WeightedLoss {
  override forward(input: Tensor, target: LossTarget): Tensor {
    return nllLoss(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction });
  }
}

/** Mean squared error (or its sum, or elementwise), as F.mse_loss. */
export class MSELoss extends Module {
  readonly reduction: Reduction;

  constructor(opts: { reduction?: Reduction } = {}) {
    super();
    this.reduction = opts.reduction ?? 'mean';
  }

  override forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, { reduction: this.reduction });
  }
}
