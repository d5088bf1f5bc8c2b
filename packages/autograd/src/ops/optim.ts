/**
 * Fused optimizer updates: one kernel call updates a list of parameters and their state in place
 * (STYLE.md rule 3: optimizer steps are kernels because speed needs it: the composite form
 * allocates a temporary per elementwise op, and one call per parameter costs a launch each on a
 * GPU, as torch's `_fused_adam_` avoids). `sgdStep_` / `adamStep_` update one parameter,
 * `sgdStepList_` / `adamStepList_` many with the same hyperparameters. Not differentiable: like
 * any in-place write to a leaf that requires grad, they run under noGrad() (Optimizer.step does),
 * and each bumps the version counter of every tensor it writes, so a graph that saved one of
 * them is caught.
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

/** Lists keyed by the one-tensor op's argument names ('param', 'grad', ...); entry i belongs to param i. */
type Lists = Record<string, readonly Tensor[]>;

/**
 * Checks the tensors of an update: Tensors, float, one device and dtype over all of them, each
 * entry of its lead's shape (the first written list: 'param'); no two written tensors may share
 * storage, and nothing may require grad while recording. In errors an argument is 'grad' for the
 * one-tensor op, 'grads[3]' for the list op.
 */
function checkArgs(op: string, list: boolean, written: Lists, read: Lists): void {
  const all: Lists = { ...written, ...read };
  const lead = Object.keys(written)[0]!;
  const params = written[lead]!;
  const name = (arg: string, i: number) => (list ? `${arg}s[${i}]` : arg);
  for (const [arg, ts] of Object.entries(all)) {
    if (!Array.isArray(ts)) throw new Error(`${op}: '${arg}s' must be an array of Tensors`);
    if (ts.length !== params.length) throw new Error(`${op}: '${arg}s' has ${ts.length} tensors but '${lead}s' has ${params.length}`);
  }
  const owners = new Map<unknown, { n: string; i: number }>();
  params.forEach((param, i) => {
    const entry = Object.fromEntries(Object.entries(all).map(([arg, ts]) => [name(arg, i), ts[i]!]));
    for (const [n, t] of Object.entries(entry)) checkTensor(op, n, t);
    const pName = name(lead, i);
    checkFloat(op, pName, param);
    checkSame(op, i === 0 ? entry : { [name(lead, 0)]: params[0]!, ...entry });
    for (const [n, t] of Object.entries(entry)) {
      if (t.shape.length !== param.shape.length || t.shape.some((d, k) => d !== param.shape[k])) {
        throw new Error(`${op}: '${n}' has shape ${fmt(t.shape)} but '${pName}' has shape ${fmt(param.shape)}`);
      }
    }
    for (const arg of Object.keys(written)) {
      const n = name(arg, i), t = written[arg]![i]!;
      const other = owners.get(t.storage);
      if (other) throw new Error(`${op}: '${other.n}' and '${n}' share storage (${fmt(t.shape)}); each tensor the update writes must be its own`);
      owners.set(t.storage, { n, i });
    }
    if (isGradEnabled()) {
      const [n, t] = Object.entries(entry).find(([, x]) => x.requiresGrad) ?? [];
      if (t) {
        throw new Error(`${op}: '${n}' (${fmt(t.shape)}) requires grad and gradients are being recorded; ` +
          'an in-place update of parameters, state or gradients is not differentiable: run it under noGrad()');
      }
    }
  });
  // A tensor read may share its own entry's written storage (each element is read before it is
  // written, by the same thread), not another entry's: the entries of a list step run at once on a
  // GPU, so that read would race with the other entry's write.
  for (const arg of Object.keys(read)) {
    read[arg]!.forEach((t, i) => {
      const owner = owners.get(t.storage);
      if (owner && owner.i !== i) {
        throw new Error(`${op}: '${name(arg, i)}' shares storage with '${owner.n}' (${fmt(t.shape)}), which the step writes`);
      }
    });
  }
}

function checkNumbers(op: string, o: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`${op}: option '${k}' must be a number or a boolean, got ${String(v)}`);
  }
}

/** Marks in-place writes: views share the storage and with it the counter. */
function bump(...lists: (readonly Tensor[] | null)[]): void {
  for (const ts of lists) for (const t of ts ?? []) t.markWritten();
}

/** A state list an option needs (the option's value named in the error), else null. */
function needed(op: string, needs: string | null, arg: string, ts: readonly Tensor[] | null, params: readonly Tensor[],
  list: boolean): readonly Tensor[] | null {
  if (needs === null) return null;
  const ok = list ? Array.isArray(ts) : ts !== null && ts[0] instanceof Tensor;
  if (!ok) {
    const what = list ? `'${arg}s', a buffer per parameter` : `'${arg}' of shape ${fmt(params[0]?.shape ?? [])}`;
    throw new Error(`${op}: ${needs} needs ${what}, got ${String(list ? ts : ts?.[0])}`);
  }
  return ts;
}

function sgdSteps(op: string, list: boolean, params: readonly Tensor[], grads: readonly Tensor[],
  momentumBufs: readonly Tensor[] | null, opts: SGDStepOptions): void {
  const o: SGDStepParams = {
    momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, firstStep: false, ...opts,
  };
  checkNumbers(op, o as unknown as Record<string, unknown>);
  if (!Array.isArray(params)) throw new Error(`${op}: 'params' must be an array of Tensors`);
  const bufs = needed(op, o.momentum !== 0 ? `momentum ${o.momentum}` : null, 'momentumBuf', momentumBufs, params, list);
  checkArgs(op, list, bufs ? { param: params, momentumBuf: bufs } : { param: params }, { grad: grads });
  if (params.length === 0) return;
  kernels(params[0]!).SGDStep(params, grads, bufs, o);
  bump(params, bufs);
}

function adamSteps(op: string, list: boolean, params: readonly Tensor[], grads: readonly Tensor[],
  expAvgs: readonly Tensor[], expAvgSqs: readonly Tensor[], maxExpAvgSqs: readonly Tensor[] | null,
  opts: AdamStepOptions): void {
  const o: AdamStepParams = {
    beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, amsgrad: false, maximize: false, ...opts,
  };
  checkNumbers(op, o as unknown as Record<string, unknown>);
  // t = 0 would divide by 1 - beta1^0 = 0.
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`${op}: step must be an integer >= 1 (t, counted from 1), got ${o.step}`);
  if (!Array.isArray(params)) throw new Error(`${op}: 'params' must be an array of Tensors`);
  const vmax = needed(op, o.amsgrad ? 'amsgrad' : null, 'maxExpAvgSq', maxExpAvgSqs, params, list);
  const written = { param: params, expAvg: expAvgs, expAvgSq: expAvgSqs };
  checkArgs(op, list, vmax ? { ...written, maxExpAvgSq: vmax } : written, { grad: grads });
  if (params.length === 0) return;
  kernels(params[0]!).AdamStep(params, grads, expAvgs, expAvgSqs, vmax, o);
  bump(params, expAvgs, expAvgSqs, vmax);
}

/**
 * One torch.optim.SGD update of `param` in place, from `grad`, with the momentum buffer updated
 * in place too (required when momentum != 0, ignored otherwise):
 *   g = ±grad + wd p;  buf = firstStep ? g : momentum buf + (1 - dampening) g;
 *   p -= lr (nesterov ? g + momentum buf : buf)   (p -= lr g without momentum).
 * @example noGrad(() => sgdStep_(w, w.grad!, buf, { lr: 0.1, momentum: 0.9, firstStep }));
 */
export function sgdStep_(param: Tensor, grad: Tensor, momentumBuf: Tensor | null, opts: SGDStepOptions): Tensor {
  sgdSteps('sgdStep_', false, [param], [grad], momentumBuf === null ? null : [momentumBuf], opts);
  return param;
}

/**
 * sgdStep_ over many parameters at once, with the same hyperparameters (firstStep included):
 * one kernel call, which a GPU runs in few launches. Entry i of each list belongs to params[i];
 * all must be on one device and of one dtype.
 * @example noGrad(() => sgdStepList_(ws, ws.map((w) => w.grad!), bufs, { lr: 0.1, momentum: 0.9 }));
 */
export function sgdStepList_(params: readonly Tensor[], grads: readonly Tensor[], momentumBufs: readonly Tensor[] | null,
  opts: SGDStepOptions): readonly Tensor[] {
  sgdSteps('sgdStepList_', true, params, grads, momentumBufs, opts);
  return params;
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
  adamSteps('adamStep_', false, [param], [grad], [expAvg], [expAvgSq], maxExpAvgSq === null ? null : [maxExpAvgSq], opts);
  return param;
}

/**
 * adamStep_ over many parameters at once, with the same hyperparameters (step included): one
 * kernel call, which a GPU runs in few launches. Entry i of each list belongs to params[i]; all
 * must be on one device and of one dtype.
 * @example noGrad(() => adamStepList_(ws, grads, ms, vs, null, { lr: 1e-3, step: 1 }));
 */
export function adamStepList_(params: readonly Tensor[], grads: readonly Tensor[], expAvgs: readonly Tensor[],
  expAvgSqs: readonly Tensor[], maxExpAvgSqs: readonly Tensor[] | null, opts: AdamStepOptions): readonly Tensor[] {
  adamSteps('adamStepList_', true, params, grads, expAvgs, expAvgSqs, maxExpAvgSqs, opts);
  return params;
}

/**
 * GradScaler's unscale as torch's `_amp_foreach_non_finite_check_and_unscale_`, in place: sets
 * `foundInf` (float32, one element, on the gradients' device) to 1 when any element of `grads` is
 * inf or NaN before scaling, leaving it as it was otherwise (zero it first), and multiplies every
 * gradient by `invScale`, rounded to float32 as PyTorch's float32 inv_scale. One kernel call for the
 * list, which must be of one device and dtype; a GPU runs it in few launches.
 * @example const found = zeros([1], { device }); nonFiniteCheckAndUnscale_(grads, found, 1 / 65536);
 */
export function nonFiniteCheckAndUnscale_(grads: readonly Tensor[], foundInf: Tensor, invScale: number): readonly Tensor[] {
  const op = 'nonFiniteCheckAndUnscale_';
  if (!Array.isArray(grads)) throw new Error(`${op}: 'grads' must be an array of Tensors`);
  checkArgs(op, true, { grad: grads }, {});
  checkTensor(op, 'foundInf', foundInf);
  if (foundInf.dtype !== 'float32' || foundInf.size !== 1) {
    throw new Error(`${op}: 'foundInf' must be a float32 tensor of one element, got ${foundInf.dtype} ${fmt(foundInf.shape)}`);
  }
  if (grads.length > 0 && foundInf.device !== grads[0]!.device) {
    throw new Error(`${op}: 'grads[0]' is on device ${grads[0]!.device} but 'foundInf' is on ${foundInf.device}`);
  }
  if (typeof invScale !== 'number' || Number.isNaN(invScale)) throw new Error(`${op}: 'invScale' must be a number, got ${String(invScale)}`);
  if (grads.some((g) => g.storage === foundInf.storage)) throw new Error(`${op}: 'foundInf' shares storage with a gradient`);
  if (grads.length === 0) return grads;
  kernels(grads[0]!).NonFiniteCheckAndUnscale(grads, foundInf, invScale);
  bump(grads, [foundInf]);
  return grads;
}
