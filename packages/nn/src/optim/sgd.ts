/** SGD with momentum, dampening, Nesterov momentum and L2 weight decay: torch.optim.SGD's rule. */
import { checkOptionNames, sgdStepList_, zerosLike, type Tensor } from '@nodegrad/autograd';
import { checkBoolean, checkNonNegative, fusedLists, Optimizer, type ParamGroup, type Params } from './optimizer.js';

export interface SGDOptions {
  /** Learning rate (default 1e-3, as PyTorch 2). */
  lr?: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty: weightDecay * p is added to the gradient. */
  weightDecay?: number;
  nesterov?: boolean;
  /** Ascend the objective instead of descending it. */
  maximize?: boolean;
}

export interface SGDGroup extends ParamGroup {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/**
 * Stochastic gradient descent, as torch.optim.SGD (Sutskever et al. momentum):
 *   g = grad (+ weightDecay p);  buf = g on the first step, else momentum buf + (1 - dampening) g;
 *   d = nesterov ? g + momentum buf : buf;  p -= lr d.
 * @example const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
 */
export class SGD extends Optimizer<SGDGroup> {
  constructor(params: Params<SGDGroup>, opts: SGDOptions = {}) {
    checkOptionNames('SGD', opts, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov', 'maximize']);
    super('SGD', params, {
      lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false,
      ...opts,
    });
  }

  protected override checkOptions(o: Partial<SGDGroup>, where: string): void {
    checkNonNegative(where, 'lr', o.lr);
    checkNonNegative(where, 'momentum', o.momentum);
    if (o.dampening !== undefined && (typeof o.dampening !== 'number' || !Number.isFinite(o.dampening))) {
      throw new Error(`${where}: invalid dampening ${String(o.dampening)}: must be a finite number`);
    }
    checkNonNegative(where, 'weightDecay', o.weightDecay);
    checkBoolean(where, 'nesterov', o.nesterov);
    checkBoolean(where, 'maximize', o.maximize);
    if (o.nesterov && (!(o.momentum! > 0) || o.dampening !== 0)) {
      throw new Error(`${where}: nesterov requires momentum > 0 and dampening 0 ` +
        `(got momentum ${String(o.momentum)}, dampening ${String(o.dampening)})`);
    }
  }

  protected override updateGroup(group: SGDGroup, params: Tensor[]): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    // Without momentum there is no state (PyTorch 2 leaves it empty). With momentum, the first
    // step makes the buffer: the kernel writes buf = g into it (PyTorch clones g).
    const fresh = new Set<Tensor>();
    if (momentum !== 0) {
      for (const p of params) {
        const state = this.stateOf(p);
        if (!state.momentum_buffer) { state.momentum_buffer = zerosLike(p); fresh.add(p); }
      }
    }
    for (const list of fusedLists(params, (p) => Number(fresh.has(p)))) {
      const bufs = momentum !== 0 ? list.map((p) => this.stateOf(p).momentum_buffer as Tensor) : null;
      sgdStepList_(list, list.map((p) => p.grad!), bufs,
        { lr, momentum, dampening, weightDecay, nesterov, maximize, firstStep: fresh.has(list[0]!) });
    }
  }
}
