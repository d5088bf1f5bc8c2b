/**
 * Fused optimizer updates: one kernel call per parameter updates it and its state in place
 * (STYLE.md rule 3: optimizer steps are kernels because speed needs it: the composite form
 * allocates a temporary per elementwise op). Not differentiable: like any in-place write to a
 * leaf that requires grad, they run under noGrad() (Optimizer.step does), and each bumps the
 * version counter of every tensor it writes, so a graph that saved one of them is caught.
 */
import type { AdamStepParams, SGDStepParams } from '../backend.js';
import { isGradEnabled } from '../grad_mode.js';
import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { checkFloat, checkSame, checkTensor, kernels } from './util.js';

/** SGD's hyperparameters; lr is required, the rest default to torch.optim.SGD's (all off). */
export type SGDStepOptions = Pick<SGDStepParams, 'lr'> & Partial<SGDStepParams>;
/** Adam's hyperparameters; lr and step (t, from 1) are required, the rest default to torch.optim.Adam's. */
export type AdamStepOptions = Pick<AdamStepParams, 'lr' | 'step'> & Partial<AdamStepParams>;

/**
 * Checks the tensors of one update: Tensors, float, param's device, dtype and shape; written
 * ones (param first) must not share storage, and nothing may require grad while recording.
 */
function checkArgs(op: string, written: Record<string, Tensor>, read: Record<string, Tensor>): void {
  const all = { ...written, ...read };
  for (const [name, t] of Object.entries(all)) checkTensor(op, name, t);
  const [pName, param] = Object.entries(written)[0]!;
  checkFloat(op, pName, param);
  checkSame(op, all);
  for (const [name, t] of Object.entries(all)) {
    if (t.shape.length !== param.shape.length || t.shape.some((d, i) => d !== param.shape[i])) {
      throw new Error(`${op}: '${name}' has shape ${fmt(t.shape)} but '${pName}' has shape ${fmt(param.shape)}`);
    }
  }
  const owners = new Map<unknown, string>();
  for (const [name, t] of Object.entries(written)) {
    const other = owners.get(t.storage);
    if (other) throw new Error(`${op}: '${other}' and '${name}' share storage (${fmt(t.shape)}); each state buffer must be its own tensor`);
    owners.set(t.storage, name);
  }
  if (isGradEnabled()) {
    const [name, t] = Object.entries(all).find(([, x]) => x.requiresGrad) ?? [];
    if (t) {
      throw new Error(`${op}: '${name}' (${fmt(t.shape)}) requires grad and gradients are being recorded; ` +
        'an optimizer update is not differentiable: run it under noGrad()');
    }
  }
}

function checkNumbers(op: string, o: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`${op}: option '${k}' must be a number or a boolean, got ${String(v)}`);
  }
}

/** Marks in-place writes: views share the storage and with it the counter. */
function bump(...ts: (Tensor | null)[]): void {
  for (const t of ts) t?.markWritten();
}

/**
 * One torch.optim.SGD update of `param` in place, from `grad`, with the momentum buffer updated
 * in place too (required when momentum != 0, ignored otherwise):
 *   g = ±grad + wd p;  buf = firstStep ? g : momentum buf + (1 - dampening) g;
 *   p -= lr (nesterov ? g + momentum buf : buf)   (p -= lr g without momentum).
 * @example noGrad(() => sgdStep_(w, w.grad!, buf, { lr: 0.1, momentum: 0.9, firstStep }));
 */
export function sgdStep_(param: Tensor, grad: Tensor, momentumBuf: Tensor | null, opts: SGDStepOptions): Tensor {
  const op = 'sgdStep_';
  const o: SGDStepParams = {
    momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, firstStep: false, ...opts,
  };
  checkNumbers(op, o as unknown as Record<string, unknown>);
  const buf = o.momentum !== 0 ? momentumBuf : null;
  if (o.momentum !== 0 && !(buf instanceof Tensor)) {
    throw new Error(`${op}: momentum ${o.momentum} needs a momentum buffer of shape ${fmt(param?.shape ?? [])}, got ${String(momentumBuf)}`);
  }
  checkArgs(op, buf ? { param, momentumBuf: buf } : { param }, { grad });
  kernels(param).SGDStep(param, grad, buf, o);
  bump(param, buf);
  return param;
}

/**
 * One torch.optim.Adam (decoupled: AdamW) update of `param` in place, with the moment buffers
 * (and with amsgrad their running maximum, required then) updated in place; `step` is t, from 1:
 *   g = ±grad (+ wd p, or p *= 1 - lr wd when decoupled);  m = b1 m + (1 - b1) g;
 *   v = b2 v + (1 - b2) g²;  p -= lr / (1 - b1^t) m / (sqrt(amsgrad ? max v : v) / sqrt(1 - b2^t) + eps).
 * @example noGrad(() => adamStep_(w, w.grad!, m, v, null, { lr: 1e-3, step: 1 }));
 */
export function adamStep_(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor,
  maxExpAvgSq: Tensor | null, opts: AdamStepOptions): Tensor {
  const op = 'adamStep_';
  const o: AdamStepParams = {
    beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, amsgrad: false, maximize: false, ...opts,
  };
  checkNumbers(op, o as unknown as Record<string, unknown>);
  // t = 0 would divide by 1 - beta1^0 = 0.
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`${op}: step must be an integer >= 1 (t, counted from 1), got ${o.step}`);
  const vmax = o.amsgrad ? maxExpAvgSq : null;
  if (o.amsgrad && !(vmax instanceof Tensor)) {
    throw new Error(`${op}: amsgrad needs a maxExpAvgSq buffer of shape ${fmt(param?.shape ?? [])}, got ${String(maxExpAvgSq)}`);
  }
  checkArgs(op, vmax ? { param, expAvg, expAvgSq, maxExpAvgSq: vmax } : { param, expAvg, expAvgSq }, { grad });
  kernels(param).AdamStep(param, grad, expAvg, expAvgSq, vmax, o);
  bump(param, expAvg, expAvgSq, vmax);
  return param;
}
