/** Activations and Dropout as modules, each over its autograd function, printing as torch.nn's. */
import {
  dropout, elu, gelu, hardtanh, leakyRelu, logSoftmax, relu, sigmoid, silu, softmax, softplus, tanh, type Tensor,
} from '@nodegrad/autograd';
import { Module } from '../module.js';
import { pyFloat } from './repr.js';

// No inplace option on these: the tape differentiates the functional form.

/** max(0, x) elementwise. */
export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** 1 / (1 + exp(-x)). */
export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  override forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** x sigmoid(x) (swish). */
export class SiLU extends Module {
  override forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** x Phi(x), or its tanh approximation. */
export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new Error(`GELU: approximate must be 'none' or 'tanh', got '${String(approximate)}'`);
    }
  }

  override forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }

  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

export class ELU extends Module {
  constructor(readonly alpha = 1) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }

  override extraRepr(): string {
    return `alpha=${pyFloat(this.alpha)}`;
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }

  override extraRepr(): string {
    return `negative_slope=${pyFloat(this.negativeSlope)}`;
  }
}

export class Hardtanh extends Module {
  constructor(readonly minVal = -1, readonly maxVal = 1) {
    super();
    if (minVal > maxVal) throw new Error(`Hardtanh: minVal ${minVal} is greater than maxVal ${maxVal}`);
  }

  override forward(x: Tensor): Tensor {
    return hardtanh(x, this.minVal, this.maxVal);
  }

  override extraRepr(): string {
    return `min_val=${pyFloat(this.minVal)}, max_val=${pyFloat(this.maxVal)}`;
  }
}

export class Softplus extends Module {
  constructor(readonly beta = 1, readonly threshold = 20) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return softplus(x, this.beta, this.threshold);
  }

  override extraRepr(): string {
    return `beta=${pyFloat(this.beta)}, threshold=${pyFloat(this.threshold)}`;
  }
}

/**
 * Softmax and LogSoftmax: a dim is required. PyTorch's default (None) guesses one from the rank
 * with a deprecation warning, a guess that differs between 3-d and 4-d inputs.
 */
abstract class AlongDim extends Module {
  constructor(readonly dim: number) {
    super();
    if (!Number.isInteger(dim)) {
      throw new Error(`${new.target.name}: dim must be an integer (the dim to normalize over), got ${String(dim)}`);
    }
  }

  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** exp(x) / sum(exp(x)) along dim. */
export class Softmax extends AlongDim {
  override forward(x: Tensor): Tensor {
    return softmax(x, this.dim);
  }
}

/** log(softmax(x)) along dim, computed stably. */
export class LogSoftmax extends AlongDim {
  override forward(x: Tensor): Tensor {
    return logSoftmax(x, this.dim);
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
