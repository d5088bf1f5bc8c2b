/**
 * SequentialLR: runs one scheduler after another, switching at the milestones (PyTorch 2's
 * torch.optim.lr_scheduler.SequentialLR). The usual use is a warm-up:
 *   new SequentialLR(opt, [new LinearLR(opt, { startFactor: 0.1, totalIters: 5 }),
 *                          new CosineAnnealingLR(opt, 95)], [5])
 */
import type { Optimizer, ParamGroup } from './optimizer.js';
import { integer, numberList, type LRScheduler, type Scheduler, type SchedulerOptions } from './lr_scheduler.js';

export class SequentialLR implements Scheduler {
  lastEpoch: number;
  readonly milestones: number[];
  private lastLr: number[];

  /**
   * The schedulers must all drive `optimizer`; milestone i is the step at which scheduler i + 1
   * takes over (restarted at its epoch 0), so there is one milestone fewer than schedulers.
   * Milestones are increasing integers >= 0 (PyTorch does not check; 0 starts at the second scheduler).
   */
  constructor(readonly optimizer: Optimizer<ParamGroup>, readonly schedulers: LRScheduler[], milestones: number[],
    { lastEpoch = -1 }: SchedulerOptions = {}) {
    if (!Array.isArray(schedulers) || schedulers.length === 0) throw new Error('SequentialLR: schedulers must be a non-empty list');
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) {
        throw new Error(`SequentialLR: schedulers[${i}] drives a different optimizer than the one passed in`);
      }
    });
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1) {
      throw new Error(`SequentialLR: expected ${schedulers.length - 1} milestones (one fewer than the ` +
        `${schedulers.length} schedulers), got ${Array.isArray(milestones) ? milestones.length : String(milestones)}`);
    }
    milestones.forEach((m, i) => {
      if (!Number.isInteger(m) || m < 0 || (i > 0 && m <= milestones[i - 1]!)) {
        throw new Error(`SequentialLR: invalid milestones ${JSON.stringify(milestones)}: must be increasing integers >= 0`);
      }
    });
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) throw new Error(`SequentialLR: invalid lastEpoch ${lastEpoch}: must be an integer >= -1`);
    this.milestones = [...milestones];
    this.lastEpoch = lastEpoch + 1;
    // Each scheduler's constructor already stepped once and changed the lr: go back to the
    // initial lr, undo those steps and restart only the scheduler in force at step 0.
    for (const g of optimizer.paramGroups) g.lr = g.initialLr!;
    for (const s of schedulers) s.lastEpoch -= 1;
    const first = schedulers[bisectRight(this.milestones, 0)]!;
    first.initialStep();
    this.lastLr = first.getLastLr();
  }

  /** Advances one step, handing over to the next scheduler (restarted at epoch 0) at a milestone. */
  step(): void {
    this.lastEpoch++;
    const idx = bisectRight(this.milestones, this.lastEpoch);
    const s = this.schedulers[idx]!;
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.updateLr(0);
    else s.step();
    this.lastLr = s.getLastLr();
  }

  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** PyTorch's layout: `_milestones`, `last_epoch`, `_last_lr` and each scheduler's state in `_schedulers`. */
  stateDict(): Record<string, unknown> {
    return {
      _milestones: [...this.milestones], last_epoch: this.lastEpoch, _last_lr: [...this.lastLr],
      _schedulers: this.schedulers.map((s) => s.stateDict()),
    };
  }

  loadStateDict(dict: Record<string, unknown>): void {
    const where = 'SequentialLR.loadStateDict';
    const subs = dict._schedulers;
    if (!Array.isArray(subs) || subs.length !== this.schedulers.length) {
      throw new Error(`${where}: '_schedulers' must hold ${this.schedulers.length} scheduler states`);
    }
    const ms = dict._milestones;
    if (!Array.isArray(ms) || ms.length !== this.milestones.length || ms.some((m, i) => m !== this.milestones[i])) {
      throw new Error(`${where}: '_milestones' ${JSON.stringify(ms)} differ from this scheduler's ${JSON.stringify(this.milestones)}`);
    }
    const lastLr = numberList(where, '_last_lr', dict._last_lr, this.optimizer.paramGroups.length);
    const lastEpoch = integer(where, 'last_epoch', dict.last_epoch);
    subs.forEach((s, i) => this.schedulers[i]!.loadStateDict(s as Record<string, unknown>));
    this.lastLr = lastLr;
    this.lastEpoch = lastEpoch;
  }
}

/** The number of entries of the sorted list `a` that are <= x (Python's bisect_right). */
function bisectRight(a: readonly number[], x: number): number {
  let i = 0;
  while (i < a.length && a[i]! <= x) i++;
  return i;
}
