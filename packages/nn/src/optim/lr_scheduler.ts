/**
 * Learning-rate schedulers with PyTorch 2's semantics (torch.optim.lr_scheduler): each `step()`
 * advances `lastEpoch` and sets every group's lr from its current lr (the "chainable" form, so
 * schedulers can be combined); the constructor performs the first step (lastEpoch 0; resuming at
 * lastEpoch k, that step leaves the lr as the optimizer holds it, for LinearLR and
 * CosineAnnealingLR as PyTorch's initial mode). `getLastLr()` is what the last step set. Call
 * `scheduler.step()` after `optimizer.step()`.
 */
import type { Optimizer, ParamGroup } from './optimizer.js';

/** What every scheduler offers, SequentialLR included. */
export interface Scheduler {
  readonly optimizer: Optimizer<ParamGroup>;
  lastEpoch: number;
  step(): void;
  getLastLr(): number[];
  stateDict(): Record<string, unknown>;
  loadStateDict(dict: Record<string, unknown>): void;
}

/** `lastEpoch`: -1 to start a schedule; another value resumes one (groups need `initialLr`). */
export interface SchedulerOptions {
  lastEpoch?: number;
}

export abstract class LRScheduler implements Scheduler {
  /** The lr each group's schedule is relative to (the groups' `initialLr`). */
  baseLrs: number[];
  lastEpoch: number;
  /** PyTorch's `_step_count`: steps taken, the constructor's included. */
  protected stepCount = 0;
  protected lastLr: number[] = [];
  /** True during the constructor's step (PyTorch's `_is_initial`). */
  protected isInitial = false;

  protected constructor(protected readonly name: string, readonly optimizer: Optimizer<ParamGroup>, lastEpoch: number) {
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) throw new Error(`${name}: invalid lastEpoch ${lastEpoch}: must be an integer >= -1`);
    const groups = optimizer.paramGroups;
    groups.forEach((g, i) => {
      if (lastEpoch === -1) g.initialLr ??= g.lr;
      else if (g.initialLr === undefined) {
        throw new Error(`${name}: param group ${i} has no initialLr, needed to resume at lastEpoch ${lastEpoch}`);
      }
    });
    this.baseLrs = groups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  /**
   * Resets the step count and takes the first step. Subclass constructors call it last, once
   * their options are set (PyTorch's base constructor does it, but a TypeScript base class runs
   * before the subclass's fields exist). SequentialLR calls it to restart its first scheduler.
   */
  initialStep(): void {
    this.stepCount = 0;
    this.isInitial = true;
    try {
      this.step();
    } finally {
      this.isInitial = false;
    }
  }

  /** The lrs from the groups' current ones (chainable form), for the new `lastEpoch`. */
  protected abstract getLr(): number[];

  /** The lrs as a function of `lastEpoch` and `baseLrs` alone (closed form). */
  protected abstract closedFormLr(): number[];

  /**
   * Advances one step and sets the groups' lr. `epoch` (deprecated in PyTorch; SequentialLR
   * uses it to restart a scheduler at 0) jumps to that epoch using the closed form.
   */
  step(epoch?: number): void {
    this.stepCount++;
    this.updateLr(epoch);
  }

  /**
   * The lr update of a step without counting it (PyTorch's `_update_lr`): SequentialLR restarts
   * the next scheduler with it at a milestone.
   */
  updateLr(epoch?: number): void {
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr();
    }
    const groups = this.optimizer.paramGroups;
    groups.forEach((g, i) => { g.lr = values[i]!; });
    this.lastLr = groups.map((g) => g.lr);
  }

  /** The lr of each group as the last step set it. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  protected groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The scheduler's own options, under PyTorch's attribute names. */
  protected abstract options(): Record<string, unknown>;

  /** Restores the options from a state dict (checked). */
  protected abstract loadOptions(dict: Record<string, unknown>): void;

  /** PyTorch's layout: the scheduler's attributes (`base_lrs`, `last_epoch`, `_step_count`, `_last_lr`, options). */
  stateDict(): Record<string, unknown> {
    return {
      ...this.options(),
      base_lrs: [...this.baseLrs], last_epoch: this.lastEpoch, _step_count: this.stepCount, _last_lr: [...this.lastLr],
    };
  }

  /** Restores `stateDict()`'s values; restore the optimizer's state too (it holds the groups' lr). */
  loadStateDict(dict: Record<string, unknown>): void {
    const where = `${this.name}.loadStateDict`;
    const n = this.optimizer.paramGroups.length;
    const baseLrs = numberList(where, 'base_lrs', dict.base_lrs, n);
    const lastLr = numberList(where, '_last_lr', dict._last_lr, n);
    const lastEpoch = integer(where, 'last_epoch', dict.last_epoch);
    const stepCount = integer(where, '_step_count', dict._step_count);
    this.loadOptions(dict);
    Object.assign(this, { baseLrs, lastLr, lastEpoch, stepCount });
  }
}

/** Checks a state-dict entry is a list of `n` finite numbers. */
export function numberList(where: string, key: string, v: unknown, n: number): number[] {
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`${where}: '${key}' must be a list of ${n} numbers (one per param group), got ${JSON.stringify(v)}`);
  }
  return [...v] as number[];
}

/** Checks a state-dict entry is an integer. */
export function integer(where: string, key: string, v: unknown): number {
  if (!Number.isInteger(v)) throw new Error(`${where}: '${key}' must be an integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function finite(where: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: invalid ${key} ${String(v)}: must be a finite number`);
  return v;
}

function positiveInt(where: string, key: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) <= 0) throw new Error(`${where}: invalid ${key} ${String(v)}: must be a positive integer`);
  return v as number;
}

/**
 * Multiplies the lr by `gamma` every `stepSize` steps.
 * @example new StepLR(opt, 30, { gamma: 0.1 }) // lr 0.1 for steps 0-29, 0.01 for 30-59, ...
 */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;

  constructor(optimizer: Optimizer<ParamGroup>, stepSize: number, { gamma = 0.1, lastEpoch = -1 }: { gamma?: number } & SchedulerOptions = {}) {
    super('StepLR', optimizer, lastEpoch);
    this.stepSize = positiveInt('StepLR', 'stepSize', stepSize);
    this.gamma = finite('StepLR', 'gamma', gamma);
    this.initialStep();
  }

  protected override getLr(): number[] {
    const lrs = this.groupLrs();
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return lrs;
    return lrs.map((lr) => lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }

  protected override options() { return { step_size: this.stepSize, gamma: this.gamma }; }
  protected override loadOptions(d: Record<string, unknown>): void {
    const stepSize = positiveInt('StepLR.loadStateDict', 'step_size', d.step_size);
    this.gamma = finite('StepLR.loadStateDict', 'gamma', d.gamma);
    this.stepSize = stepSize;
  }
}

/**
 * Multiplies the lr by `gamma` at each milestone (a milestone listed twice applies gamma twice).
 * @example new MultiStepLR(opt, [30, 80], { gamma: 0.1 })
 */
export class MultiStepLR extends LRScheduler {
  /** Milestone -> how many times it was listed (PyTorch's Counter). */
  milestones: Map<number, number>;
  gamma: number;

  constructor(optimizer: Optimizer<ParamGroup>, milestones: number[], { gamma = 0.1, lastEpoch = -1 }: { gamma?: number } & SchedulerOptions = {}) {
    super('MultiStepLR', optimizer, lastEpoch);
    if (!Array.isArray(milestones)) throw new Error('MultiStepLR: milestones must be a list of integers');
    this.milestones = new Map();
    for (const m of milestones) {
      if (!Number.isInteger(m) || m < 0) throw new Error(`MultiStepLR: invalid milestone ${String(m)}: must be an integer >= 0`);
      this.milestones.set(m, (this.milestones.get(m) ?? 0) + 1);
    }
    this.gamma = finite('MultiStepLR', 'gamma', gamma);
    this.initialStep();
  }

  protected override getLr(): number[] {
    const count = this.milestones.get(this.lastEpoch);
    const lrs = this.groupLrs();
    return count === undefined ? lrs : lrs.map((lr) => lr * this.gamma ** count);
  }

  protected override closedFormLr(): number[] {
    let passed = 0;
    for (const [m, c] of this.milestones) if (m <= this.lastEpoch) passed += c;
    return this.baseLrs.map((b) => b * this.gamma ** passed);
  }

  protected override options() {
    const sorted = [...this.milestones].sort((a, b) => a[0] - b[0]);
    return { milestones: Object.fromEntries(sorted.map(([m, c]) => [String(m), c])), gamma: this.gamma };
  }

  protected override loadOptions(d: Record<string, unknown>): void {
    const where = 'MultiStepLR.loadStateDict';
    const ms = d.milestones;
    if (ms === null || typeof ms !== 'object' || Array.isArray(ms)) throw new Error(`${where}: 'milestones' must be an object {milestone: count}`);
    const map = new Map<number, number>();
    for (const [k, c] of Object.entries(ms)) map.set(integer(where, `milestones key ${k}`, Number(k)), positiveInt(where, `milestones[${k}]`, c));
    this.gamma = finite(where, 'gamma', d.gamma);
    this.milestones = map;
  }
}

/**
 * Cosine annealing from the base lr to `etaMin` over `tMax` steps (SGDR without restarts; past
 * tMax the chainable form climbs back, as PyTorch's does).
 * @example new CosineAnnealingLR(opt, 100, { etaMin: 1e-5 })
 */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;

  constructor(optimizer: Optimizer<ParamGroup>, tMax: number, { etaMin = 0, lastEpoch = -1 }: { etaMin?: number } & SchedulerOptions = {}) {
    super('CosineAnnealingLR', optimizer, lastEpoch);
    this.tMax = positiveInt('CosineAnnealingLR', 'tMax', tMax);
    this.etaMin = finite('CosineAnnealingLR', 'etaMin', etaMin);
    this.initialStep();
  }

  protected override getLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    const lrs = this.groupLrs();
    if (this.isInitial) return lrs;
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((b) => etaMin + (b - etaMin) * (1 + Math.cos((e * Math.PI) / T)) / 2);
    }
    // Python's % takes the divisor's sign; e - 1 - T may be negative.
    if (pyMod(e - 1 - T, 2 * T) === 0) {
      return lrs.map((lr, i) => lr + (this.baseLrs[i]! - etaMin) * (1 - Math.cos(Math.PI / T)) / 2);
    }
    return lrs.map((lr) => (1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T)) * (lr - etaMin) + etaMin);
  }

  protected override closedFormLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    return this.baseLrs.map((b) => etaMin + (b - etaMin) * (1 + Math.cos((Math.PI * e) / T)) / 2);
  }

  protected override options() { return { T_max: this.tMax, eta_min: this.etaMin }; }
  protected override loadOptions(d: Record<string, unknown>): void {
    const tMax = positiveInt('CosineAnnealingLR.loadStateDict', 'T_max', d.T_max);
    this.etaMin = finite('CosineAnnealingLR.loadStateDict', 'eta_min', d.eta_min);
    this.tMax = tMax;
  }
}

/**
 * Scales the lr linearly from startFactor to endFactor over totalIters steps (a warm-up when
 * startFactor < endFactor), then keeps it.
 * @example new LinearLR(opt, { startFactor: 0.1, totalIters: 5 })
 */
export class LinearLR extends LRScheduler {
  startFactor: number;
  endFactor: number;
  totalIters: number;

  constructor(optimizer: Optimizer<ParamGroup>,
    { startFactor = 1 / 3, endFactor = 1, totalIters = 5, lastEpoch = -1 }:
    { startFactor?: number; endFactor?: number; totalIters?: number } & SchedulerOptions = {}) {
    super('LinearLR', optimizer, lastEpoch);
    [this.startFactor, this.endFactor, this.totalIters] = checkLinear('LinearLR', startFactor, endFactor, totalIters);
    this.initialStep();
  }

  protected override getLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    const lrs = this.groupLrs();
    if (e === 0) return lrs.map((lr) => lr * s);
    if (this.isInitial || e > n) return lrs;
    return lrs.map((lr) => lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }

  protected override closedFormLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((f - s) * Math.min(n, e)) / n));
  }

  protected override options() {
    return { start_factor: this.startFactor, end_factor: this.endFactor, total_iters: this.totalIters };
  }

  protected override loadOptions(d: Record<string, unknown>): void {
    [this.startFactor, this.endFactor, this.totalIters] =
      checkLinear('LinearLR.loadStateDict', d.start_factor, d.end_factor, d.total_iters);
  }
}

function checkLinear(where: string, s: unknown, f: unknown, n: unknown): [number, number, number] {
  // startFactor 0 would divide by zero in the chainable form (PyTorch 1.13 fails the same way).
  if (typeof s !== 'number' || !(s > 0 && s <= 1)) throw new Error(`${where}: invalid startFactor ${String(s)}: must be in (0, 1]`);
  if (typeof f !== 'number' || !(f >= 0 && f <= 1)) throw new Error(`${where}: invalid endFactor ${String(f)}: must be in [0, 1]`);
  return [s, f, positiveInt(where, 'totalIters', n)];
}

function pyMod(a: number, b: number): number {
  return ((a % b) + b) % b;
}
