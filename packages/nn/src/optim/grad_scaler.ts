/**
 * GradScaler: torch.amp.GradScaler's dynamic loss scaling for float16 training. The loss is
 * multiplied by the scale before backward so that small gradients survive float16's range; the
 * gradients are divided by it again before the optimizer uses them (`unscale_`, which clipping
 * should follow), a step whose gradients hold an inf or NaN is skipped, and `update()` backs the
 * scale off after such a step and grows it after `growthInterval` clean ones in a row.
 *
 * The inf/NaN check stays on the device: each gradient contributes sum(g * 0), which is 0 when
 * every element is finite and NaN otherwise, to one running sum; `step` reads that one number.
 */
import { add, fmt, mul, noGrad, sum, type Tensor } from '@nodegrad/autograd';
import type { Optimizer } from './optimizer.js';

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
  /** 0 when every gradient was finite, NaN otherwise (a device scalar, read once by step). */
  check: Tensor | null;
  foundInf: boolean | null;
}

export class GradScaler {
  private scaleValue: number;
  private readonly growthFactor: number;
  private readonly backoffFactor: number;
  private readonly growthInterval: number;
  private growthTracker = 0;
  private readonly enabled: boolean;
  private perOptimizer = new Map<Optimizer, PerOptimizer>();

  constructor(opts: GradScalerOptions = {}) {
    const { initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000, enabled = true } = opts;
    if (!(initScale > 0 && Number.isFinite(initScale))) throw new Error(`GradScaler: initScale must be a positive finite number, got ${initScale}`);
    if (!(growthFactor > 1)) throw new Error(`GradScaler: growthFactor must be > 1, got ${growthFactor}`);
    if (!(backoffFactor > 0 && backoffFactor < 1)) throw new Error(`GradScaler: backoffFactor must be in (0, 1), got ${backoffFactor}`);
    if (!(Number.isInteger(growthInterval) && growthInterval > 0)) {
      throw new Error(`GradScaler: growthInterval must be a positive integer, got ${growthInterval}`);
    }
    this.scaleValue = initScale;
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

  /** loss * scale, in the loss's dtype; the loss itself when disabled. */
  scale(loss: Tensor): Tensor {
    return this.enabled ? mul(loss, this.scaleValue) : loss;
  }

  private stateOf(optimizer: Optimizer): PerOptimizer {
    let s = this.perOptimizer.get(optimizer);
    if (!s) this.perOptimizer.set(optimizer, (s = { unscaled: false, stepped: false, check: null, foundInf: null }));
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
    const inv = 1 / this.scaleValue;
    noGrad(() => {
      for (const group of optimizer.paramGroups) {
        for (const p of group.params) {
          const g = p.grad;
          if (!g) continue;
          // float16 gradients would overflow where the scaled ones did; PyTorch refuses them too.
          if (g.dtype === 'float16') {
            throw new Error(`GradScaler.unscale_: a parameter of shape ${fmt(p.shape)} has a float16 gradient; ` +
              'keep the parameters float32 and let autocast cast them (mixed precision), or train without the scaler');
          }
          g.mul_(inv);
          const bad = sum(mul(g, 0)).to('float32');
          s.check = s.check ? add(s.check, bad.to(s.check.device)) : bad;
        }
      }
    });
    s.unscaled = true;
  }

  /**
   * optimizer.step() unless a gradient was inf or NaN (unscaling first if `unscale_` was not
   * called); returns what step returned, or undefined when skipped. One value is read back.
   */
  step(optimizer: Optimizer, closure?: () => Tensor): Tensor | undefined {
    if (!this.enabled) return optimizer.step(closure);
    const s = this.stateOf(optimizer);
    if (s.stepped) throw new Error('GradScaler.step: already called on this optimizer since the last update()');
    if (!s.unscaled) this.unscale_(optimizer);
    s.foundInf = s.check ? Number.isNaN(s.check.item()) : false;
    s.check = null;
    s.stepped = true;
    return s.foundInf ? undefined : optimizer.step(closure);
  }

  /**
   * Adjusts the scale after the step(s) of this iteration: backoff when any optimizer found an
   * inf or NaN, growth after `growthInterval` clean iterations in a row. `newScale` sets it instead.
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    if (newScale !== undefined) {
      if (!(newScale > 0 && Number.isFinite(newScale))) throw new Error(`GradScaler.update: newScale must be positive and finite, got ${newScale}`);
      this.scaleValue = newScale;
    } else {
      const states = [...this.perOptimizer.values()].filter((s) => s.foundInf !== null);
      if (states.length === 0) throw new Error('GradScaler.update: no step() was recorded since the last update()');
      if (states.some((s) => s.foundInf)) {
        this.scaleValue *= this.backoffFactor;
        this.growthTracker = 0;
      } else if (++this.growthTracker === this.growthInterval) {
        // As torch's _amp_update_scale_: grow only to a finite scale.
        const grown = this.scaleValue * this.growthFactor;
        if (Number.isFinite(Math.fround(grown))) this.scaleValue = grown;
        this.growthTracker = 0;
      }
    }
    this.perOptimizer = new Map();
  }

  stateDict(): GradScalerStateDict {
    return {
      scale: this.scaleValue, growth_factor: this.growthFactor, backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval, _growth_tracker: this.growthTracker,
    };
  }

  /** Restores the scale and the growth count (the factors are the constructor's, as configuration). */
  loadStateDict(state: GradScalerStateDict): void {
    if (!(state && state.scale > 0 && Number.isInteger(state._growth_tracker) && state._growth_tracker >= 0)) {
      throw new Error(`GradScaler.loadStateDict: expected { scale > 0, _growth_tracker >= 0 }, got ${JSON.stringify(state)}`);
    }
    this.scaleValue = state.scale;
    this.growthTracker = state._growth_tracker;
  }
}
