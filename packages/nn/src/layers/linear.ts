/** Linear, Identity and Flatten: the dense layer and two shape utilities, as torch.nn. */
import { defaultDevice, flatten, linear, zeros, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { kaimingUniform_, uniform_ } from '../init.js';
import { py } from './repr.js';

export interface LinearOptions {
  bias?: boolean;
  dtype?: 'float32' | 'float64';
  device?: string;
}

/**
 * y = x W^T + b with `weight` [out, in] and optional `bias` [out].
 * @example new Linear(512, 10)
 */
export class Linear extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    for (const [name, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new Error(`Linear: ${name} must be a non-negative integer, got ${v}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const t = { dtype: opts.dtype ?? 'float32', device: opts.device ?? defaultDevice() };
    this.registerParameter('weight', zeros([outFeatures, inFeatures], t));
    this.registerParameter('bias', opts.bias ?? true ? zeros([outFeatures], t) : null);
    this.resetParameters();
  }

  /** PyTorch's default init: kaiming_uniform_(a = sqrt(5)), i.e. U(±1/sqrt(in)), for weight and bias. */
  resetParameters(): void {
    if (this.inFeatures > 0) kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const bound = this.inFeatures > 0 ? 1 / Math.sqrt(this.inFeatures) : 0;
      uniform_(this.bias, -bound, bound);
    }
  }

  override forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${py(this.bias !== null)}`;
  }
}

/** Returns its input unchanged (a placeholder, e.g. to drop a model's head). */
export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

/** Flattens dims startDim..endDim into one, as torch.nn.Flatten (startDim 1 keeps the batch dim). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }

  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}
