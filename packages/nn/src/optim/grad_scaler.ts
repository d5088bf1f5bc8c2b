/**
 * GradScaler: torch.amp.GradScaler's dynamic loss scaling for float16 training. The loss is
 * multiplied by the scale before backward so that small gradients survive float16's range; the
 * gradients are divided by it again before the optimizer uses them (`unscale_`, which clipping
 * should follow), a step whose gradients hold an inf or NaN is skipped, and `update()` backs the
 * scale off after such a step and grows it after `growthInterval` clean ones in a row.
 *
 * The inf/NaN check stays on the device: as torch's GradScaler, the gradients of each device and
 * dtype go through one `nonFiniteCheckAndUnscale_` call, which unscales them and sets that device's
 * found-inf flag; `step` reads one number per device.
 */
import { fmt, isHalf, keep, mul, noGrad, nonFiniteCheckAndUnscale_, zeros, type Tensor } from '@nodegrad/autograd';
import { fusedLists, type Optimizer } from './optimizer.js';

export interface GradScalerOptions {
  /** Default 2^16, as PyTorch. */
  initScale?: number;
  /** Default 2. */
  growthFactor?: number;
  /** Default 0.5. */
  backoffFactor?: number;
  /** Clean steps in a row before the scale grows; default 2000. */
  growthInterval?: number;
  /** false makes every method a pass-through (scale returns the loss, step just steps). */
  enabled?: boolean;
}

/** The serializable state, with PyTorch's keys. */
export interface GradScalerStateDict {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

/** Where an optimizer is between two `update()` calls. */
interface PerOptimizer {
  unscaled: boolean;
  stepped: boolean;
  /** Per device: 1 when a gradient held an inf or NaN, else 0 (read once each, by step or update). */
  foundInf: Map<string, Tensor>;
  /** Whether its gradients held an inf or NaN (so step skipped), once read; null before. */
  skip: boolean | null;
}

function release(s: PerOptimizer): void {
  for (const f of s.foundInf.values()) f.dispose();
  s.foundInf.clear();
}

/** Whether a device's flag is set: one read per device, after which the flags are freed. */
function readFlags(s: PerOptimizer): boolean {
  const values = [...s.foundInf.values()].map((f) => f.item());
  release(s);
  return values.some((v) => v !== 0);
}

/** Why `v` cannot be the scale, kept as a float32 (1e39 would be inf, 1e-50 zero: PyTorch refuses them), or null. */
function scaleProblem(v: number, name: string): string | null {
  const f = Math.fround(v);
  return f > 0 && Number.isFinite(f) ? null : `${name} must be a positive number finite in float32, got ${v}`;
}

/** Why the scale, growth factor, backoff factor and growth interval (under `names`) are unusable, or null. */
function settingsProblem([scale, growth, backoff, interval]: number[], names: string[]): string | null {
  return scaleProblem(scale!, names[0]!) ??
    (growth! > 1 ? null : `${names[1]} must be > 1, got ${growth}`) ??
    (backoff! > 0 && backoff! < 1 ? null : `${names[2]} must be in (0, 1), got ${backoff}`) ??
    (Number.isInteger(interval) && interval! > 0 ? null : `${names[3]} must be a positive integer, got ${interval}`);
}

export class GradScaler {
  /** The scale, a float32 value (PyTorch keeps it in a float32 tensor). */
  private scaleValue: number;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private growthTracker = 0;
  private readonly enabled: boolean;
  private perOptimizer = new Map<Optimizer, PerOptimizer>();

  constructor(opts: GradScalerOptions = {}) {
    const { initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000, enabled = true } = opts;
    const problem = settingsProblem([initScale, growthFactor, backoffFactor, growthInterval],
      ['initScale', 'growthFactor', 'backoffFactor', 'growthInterval']);
    if (problem) throw new Error(`GradScaler: ${problem}`);
    this.scaleValue = Math.fround(initScale);
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
    this.enabled = enabled;
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  /** The current scale (1 when disabled). */
  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
  }

  /**
   * loss * scale; the loss itself when disabled. As PyTorch's product with its 0-d float32 scale:
   * a 0-d half loss becomes float32 (so 65536 x a float16 loss does not overflow), one with
   * dimensions keeps its dtype.
   */
  scale(loss: Tensor): Tensor {
    if (!this.enabled) return loss;
    return mul(isHalf(loss.dtype) && loss.ndim === 0 ? loss.to('float32') : loss, this.scaleValue);
  }

  private stateOf(optimizer: Optimizer): PerOptimizer {
    let s = this.perOptimizer.get(optimizer);
    if (!s) this.perOptimizer.set(optimizer, (s = { unscaled: false, stepped: false, foundInf: new Map(), skip: null }));
    return s;
  }

  /**
   * Divides the gradients of the optimizer's parameters by the scale, in place, and notes on the
   * device whether any is inf or NaN. Call it before clipping; `step` calls it when you did not.
   * Once per optimizer between two `update()` calls.
   */
  unscale_(optimizer: Optimizer): void {
    if (!this.enabled) return;
    const s = this.stateOf(optimizer);
    if (s.unscaled) throw new Error('GradScaler.unscale_: already called on this optimizer since the last update()');
    if (s.stepped) throw new Error('GradScaler.unscale_: called after step(); call it before step()');
    const grads: Tensor[] = [];
    for (const group of optimizer.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (!g) continue;
        // float16 gradients would overflow where the scaled ones did; PyTorch refuses them too.
        if (g.dtype === 'float16') {
          throw new Error(`GradScaler.unscale_: a parameter of shape ${fmt(p.shape)} has a float16 gradient; ` +
            'keep the parameters float32 and let autocast cast them (mixed precision), or train without the scaler');
        }
        grads.push(g);
      }
    }
    // One list per device and dtype, as torch groups them for its fused kernel.
    const lists = fusedLists(grads);
    // As torch: 1 / scale in float64, then float32 (the kernel rounds it).
    const inv = 1 / this.scaleValue;
    let ran = 0;
    try {
      noGrad(() => {
        for (const list of lists) {
          const device = list[0]!.device;
          let found = s.foundInf.get(device);
          // Kept: a tidy around backward and unscale_ may end before step or update reads it.
          if (!found) s.foundInf.set(device, (found = keep(zeros([1], { device }))));
          nonFiniteCheckAndUnscale_(list, found, inv);
          ran++;
        }
      });
    } finally {
      // Once any list is unscaled a second call would unscale it twice: it must fail instead.
      if (ran > 0 || lists.length === 0) s.unscaled = true;
    }
  }

  /**
   * optimizer.step() unless a gradient was inf or NaN (unscaling first if `unscale_` was not
   * called); returns what step returned, or undefined when skipped. One value is read back. A
   * closure is passed on only when the scaler is disabled.
   */
  step(optimizer: Optimizer, closure?: () => Tensor): Tensor | undefined {
    if (!this.enabled) return optimizer.step(closure);
    // The closure's backward would leave scaled gradients that nothing unscales; PyTorch refuses it too.
    if (closure) throw new Error('GradScaler.step: a closure is not supported while the scaler is enabled; run backward on scale(loss) before step()');
    const s = this.stateOf(optimizer);
    if (s.stepped) throw new Error('GradScaler.step: already called on this optimizer since the last update()');
    if (!s.unscaled) this.unscale_(optimizer);
    if (s.foundInf.size === 0) {
      throw new Error('GradScaler.step: no inf checks were recorded for this optimizer: none of its parameters has a gradient');
    }
    s.skip = readFlags(s);
    s.stepped = true;
    return s.skip ? undefined : optimizer.step();
  }

  /**
   * Adjusts the scale after the step(s) of this iteration: backoff when any optimizer found an
   * inf or NaN, growth after `growthInterval` clean iterations in a row. `newScale` sets it instead.
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    if (newScale !== undefined) {
      const problem = scaleProblem(newScale, 'newScale');
      if (problem) throw new Error(`GradScaler.update: ${problem}`);
      this.scaleValue = Math.fround(newScale);
    } else {
      // As torch, the checks of an optimizer unscaled but not stepped count too.
      for (const s of this.perOptimizer.values()) if (s.skip === null && s.foundInf.size > 0) s.skip = readFlags(s);
      const states = [...this.perOptimizer.values()].filter((s) => s.skip !== null);
      if (states.length === 0) {
        throw new Error('GradScaler.update: no inf checks were recorded since the last update() (no unscale_ or step of gradients)');
      }
      if (states.some((s) => s.skip)) {
        this.scaleValue = Math.fround(this.scaleValue * this.backoffFactor);
        this.growthTracker = 0;
      } else if (++this.growthTracker === this.growthInterval) {
        // As torch's _amp_update_scale_: grow only to a finite scale.
        const grown = Math.fround(this.scaleValue * this.growthFactor);
        if (Number.isFinite(grown)) this.scaleValue = grown;
        this.growthTracker = 0;
      }
    }
    this.perOptimizer.forEach(release);
    this.perOptimizer = new Map();
  }

  /** The scale, factors and growth count; `{}` when disabled, as PyTorch's. */
  stateDict(): GradScalerStateDict | Record<string, never> {
    if (!this.enabled) return {};
    return {
      scale: this.scaleValue, growth_factor: this.growthFactor, backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval, _growth_tracker: this.growthTracker,
    };
  }

  /**
   * Restores the scale, the factors and the growth count, as PyTorch's load_state_dict; a disabled
   * scaler ignores it, and an empty dict (a disabled scaler's) is an error for an enabled one.
   */
  loadStateDict(state: GradScalerStateDict | Record<string, never>): void {
    if (!this.enabled) return;
    if (state && typeof state === 'object' && Object.keys(state).length === 0) {
      throw new Error('GradScaler.loadStateDict: the state dict is empty, possibly because it was saved from a disabled GradScaler');
    }
    const s = state as GradScalerStateDict;
    const problem = settingsProblem([s.scale, s.growth_factor, s.backoff_factor, s.growth_interval],
      ['scale', 'growth_factor', 'backoff_factor', 'growth_interval']) ??
      (Number.isInteger(s._growth_tracker) && s._growth_tracker >= 0 ? null : `_growth_tracker must be an integer >= 0, got ${s._growth_tracker}`);
    if (problem) throw new Error(`GradScaler.loadStateDict: expected a scaler's state dict: ${problem}`);
    this.scaleValue = Math.fround(s.scale);
    this.growthFactor = s.growth_factor;
    this.backoffFactor = s.backoff_factor;
    this.growthInterval = s.growth_interval;
    this.growthTracker = s._growth_tracker;
  }
}
