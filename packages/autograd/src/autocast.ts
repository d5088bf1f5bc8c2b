/**
 * autocast: PyTorch's automatic mixed precision as a scope. Inside `autocast({ device, dtype }, fn)`
 * the ops on that device type cast their float inputs by the op's policy (torch's autocast lists):
 * - 'lower': convolution, matmul, bmm, linear run in the low type (bfloat16 or float16);
 * - 'float32': softmax, logSoftmax, crossEntropy, nllLoss, mseLoss, exp, log, pow, sum and mean
 *   run in float32, where the low type would lose range or precision;
 * - 'promote': ops of several inputs (arithmetic, comparisons, where, cat, stack) cast every float
 *   input to the widest of their types, as torch.result_type (a 0-d tensor widens only 0-d ones);
 * every other op runs in its inputs' type. float64 tensors with dimensions are never cast down (as
 * PyTorch); a 0-d one beside float32 ones with dimensions is, as the op's own promotion would.
 * A float32 leaf that requires grad (a weight) is cast to the low type once per outermost scope
 * and the cast reused, not once per call. Backward runs with autocast off: each gradient op runs
 * in the types its forward chose.
 */
import { isFloat, promoteFloat, type DType, type FloatDType, type HalfDType } from './dtype.js';
import { isGradEnabled } from './grad_mode.js';
import { isHeldByScope, tidyDepth } from './scope.js';
import type { Tensor } from './tensor.js';

/** The device types autocast knows: 'cpu' covers the host devices ('cpu' and 'ts'), 'cuda' every 'cuda:N'. */
export type AutocastDevice = 'cpu' | 'cuda';

export interface AutocastOptions {
  device: AutocastDevice;
  /** The low type; default bfloat16 on 'cpu' and float16 on 'cuda', as PyTorch. */
  dtype?: HalfDType;
  /** false turns autocast off for fn (inside an enabled scope too); default true. */
  enabled?: boolean;
  /** Reuse weight casts within the outermost scope; default true. */
  cacheEnabled?: boolean;
}

export type CastPolicy = 'lower' | 'float32' | 'promote';

interface State { enabled: boolean; dtype: HalfDType; cache: boolean }

const DEFAULT_DTYPE: Record<AutocastDevice, HalfDType> = { cpu: 'bfloat16', cuda: 'float16' };
const state: Record<AutocastDevice, State> = {
  cpu: { enabled: false, dtype: 'bfloat16', cache: true },
  cuda: { enabled: false, dtype: 'float16', cache: true },
};
let depth = 0;
let suspended = false;

/**
 * Weight casts of the outermost scope: leaf -> low type -> its cast, the leaf's version it was made
 * from (an in-place update inside the scope makes it stale), and whether a tidy scope recorded it
 * (then it is valid only while one still holds it).
 */
interface Cached { cast: Tensor; version: number; tracked: boolean }
const castCache = new Map<Tensor, Map<DType, Cached>>();
/** A cached weight cast -> the float32 leaf it was made from (autocastMaster). */
const masters = new WeakMap<Tensor, Tensor>();

/**
 * Runs fn with autocast set for one device type; the previous setting comes back after it.
 * fn must be synchronous, as in `noGrad`.
 * @example const loss = autocast({ device: 'cpu', dtype: 'bfloat16' }, () => crossEntropy(model.forward(x), y));
 */
export function autocast<T>(opts: AutocastOptions, fn: () => T): T {
  const { device } = opts;
  if (device !== 'cpu' && device !== 'cuda') throw new Error(`autocast: device must be 'cpu' or 'cuda', got '${String(device)}'`);
  const dtype = opts.dtype ?? DEFAULT_DTYPE[device];
  if (dtype !== 'bfloat16' && dtype !== 'float16') {
    throw new Error(`autocast: dtype must be 'bfloat16' or 'float16', got '${String(dtype)}'`);
  }
  const prev = state[device];
  state[device] = { enabled: opts.enabled ?? true, dtype, cache: opts.cacheEnabled ?? true };
  depth++;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('autocast: fn must be synchronous (it returned a Promise)');
    return result;
  } finally {
    state[device] = prev;
    // As PyTorch: the weight casts live until the outermost scope exits.
    if (--depth === 0) castCache.clear();
  }
}

/** Whether autocast is on for a device type (and not suspended by a backward). */
export function isAutocastEnabled(device: AutocastDevice = 'cpu'): boolean {
  return state[device].enabled && !suspended;
}

/** @internal Whether autocast may cast anything now (some device type on, not suspended): ops skip it otherwise. */
export function anyAutocast(): boolean {
  return !suspended && (state.cpu.enabled || state.cuda.enabled);
}

/** The low type autocast uses on a device type. */
export function autocastDType(device: AutocastDevice = 'cpu'): HalfDType {
  return state[device].dtype;
}

/** @internal Runs fn with every autocast scope off: the engine's backward. */
export function withoutAutocast<T>(fn: () => T): T {
  const prev = suspended;
  suspended = true;
  try {
    return fn();
  } finally {
    suspended = prev;
  }
}

function deviceType(t: Tensor): AutocastDevice {
  return t.device.startsWith('cuda') ? 'cuda' : 'cpu';
}

function castTo(t: Tensor, dtype: DType, canCache: boolean): Tensor {
  if (!canCache) return t.to(dtype);
  let byType = castCache.get(t);
  const hit = byType?.get(dtype);
  if (hit && hit.version === t.storage.version && (!hit.tracked || isHeldByScope(hit.cast.storage.buf))) return hit.cast;
  const cast = t.to(dtype);
  masters.set(cast, t);
  if (!byType) castCache.set(t, (byType = new Map()));
  byType.set(dtype, { cast, version: t.storage.version, tracked: tidyDepth() > 0 && isHeldByScope(cast.storage.buf) });
  return cast;
}

/**
 * @internal The float32 weight a cached autocast cast was made from, or null for any other tensor:
 * conv2d then trains that weight directly (its gradient summed in float32 by the backward-filter
 * kernel) instead of through the cast's backward.
 */
export function autocastMaster(t: Tensor | null | undefined): Tensor | null {
  return t ? masters.get(t) ?? null : null;
}

/**
 * torch.result_type over float tensors: the tensors with dimensions decide, and 0-d ones only when
 * every one is 0-d (a 0-d float32 loss term does not widen a bfloat16 activation).
 */
function resultFloat(floats: readonly Tensor[]): FloatDType {
  const dimensioned = floats.filter((t) => t.ndim > 0);
  return (dimensioned.length ? dimensioned : floats).map((t) => t.dtype as FloatDType).reduce(promoteFloat);
}

/**
 * The inputs as an op under `policy` takes them: unchanged unless autocast is on for their device
 * type. Nulls and non-float tensors pass through.
 */
export function autocastInputs<T extends readonly (Tensor | null | undefined)[]>(policy: CastPolicy, ...inputs: T): T {
  const first = inputs.find((t): t is Tensor => !!t);
  if (!first || suspended) return inputs;
  const s = state[deviceType(first)];
  if (!s.enabled) return inputs;
  const floats = inputs.filter((t): t is Tensor => !!t && isFloat(t.dtype));
  let target: DType;
  if (policy === 'lower') target = s.dtype;
  // float32 ops leave float64 alone, and beside a float64 input the rest promote to it, as the op's
  // own type promotion does in PyTorch (pow(bfloat16, float64) is float64; a 0-d one does not widen).
  else if (policy === 'float32') target = floats.length && resultFloat(floats) === 'float64' ? 'float64' : 'float32';
  else {
    if (floats.length < 2) return inputs;
    target = resultFloat(floats);
  }
  return inputs.map((t) => {
    if (!t || !isFloat(t.dtype) || t.dtype === target || deviceType(t) !== deviceType(first)) return t;
    // Autocast never casts float64 (PyTorch); a 0-d one beside float32 ones with dimensions is cast
    // as the op's own type promotion would, since nodegrad's ops take one dtype.
    if (t.dtype === 'float64' && (policy === 'lower' || (policy === 'float32' && t.ndim > 0))) return t;
    // Only weights are cached: a float32 leaf that requires grad, cast down while recording.
    const canCache = s.cache && policy === 'lower' && t.dtype === 'float32' && t.isLeaf && t.requiresGrad &&
      t.viewBase === null && isGradEnabled();
    return castTo(t, target, canCache);
  }) as unknown as T;
}
