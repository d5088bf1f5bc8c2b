/**
 * gradcheck / gradgradcheck, as torch.autograd.gradcheck: the numerical Jacobian by central
 * differences in float64 against the analytical one from the tape's VJPs. Fast mode compares one
 * random projection v^T J u instead of the whole Jacobian (PyTorch's fast_mode).
 */
import { isFloat } from '../dtype.js';
import { grad } from '../engine.js';
import { dual } from '../forward_ad.js';
import { enableGrad } from '../grad_mode.js';
import { fromTypedArray } from '../ops/creation.js';
import { hostNormal } from '../random.js';
import { stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Compare random projections of the Jacobians: one backward per output instead of one per element. */
  fastMode?: boolean;
  /** Return false instead of throwing on a mismatch. */
  raiseException?: boolean;
  /**
   * How far two backward passes over the same graph may differ (PyTorch's nondet_tol). The
   * analytical Jacobian is computed twice; a backward that is not reentrant fails beyond this.
   */
  nondetTol?: number;
  /**
   * Also hand fn each input as a strided slice of a larger tensor seen through a view (the
   * non-contiguous inputs of PyTorch's OpInfo tests: here every tensor is contiguous, and a slice
   * is a copy that writes through to its base) and require the same Jacobian, within nondetTol.
   */
  checkNonContiguous?: boolean;
  /**
   * Also compute each Jacobian column in forward mode (a dual input with a unit tangent, as
   * PyTorch's check_forward_ad) and compare it with the numerical one: every op fn uses needs a
   * JVP rule, and each rule must agree with finite differences.
   */
  checkForwardAd?: boolean;
}

/** How a report names the check, its outputs and its inputs (gradgradcheck names them in words). */
interface Wording {
  check: string;
  output: (o: number) => string;
  input: (i: number) => string;
}

const plainWording = (fn: Fn): Wording => ({
  check: `gradcheck(${fn.name || 'fn'})`,
  output: (o) => `output ${o}`,
  input: (i) => `input ${i}`,
});

type Fn = (...inputs: Tensor[]) => Tensor | Tensor[];

function asList(out: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(out) ? out : [out];
}

function indexOf(shape: readonly number[], flat: number): string {
  const st = stridesOf(shape);
  return `[${st.map((s, d) => Math.floor(flat / s) % shape[d]!).join(', ')}]`;
}

function checkInputs(op: string, inputs: Tensor[]): void {
  if (!inputs.some((t) => t.requiresGrad)) throw new Error(`${op}: no input requires grad, so there is nothing to check`);
  inputs.forEach((t, i) => {
    if (t.requiresGrad && t.dtype !== 'float64') {
      throw new Error(`${op}: input ${i} requires grad but is ${t.dtype}; finite differences need float64 inputs`);
    }
  });
}

/**
 * Outputs of fn on copies of the inputs with input `which` replaced by `data`. Inputs keep their
 * requiresGrad so that fn may itself differentiate (gradgradcheck does).
 */
function evalWith(fn: Fn, inputs: Tensor[], which: number, data: Float64Array): Float64Array[] {
  const args = inputs.map((t, i) => {
    const c = i === which ? fromTypedArray(data, t.shape, { device: t.device }) : t.detach();
    c.requiresGrad = t.requiresGrad;
    return c;
  });
  return enableGrad(() => asList(fn(...args))).map((o) => Float64Array.from(o.toTypedArray()));
}

function close(a: number, n: number, atol: number, rtol: number): boolean {
  return Math.abs(a - n) <= atol + rtol * Math.abs(n);
}

/** Analytical rows: d(sum_k v_k out_k)/d(inputs) for a given output weighting v. */
function vjp(outs: Tensor[], inputs: Tensor[], vs: (Float64Array | null)[]): (Float64Array | null)[] {
  const pairs = outs.map((o, i) => ({ o, v: vs[i] })).filter((p) => p.v && p.o.requiresGrad);
  const diff = inputs.filter((t) => t.requiresGrad);
  // An output cut from the graph (a detach inside fn) has a zero analytical gradient, which the
  // numerical one then contradicts, as torch.autograd.gradcheck reports it.
  if (!pairs.length || !diff.length) return inputs.map((t) => (t.requiresGrad ? new Float64Array(t.size) : null));
  const gs = grad(pairs.map((p) => p.o), diff, {
    gradOutputs: pairs.map((p) => fromTypedArray(p.v!, p.o.shape, { dtype: p.o.dtype, device: p.o.device })),
    retainGraph: true, allowUnused: true,
  });
  let k = 0;
  return inputs.map((t) => {
    if (!t.requiresGrad) return null;
    const g = gs[k++];
    return g ? Float64Array.from(g.toTypedArray()) : new Float64Array(t.size);
  });
}

/** rows[o][k][i]: d out_o[k] / d leaves[i] (null for an integer output or a leaf without grad), a backward per output element. */
type Rows = ((Float64Array | null)[][] | null)[];

function analyticalRows(outs: Tensor[], leaves: Tensor[], sizes: Tensor[]): Rows {
  return outs.map((out, o) => {
    if (!isFloat(out.dtype)) return null;
    return Array.from({ length: out.size }, (_, k) => {
      const v = outs.map((x, oo) => (oo === o ? Float64Array.from({ length: x.size }, (_, kk) => (kk === k ? 1 : 0)) : null));
      // Rows with respect to a larger leaf (checkNonContiguous) keep the input's part, its first elements.
      return vjp(outs, leaves, v).map((r, i) => (r && leaves[i]!.requiresGrad ? r.subarray(0, sizes[i]!.size) : null));
    });
  });
}

/** The first entry where two analytical Jacobians differ by more than tol, in words; '' if none. */
function firstDifference(a: Rows, b: Rows, tol: number): string {
  for (let o = 0; o < a.length; o++) {
    for (let k = 0; k < (a[o]?.length ?? 0); k++) {
      for (let i = 0; i < a[o]![k]!.length; i++) {
        const x = a[o]![k]![i], y = b[o]![k]![i];
        if (!x || !y) continue;
        for (let j = 0; j < x.length; j++) {
          const d = Math.abs(x[j]! - y[j]!);
          if (d > tol || (Number.isNaN(x[j]!) !== Number.isNaN(y[j]!))) {
            return `d output ${o}[${k}] / d input ${i}[${j}] = ${x[j]} and then ${y[j]}`;
          }
        }
      }
    }
  }
  return '';
}

/**
 * The analytical Jacobian with each input that requires grad given as rows 0 of a [2, n] leaf
 * (row 1 holds other values), narrowed and viewed back to the input's shape.
 */
function nonContiguousRows(fn: Fn, inputs: Tensor[]): Rows {
  const leaves = inputs.map((t) => {
    if (!t.requiresGrad) return t.detach();
    const data = new Float64Array(2 * t.size).fill(7.25);
    data.set(t.toTypedArray());
    return fromTypedArray(data, [2, t.size], { dtype: t.dtype, device: t.device, requiresGrad: true });
  });
  const args = leaves.map((l, i) => (inputs[i]!.requiresGrad ? l.slice(0, 0, 2, 2).reshape(inputs[i]!.shape) : l));
  const outs = enableGrad(() => asList(fn(...args)));
  return analyticalRows(outs, leaves, inputs);
}

/**
 * Each Jacobian column by forward mode (input i given as a dual tensor with tangent e_j), against
 * the numerical one; the first entry beyond tolerance, in words, or ''.
 */
function forwardMismatch(fn: Fn, inputs: Tensor[], numerical: (Float64Array[][] | null)[], atol: number, rtol: number,
  words: Wording): string {
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i]!;
    if (!t.requiresGrad) continue;
    for (let j = 0; j < t.size; j++) {
      const unit = new Float64Array(t.size);
      unit[j] = 1;
      const args = inputs.map((x, k) => {
        const c = x.detach();
        c.requiresGrad = x.requiresGrad;
        return k === i ? dual(c, fromTypedArray(unit, x.shape, { dtype: x.dtype, device: x.device })) : c;
      });
      const outs = enableGrad(() => asList(fn(...args)));
      for (let o = 0; o < outs.length; o++) {
        if (!isFloat(outs[o]!.dtype)) continue;
        const tan = outs[o]!.tangent ? Float64Array.from(outs[o]!.tangent!.toTypedArray()) : new Float64Array(outs[o]!.size);
        const col = numerical[i]![j]![o]!;
        for (let k = 0; k < col.length; k++) {
          if (!close(tan[k]!, col[k]!, atol, rtol)) {
            return `${words.output(o)} element ${indexOf(outs[o]!.shape, k)} with respect to ${words.input(i)} element ` +
              `${indexOf(t.shape, j)}: numerical ${col[k]}, forward mode ${tan[k]} (atol ${atol}, rtol ${rtol})`;
          }
        }
      }
    }
  }
  return '';
}

function fail(msg: string, raise: boolean): false {
  if (raise) throw new Error(msg);
  return false;
}

/**
 * Checks the tape's gradients of fn against central differences; true, or throws a report: the
 * function, the worst element (output and input, numerical and analytical values), how many
 * Jacobian entries differ, and the tolerances.
 */
export function gradcheck(fn: Fn, inputs: Tensor[], opts: GradcheckOptions = {}): boolean {
  return check(fn, inputs, opts, plainWording(fn));
}

function check(fn: Fn, inputs: Tensor[], opts: GradcheckOptions, words: Wording): boolean {
  const { eps = 1e-6, atol = 1e-5, rtol = 1e-3, fastMode = false, raiseException = true, nondetTol = 0,
    checkNonContiguous = false, checkForwardAd = false } = opts;
  checkInputs('gradcheck', inputs);
  const outs = enableGrad(() => asList(fn(...inputs)));
  // As torch.autograd.gradcheck: when some output requires grad, the others (detached or integer
  // outputs) are not checked; when none does, each must have a zero numerical Jacobian.
  const checked = outs.some((o) => o.requiresGrad) ? outs.map((o) => o.requiresGrad) : outs.map((o) => isFloat(o.dtype));
  const base = inputs.map((t) => Float64Array.from(t.toTypedArray()));
  const numericalColumn = (i: number, dir: Float64Array): Float64Array[] => {
    const plus = base[i]!.map((v, j) => v + eps * dir[j]!);
    const minus = base[i]!.map((v, j) => v - eps * dir[j]!);
    const fp = evalWith(fn, inputs, i, plus);
    const fm = evalWith(fn, inputs, i, minus);
    return fp.map((p, o) => p.map((v, k) => (v - fm[o]![k]!) / (2 * eps)));
  };

  if (fastMode) {
    // Outputs not checked (integer indices, detached values beside differentiable ones) weigh zero.
    const vs = outs.map((o, i) => (checked[i] ? hostNormal(o.size) : new Float64Array(o.size)));
    const rows = vjp(outs, inputs, vs);
    for (let i = 0; i < inputs.length; i++) {
      if (!inputs[i]!.requiresGrad) continue;
      const u = hostNormal(inputs[i]!.size);
      const col = numericalColumn(i, u);
      const numerical = col.reduce((acc, c, o) => acc + c.reduce((s, x, k) => s + x * vs[o]![k]!, 0), 0);
      const analytical = (rows[i] ?? new Float64Array(u.length)).reduce((s, x, j) => s + x * u[j]!, 0);
      if (!close(analytical, numerical, atol, rtol)) {
        return fail(`${words.check} (fast mode): projection v^T J u mismatch for ${words.input(i)}: ` +
          `numerical ${numerical}, analytical ${analytical} (atol ${atol}, rtol ${rtol}); run with fastMode: false to find the element`, raiseException);
      }
    }
    return backwardScalesWithGradOutput(outs, inputs, words, raiseException);
  }

  // numerical[i][j][o][k] = d out_o[k] / d in_i[j], one pair of evaluations per input element.
  const numerical = inputs.map((t, i) => {
    if (!t.requiresGrad) return null;
    const unit = new Float64Array(t.size);
    return Array.from({ length: t.size }, (_, j) => {
      unit.fill(0);
      unit[j] = 1;
      return numericalColumn(i, unit);
    });
  });
  // One backward per output element gives that Jacobian row for every input at once. Every
  // entry is compared; the report names the worst (by how far it passes its tolerance).
  const analytical = analyticalRows(outs, inputs, inputs);
  const again = analyticalRows(outs, inputs, inputs);
  const nondet = firstDifference(analytical, again, nondetTol);
  if (nondet) {
    return fail(`${words.check}: the backward is not reentrant: two backward passes over the same graph give ${nondet} ` +
      `(nondetTol ${nondetTol})`, raiseException);
  }
  let differ = 0;
  let entries = 0;
  let worst: { excess: number; text: string } | null = null;
  outs.forEach((out, o) => checked[o] && analytical[o]?.forEach((rows, k) => {
    inputs.forEach((t, i) => {
      const row = rows[i];
      if (!row) return;
      for (let j = 0; j < t.size; j++) {
        const n = numerical[i]![j]![o]![k]!;
        const a = row[j]!;
        entries++;
        if (close(a, n, atol, rtol)) continue;
        differ++;
        // NaN on either side is as far off as it gets.
        const excess = Number.isNaN(a) || Number.isNaN(n) ? Infinity : Math.abs(a - n) - (atol + rtol * Math.abs(n));
        if (!worst || excess > worst.excess) {
          worst = { excess, text: `${words.output(o)} element ${indexOf(out.shape, k)} with respect to ${words.input(i)} element ` +
            `${indexOf(t.shape, j)}: numerical ${n}, analytical ${a}` };
        }
      }
    });
  }));
  if (!worst && checkForwardAd) {
    const bad = forwardMismatch(fn, inputs, numerical, atol, rtol, words);
    if (bad) return fail(`${words.check}: forward-mode Jacobian mismatch for ${bad}`, raiseException);
  }
  if (!worst && checkNonContiguous) {
    const strided = nonContiguousRows(fn, inputs);
    const diff = firstDifference(analytical, strided, nondetTol);
    if (diff) {
      return fail(`${words.check}: the gradient depends on how the inputs are laid out: given each input as a strided ` +
        `slice seen through a view, the backward gives ${diff} (nondetTol ${nondetTol})`, raiseException);
    }
  }
  if (!worst) return backwardScalesWithGradOutput(outs, inputs, words, raiseException);
  const w = worst as { text: string };
  return fail(`${words.check}: Jacobian mismatch for ${w.text}; ${differ} of ${entries} Jacobian entries differ ` +
    `(this one the most), beyond atol ${atol} + rtol ${rtol} x |numerical| (eps ${eps})`, raiseException);
}

/**
 * PyTorch's "backward not multiplied by grad_output" check: with every gradOutput zero, every
 * input gradient must be zero (a backward that adds a constant passes the Jacobian check at 1e-7).
 */
function backwardScalesWithGradOutput(outs: Tensor[], inputs: Tensor[], words: Wording, raiseException: boolean): boolean {
  const rows = vjp(outs, inputs, outs.map((o) => new Float64Array(o.size)));
  const i = rows.findIndex((r) => r?.some((v) => v !== 0));
  if (i < 0) return true;
  return fail(`${words.check}: backward not multiplied by grad_output: with every grad_output zero, the gradient of ` +
    `${words.input(i)} is not zero`, raiseException);
}

/**
 * Checks second derivatives: gradcheck of (inputs, gradOutputs) -> grad(fn(inputs), inputs,
 * gradOutputs, createGraph). gradOutputs default to random float64 tensors.
 */
export function gradgradcheck(fn: Fn, inputs: Tensor[], gradOutputs?: Tensor[], opts: GradcheckOptions = {}): boolean {
  checkInputs('gradgradcheck', inputs);
  // As PyTorch: only the outputs that require grad are differentiated (indices and detached
  // values are left out), and gradOutputs, if given, are theirs.
  const outs = enableGrad(() => asList(fn(...inputs)));
  const diffOut = outs.map((o, i) => (o.requiresGrad ? i : -1)).filter((i) => i >= 0);
  if (gradOutputs && gradOutputs.length !== diffOut.length) {
    throw new Error(`gradgradcheck: got ${gradOutputs.length} gradOutputs for ${diffOut.length} outputs that require grad`);
  }
  const gos = gradOutputs ?? diffOut.map((i) => {
    const o = outs[i]!;
    const g = fromTypedArray(hostNormal(o.size), o.shape, { device: o.device });
    g.requiresGrad = true;
    return g;
  });
  const n = inputs.length;
  const diffIdx = inputs.map((t, i) => (t.requiresGrad ? i : -1)).filter((i) => i >= 0);
  const first = (...args: Tensor[]): Tensor[] => {
    const ins = args.slice(0, n);
    const all = asList(fn(...ins));
    const res = diffOut.map((i) => all[i]!);
    const gs = grad(res, diffIdx.map((i) => ins[i]!), { gradOutputs: args.slice(n), createGraph: true, allowUnused: true });
    // An unused input has a zero gradient; keep it in the graph so shapes line up.
    return gs.map((g, k) => g ?? ins[diffIdx[k]!]!.mul(0));
  };
  // The check's outputs are the first derivatives; its inputs, fn's inputs and then the gradient
  // of each output that weights them.
  const words: Wording = {
    check: `gradgradcheck(${fn.name || 'fn'})`,
    output: (o) => `the gradient of input ${diffIdx[o]}`,
    input: (i) => (i < n ? `input ${i}` : `the grad_output of output ${i - n}`),
  };
  return check(first, [...inputs, ...gos], opts, words);
}

