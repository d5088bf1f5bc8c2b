/**
 * checkParity: one function on several backends, outputs and gradients compared with a
 * reference backend. This is how a native kernel is held to the 'ts' backend: the same inputs,
 * the same weighted loss, element by element within tolerance.
 */
import type { KernelName } from '../backend.js';
import { backends as availableBackends } from '../registry.js';
import { undeclared } from './backends.js';
import { isFloat, isHalf, type DType } from '../dtype.js';
import { grad } from '../engine.js';
import { enableGrad } from '../grad_mode.js';
import { fromTypedArray } from '../ops/creation.js';
import { stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';

export interface ParityOptions {
  /**
   * Backends to run on; the first is the reference. Default: every available backend, 'ts' first.
   */
  backends?: string[];
  /** Absolute tolerance; default by the result's dtype (`DEFAULT_TOLERANCE`). */
  atol?: number;
  /** Relative tolerance; default by the result's dtype (`DEFAULT_TOLERANCE`). */
  rtol?: number;
  /** Return false instead of throwing on a mismatch. */
  raiseException?: boolean;
  /**
   * Kernels and dtypes fn runs: with the default backend list, backends that do not declare them
   * are left out (a list given in `backends` is used as it is).
   */
  needs?: readonly (readonly [KernelName, DType])[];
}

type Fn = (...inputs: Tensor[]) => Tensor | Tensor[];

/**
 * Default tolerances per result dtype. The half types allow about two units in the last place
 * (bfloat16 keeps 8 significant bits, float16 11) over what a float32 accumulation leaves.
 */
export const DEFAULT_TOLERANCE: Record<DType, { atol: number; rtol: number }> = {
  float32: { atol: 1e-5, rtol: 1e-4 }, float64: { atol: 1e-10, rtol: 1e-7 },
  bfloat16: { atol: 1e-2, rtol: 1.6e-2 }, float16: { atol: 1e-3, rtol: 2e-3 },
  int32: { atol: 0, rtol: 0 }, int64: { atol: 0, rtol: 0 },
};

interface Run {
  outs: { shape: readonly number[]; dtype: DType; data: Float64Array }[];
  /** Per input: the gradient of the weighted loss, or null for inputs that do not require grad. */
  grads: (Float64Array | null)[];
  /** What the backward threw, if it did. */
  backwardError?: string;
}

/** A fixed generator for the loss weights, so parity runs never disturb the user's seeded stream. */
function weights(n: number, seed: number): Float64Array {
  let s = (seed * 2654435761) >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1; // uniform in [-1, 1)
  });
}

/**
 * fn on fresh copies of the inputs on `device`; `promote` turns float32 inputs into float64 (the
 * reference for float32 runs). Gradients are those of sum_k sum(out_k * w_k).
 */
function runOn(fn: Fn, inputs: Tensor[], device: string, promote: boolean): Run {
  const copies = inputs.map((t) => {
    const dtype: DType = promote && t.dtype === 'float32' ? 'float64' : t.dtype;
    const c = fromTypedArray(t.toTypedArray(), t.shape, { dtype, device });
    c.requiresGrad = t.requiresGrad;
    return c;
  });
  const result = enableGrad(() => fn(...copies));
  const outs = Array.isArray(result) ? result : [result];
  const diff = copies.filter((c) => c.requiresGrad);
  const roots = outs.filter((o) => o.requiresGrad && isFloat(o.dtype));
  let grads: (Float64Array | null)[] = copies.map(() => null);
  let backwardError: string | undefined;
  if (diff.length && roots.length) try {
    const gs = grad(roots, diff, {
      gradOutputs: roots.map((o) => fromTypedArray(weights(o.size, outs.indexOf(o) + 1), o.shape, { dtype: o.dtype, device })),
      allowUnused: true,
    });
    let k = 0;
    grads = copies.map((c) => {
      if (!c.requiresGrad) return null;
      const g = gs[k++];
      return g ? Float64Array.from(g.toTypedArray()) : new Float64Array(c.size);
    });
  } catch (e) {
    // Keep the outputs: their comparison usually says more than the backward's error.
    backwardError = (e as Error).message;
  }
  return {
    outs: outs.map((o) => ({ shape: o.shape, dtype: o.dtype, data: Float64Array.from(o.toTypedArray()) })),
    grads, backwardError,
  };
}

function indexOf(shape: readonly number[], flat: number): string {
  const st = stridesOf(shape);
  return `[${st.map((s, d) => Math.floor(flat / s) % shape[d]!).join(', ')}]`;
}

/** The worst element of `got` against `want`, or null when all are within tolerance. */
function compare(what: string, shape: readonly number[], dtype: DType, got: Float64Array, want: Float64Array,
  opts: ParityOptions): string | null {
  const atol = opts.atol ?? DEFAULT_TOLERANCE[dtype].atol;
  const rtol = opts.rtol ?? DEFAULT_TOLERANCE[dtype].rtol;
  let worst = -1, worstExcess = 0, bad = 0;
  for (let i = 0; i < got.length; i++) {
    const a = got[i]!, r = want[i]!;
    // Equal values pass (infinities included), and so do NaNs in the same place.
    if (a === r || (Number.isNaN(a) && Number.isNaN(r))) continue;
    const excess = Math.abs(a - r) - (atol + rtol * Math.abs(r));
    if (excess > 0 || Number.isNaN(excess)) {
      bad++;
      if (worst < 0 || !(excess <= worstExcess)) { worst = i; worstExcess = excess; }
    }
  }
  if (worst < 0) return null;
  return `${what}: ${bad} of ${got.length} elements differ; worst element ${indexOf(shape, worst)}: ` +
    `${got[worst]} vs ${want[worst]} (|diff| ${Math.abs(got[worst]! - want[worst]!)}, atol ${atol}, rtol ${rtol})`;
}

/**
 * Runs fn on every backend and compares its outputs, and the gradients of the inputs that require
 * grad, with the first backend's. When an input is float32 the reference runs in float64, and
 * every backend (the first included) is checked in float32 against it. With a half-type input
 * (bfloat16, float16; beside float32 ones, as autocast mixes them) nothing is promoted: the first
 * backend's own run is the reference, the 'ts' backend's rounding emulation when it is 'ts'.
 * True, or throws a report naming the backend, the output or input, and the worst element.
 */
export function checkParity(fn: Fn, inputs: Tensor[], opts: ParityOptions = {}): boolean {
  const list = opts.backends ?? [
    'ts', ...availableBackends().filter((b) => b.available && b.name !== 'ts' && !undeclared(b.name, opts.needs))
      .map((b) => b.name),
  ];
  if (!list.length) throw new Error('checkParity: no backends to compare');
  const [refName] = list as [string];
  // A float64 beside a half type is no mix any op accepts (autocast mixes float32 with them).
  const promote = inputs.some((t) => t.dtype === 'float32') && !inputs.some((t) => isHalf(t.dtype));
  const ref = runOn(fn, inputs, refName, promote);
  if (ref.backwardError) throw new Error(`checkParity: the reference backend '${refName}' failed in backward: ${ref.backwardError}`);
  const refLabel = `'${refName}'${promote ? ' (float64 reference)' : ''}`;
  const problems: string[] = [];
  // Without promotion the reference run is the first backend's own run: nothing to compare it to.
  for (const name of promote ? list : list.slice(1)) {
    let run: Run;
    try {
      run = runOn(fn, inputs, name, false);
    } catch (e) {
      problems.push(`backend '${name}' threw: ${(e as Error).message}`);
      continue;
    }
    if (run.backwardError) problems.push(`backend '${name}' backward threw: ${run.backwardError}`);
    if (run.outs.length !== ref.outs.length) {
      problems.push(`backend '${name}': ${run.outs.length} outputs, ${refLabel} gave ${ref.outs.length}`);
      continue;
    }
    run.outs.forEach((o, i) => {
      const r = ref.outs[i]!;
      if (o.shape.join() !== r.shape.join()) {
        problems.push(`backend '${name}' output ${i}: shape [${o.shape.join(', ')}], ${refLabel} gave [${r.shape.join(', ')}]`);
        return;
      }
      const p = compare(`backend '${name}' output ${i} vs ${refLabel}`, o.shape, o.dtype, o.data, r.data, opts);
      if (p) problems.push(p);
    });
    run.grads.forEach((g, i) => {
      if (!g) return;
      const p = compare(`backend '${name}' gradient of input ${i} vs ${refLabel}`, inputs[i]!.shape, inputs[i]!.dtype,
        g, ref.grads[i]!, opts);
      if (p) problems.push(p);
    });
  }
  if (!problems.length) return true;
  if (opts.raiseException === false) return false;
  throw new Error(`checkParity: ${problems.length} mismatch${problems.length > 1 ? 'es' : ''}\n  ${problems.join('\n  ')}`);
}
