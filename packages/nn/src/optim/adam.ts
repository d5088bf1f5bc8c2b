/**
 * Adam (weight decay as an L2 term in the gradient) and AdamW (decoupled weight decay), with
 * the update of PyTorch's single-tensor implementation (Kingma & Ba, Algorithm 1, with the bias
 * corrections folded into the step size; Loshchilov & Hutter for AdamW). As in PyTorch 2, the
 * two differ only in `decoupledWeightDecay`'s default, a per-group option.
 */
import { adamStepList_, checkOptionNames, zerosLike, type Tensor } from '@nodegrad/autograd';
import { checkBoolean, checkNonNegative, fusedLists, Optimizer, type ParamGroup, type Params } from './optimizer.js';

export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moment averages (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay (default 0.01). */
  weightDecay?: number;
  /** Normalize by the running maximum of the second moment (Reddi et al., AMSGrad). */
  amsgrad?: boolean;
  /** Ascend the objective instead of descending it. */
  maximize?: boolean;
  /** Weight decay shrinks the parameter (p *= 1 - lr weightDecay) instead of entering the gradient. Adam: false, AdamW: true. */
  decoupledWeightDecay?: boolean;
}

export interface AdamGroup extends ParamGroup {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  decoupledWeightDecay: boolean;
}

const ADAM_OPTIONS = ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad', 'maximize', 'decoupledWeightDecay'] as const;

abstract class AdamBase extends Optimizer<AdamGroup> {
  protected constructor(name: string, params: Params<AdamGroup>, opts: AdamOptions, weightDecay: number, decoupledWeightDecay: boolean) {
    checkOptionNames(name, opts, ADAM_OPTIONS);
    super(name, params, {
      lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay, amsgrad: false, maximize: false, decoupledWeightDecay, ...opts,
    });
  }

  protected override checkOptions(o: Partial<AdamGroup>, where: string): void {
    checkNonNegative(where, 'lr', o.lr);
    checkNonNegative(where, 'eps', o.eps);
    checkNonNegative(where, 'weightDecay', o.weightDecay);
    if (o.betas !== undefined) {
      if (!Array.isArray(o.betas) || o.betas.length !== 2) {
        throw new Error(`${where}: invalid betas ${String(o.betas)}: must be a pair [beta1, beta2]`);
      }
      o.betas.forEach((b, i) => {
        if (typeof b !== 'number' || !(b >= 0 && b < 1)) {
          throw new Error(`${where}: invalid betas[${i}] ${String(b)}: must be in [0, 1)`);
        }
      });
    }
    checkBoolean(where, 'amsgrad', o.amsgrad);
    checkBoolean(where, 'maximize', o.maximize);
    checkBoolean(where, 'decoupledWeightDecay', o.decoupledWeightDecay);
  }

  protected override updateGroup(group: AdamGroup, params: Tensor[]): void {
    const { lr, betas: [beta1, beta2], eps, weightDecay, amsgrad, maximize, decoupledWeightDecay: decoupled } = group;
    for (const p of params) {
      const s = this.stateOf(p);
      if (s.step === undefined) {
        s.step = 0;
        s.exp_avg = zerosLike(p);
        s.exp_avg_sq = zerosLike(p);
      }
      s.step = (s.step as number) + 1;
      // Also a state saved without amsgrad and loaded into a group with it starts its maximum here.
      if (amsgrad) s.max_exp_avg_sq ??= zerosLike(p);
    }
    // Parameters that joined later have their own step count, and so their own call.
    for (const list of fusedLists(params, (p) => this.stateOf(p).step as number)) {
      const state = (key: string) => list.map((p) => this.stateOf(p)[key] as Tensor);
      adamStepList_(list, list.map((p) => p.grad!), state('exp_avg'), state('exp_avg_sq'),
        amsgrad ? state('max_exp_avg_sq') : null,
        { lr, beta1, beta2, eps, weightDecay, decoupled, amsgrad, maximize, step: this.stateOf(list[0]!).step as number });
    }
  }
}

/**
 * Adam, as torch.optim.Adam: weight decay is an L2 term added to the gradient.
 * @example const opt = new Adam(model.parameters(), { lr: 3e-4 });
 */
export class Adam extends AdamBase {
  constructor(params: Params<AdamGroup>, opts: AdamOptions = {}) {
    super('Adam', params, opts, 0, false);
  }
}

/**
 * AdamW, as torch.optim.AdamW: before the Adam update, p *= 1 - lr * weightDecay (default 0.01).
 * @example const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.05 });
 */
export class AdamW extends AdamBase {
  constructor(params: Params<AdamGroup>, opts: AdamOptions = {}) {
    super('AdamW', params, opts, 0.01, true);
  }
}
