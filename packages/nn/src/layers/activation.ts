/** ReLU and Dropout as modules. */
import { dropout, relu, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { pyFloat } from './repr.js';

/** max(0, x) elementwise. (No inplace option: the tape differentiates the functional form.) */
export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/**
 * Zeroes each element with probability p and scales the rest by 1/(1-p) in training mode;
 * the identity in eval mode. Seeded by autograd's manualSeed.
 */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: dropout probability has to be between 0 and 1, but got ${p}`);
  }

  override forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }

  override extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }
}
