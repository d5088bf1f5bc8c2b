/**
 * @nodegrad/autograd/functional: torch.autograd.functional's vjp, jvp, jacobian, hessian, vhp and
 * hvp, with its signatures and options. A function of one tensor gets and returns tensors; a
 * function of several gets them as arguments and its results come as arrays, as PyTorch's tuples.
 *
 * jvp uses the double-vjp trick, as PyTorch's does: u -> vjp(u) is linear in u, so the vjp of that
 * map at v is J v. jacobian's 'reverse-mode' strategy builds the Jacobian a row at a time from
 * vjps; 'forward-mode' a column at a time, each from one forward pass over dual inputs (forward_ad.ts).
 */
import { isFloat } from './dtype.js';
import { grad } from './engine.js';
import { dual } from './forward_ad.js';
import { enableGrad, withTangentBatch } from './grad_mode.js';
import { fmt, sameShape } from './shape.js';
import { Tensor } from './tensor.js';
import { detach } from './ops/autograd_api.js';
import { fromTypedArray, onesLike, zeros, zerosLike } from './ops/creation.js';
import { stack } from './ops/join.js';
import { reshape } from './ops/shape.js';

type Inputs = Tensor | readonly Tensor[];
type Func = (...xs: Tensor[]) => Tensor | readonly Tensor[];

export interface FunctionalOptions {
  /** Record the computation, so the result can be differentiated again (it keeps requiring grad). */
  createGraph?: boolean;
  /** Throw when an output does not depend on an input, instead of giving zeros there. */
  strict?: boolean;
}

export interface JacobianOptions extends FunctionalOptions {
  /** 'reverse-mode' (a vjp per output element) or 'forward-mode' (a jvp per input element). */
  strategy?: 'reverse-mode' | 'forward-mode';
  /**
   * Compute all the columns for one input in a single forward pass with batched tangents (PyTorch
   * batches with vmap): elementwise ops run once for all columns, the others once per column.
   * Same values as without; pays when the function is mostly elementwise. Used by either strategy.
   */
  vectorize?: boolean;
}

const list = (x: Inputs): Tensor[] => (Array.isArray(x) ? [...x] : [x as Tensor]);
/** Results shaped as the inputs were given: a tensor for a tensor, an array for an array. */
const like = <T>(given: unknown, xs: T[]): T | T[] => (Array.isArray(given) ? xs : xs[0]!);

/** Fresh leaves that require grad; with createGraph, they stay connected to the caller's graph. */
function prepare(op: string, inputs: Inputs, createGraph: boolean): Tensor[] {
  const xs = list(inputs);
  if (xs.length === 0) throw new Error(`${op}: needs at least one input`);
  return xs.map((x, i) => {
    if (!isFloat(x.dtype)) {
      throw new Error(`${op}: input ${i} must be a float tensor, got ${x.dtype} of shape ${fmt(x.shape)}`);
    }
    return createGraph && x.requiresGrad ? reshape(x, x.shape) : detach(x).requiresGrad_();
  });
}

/** Runs func with recording on; raw is what it returned (a tensor or an array), outs its tensors. */
function call(op: string, func: Func, xs: Tensor[]): { raw: Tensor | readonly Tensor[]; outs: Tensor[] } {
  const raw = enableGrad(() => func(...xs));
  const outs = list(raw);
  outs.forEach((o, i) => {
    if (!(o instanceof Tensor)) throw new Error(`${op}: the function must return a tensor or an array of tensors (output ${i} is not)`);
  });
  return { raw, outs };
}

/** Checks v against the outputs (or inputs) it pairs with; one-element targets may omit it. */
function vectors(op: string, v: Inputs | undefined, targets: Tensor[], what: string): Tensor[] {
  if (v === undefined || v === null) {
    if (targets.length === 1 && targets[0]!.size === 1) return [onesLike(targets[0]!)];
    throw new Error(`${op}: v can be omitted only when the ${what} is a single one-element tensor`);
  }
  const vs = list(v);
  if (vs.length !== targets.length) throw new Error(`${op}: v has ${vs.length} tensors but the ${what} has ${targets.length}`);
  vs.forEach((t, i) => {
    if (!sameShape(t.shape, targets[i]!.shape)) {
      throw new Error(`${op}: v[${i}] has shape ${fmt(t.shape)} but the ${what} ${i} has shape ${fmt(targets[i]!.shape)}`);
    }
  });
  return vs;
}

const independentInput = (i: number) => `the output of the function is independent of input ${i}`;

/** Strict mode's error for a result that does not depend on what it is taken over (without strict: zeros). */
function refuse(op: string, why: string): never {
  throw new Error(`${op}: ${why}; this is not allowed in strict mode`);
}

/**
 * grad(outs, xs) weighted by gs, over the outs that require grad; an x none of them depends on
 * gets zeros, or the strict-mode error that `independent(i)` words.
 */
function gradOf(op: string, outs: Tensor[], xs: Tensor[], gs: Tensor[], createGraph: boolean, strict: boolean,
  retain = true, independent = independentInput): Tensor[] {
  const live = outs.map((o, i) => ({ o, g: gs[i]! })).filter(({ o }) => o.requiresGrad);
  const res = live.length === 0 ? xs.map(() => null) : grad(live.map((l) => l.o), xs,
    { gradOutputs: live.map((l) => l.g), createGraph, retainGraph: retain || createGraph, allowUnused: true });
  return res.map((g, i) => {
    if (!g) return strict ? refuse(op, independent(i)) : zerosLike(xs[i]!);
    // A gradient without history is constant in the inputs: PyTorch's strict mode refuses to
    // return it as if it could be differentiated again.
    if (strict && createGraph && !g.requiresGrad) {
      refuse(op, `the Jacobian of the function is independent of input ${i}, which createGraph cannot differentiate`);
    }
    return g;
  });
}

const finish = (ts: Tensor[], createGraph: boolean) => (createGraph ? ts : ts.map((t) => detach(t)));

/** [func(inputs), v^T J]: the vector-Jacobian product, as torch.autograd.functional.vjp. */
export function vjp(func: Func, inputs: Inputs, v?: Inputs, opts: FunctionalOptions = {}): [Tensor | Tensor[], Tensor | Tensor[]] {
  const { createGraph = false, strict = false } = opts;
  const xs = prepare('vjp', inputs, createGraph);
  const { raw, outs } = call('vjp', func, xs);
  const g = gradOf('vjp', outs, xs, vectors('vjp', v, outs, 'output'), createGraph, strict, false);
  return [like(raw, finish(outs, createGraph)), like(inputs, finish(g, createGraph))];
}

/** J v for a function already evaluated at xs, by the double-vjp trick. */
function jvpAt(op: string, outs: Tensor[], xs: Tensor[], vs: Tensor[], createGraph: boolean, strict: boolean): Tensor[] {
  const us = outs.map((o) => zerosLike(o).requiresGrad_());
  const gs = enableGrad(() => gradOf(op, outs, xs, us, true, strict));
  // gs is linear in us (an input's zeros from gradOf, which need no grad, drop out), and its vjp at v is J v.
  return gradOf(op, gs, us, vs, createGraph, strict, true, (i) => `output ${i} of the function is independent of the inputs`);
}

/** [func(inputs), J v]: the Jacobian-vector product, as torch.autograd.functional.jvp. */
export function jvp(func: Func, inputs: Inputs, v?: Inputs, opts: FunctionalOptions = {}): [Tensor | Tensor[], Tensor | Tensor[]] {
  const { createGraph = false, strict = false } = opts;
  const xs = prepare('jvp', inputs, createGraph);
  const { raw, outs } = call('jvp', func, xs);
  const jv = jvpAt('jvp', outs, xs, vectors('jvp', v, xs, 'input'), createGraph, strict);
  return [like(raw, finish(outs, createGraph)), like(raw, finish(jv, createGraph))];
}

/** e_k of the given shape: 1 at flat index k. */
function basis(like_: Tensor, k: number): Tensor {
  const data = like_.dtype === 'float64' ? new Float64Array(like_.size) : new Float32Array(like_.size);
  data[k] = 1;
  return fromTypedArray(data, like_.shape, { dtype: like_.dtype, device: like_.device });
}

/** Stacks the parts (one per row or column) and gives the result `shape`; no parts: zeros of `shape`. */
function assemble(parts: Tensor[], shape: number[], like_: Tensor): Tensor {
  if (parts.length === 0) return zeros(shape, { dtype: like_.dtype, device: like_.device });
  return reshape(stack(parts, 0), shape);
}

/** The Jacobian of each output with respect to each input, shaped output.shape + input.shape. */
function jacobianAt(op: string, func: Func, outs: Tensor[], xs: Tensor[], o: JacobianOptions): Tensor[][] {
  const { createGraph = false, strict = false, strategy = 'reverse-mode', vectorize = false } = o;
  if (vectorize) return vectorizedJacobian(op, func, outs, xs, strict);
  if (strategy === 'reverse-mode') {
    return outs.map((out) => {
      const rows = Array.from({ length: out.size }, (_, k) =>
        gradOf(op, [out], xs, [basis(out, k)], createGraph, strict));
      return xs.map((x, j) => assemble(rows.map((r) => r[j]!), [...out.shape, ...x.shape], x));
    });
  }
  // forward-mode: a column per input element, J e_k, from func run on a dual input with tangent
  // e_k; then the columns moved behind the output dims.
  const cols = xs.map((x, j) => Array.from({ length: x.size }, (_, k) =>
    tangentsOf(op, func, xs, j, basis(x, k), strict).map((t, i) => t ?? zerosLike(outs[i]!))));
  return outs.map((out, i) => xs.map((x, j) => {
    const stacked = assemble(cols[j]!.map((c) => c[i]!.reshape([out.size])), [x.size, out.size], x);
    return reshape(stacked.transpose(0, 1), [...out.shape, ...x.shape]);
  }));
}

/** The outputs' tangents of func with input j dual (tangent t): null where an output does not depend on it (an error when strict). */
function tangentsOf(op: string, func: Func, xs: Tensor[], j: number, t: Tensor, strict: boolean): (Tensor | null)[] {
  const outs = list(enableGrad(() => func(...xs.map((y, i) => (i === j ? dual(y, t) : y)))));
  return outs.map((o, i) => {
    if (!o.tangent && strict) refuse(op, `output ${i} of the function is independent of input ${j}`);
    return o.tangent;
  });
}

/**
 * Every column for input j from one pass of func with input j dual, its tangent the identity
 * [n_j, ...shape] (batched forward mode); the tangents [n_j, ...out.shape] are turned so the
 * output's dims come first.
 */
function vectorizedJacobian(op: string, func: Func, outs: Tensor[], xs: Tensor[], strict: boolean): Tensor[][] {
  // An empty input has no columns: its Jacobians are empty, and there is no batch of 0 to run.
  const cols = xs.map((x, j) => (x.size === 0 ? outs.map(() => null) : withTangentBatch(x.size, () => {
    const eye = new Float64Array(x.size * x.size);
    for (let k = 0; k < x.size; k++) eye[k * x.size + k] = 1;
    const tangent = fromTypedArray(x.dtype === 'float64' ? eye : Float32Array.from(eye), [x.size, ...x.shape],
      { dtype: x.dtype, device: x.device });
    return tangentsOf(op, func, xs, j, tangent, strict);
  })));
  return outs.map((out, i) => xs.map((x, j) => {
    const t = cols[j]![i];
    if (!t) return zeros([...out.shape, ...x.shape], { dtype: out.dtype, device: out.device });
    return reshape(t.reshape([x.size, out.size]).transpose(0, 1), [...out.shape, ...x.shape]);
  }));
}

function checkJacobianOptions(op: string, o: JacobianOptions): void {
  if (o.strategy !== undefined && o.strategy !== 'reverse-mode' && o.strategy !== 'forward-mode') {
    throw new Error(`${op}: strategy must be 'reverse-mode' or 'forward-mode', got '${String(o.strategy)}'`);
  }
}

/**
 * The Jacobian, as torch.autograd.functional.jacobian: a tensor for one input and one output,
 * an array over inputs for several inputs, over outputs for several outputs, and both nested.
 */
export function jacobian(func: Func, inputs: Inputs, opts: JacobianOptions = {}): Tensor | Tensor[] | Tensor[][] {
  checkJacobianOptions('jacobian', opts);
  const createGraph = opts.createGraph ?? false;
  const xs = prepare('jacobian', inputs, createGraph);
  const { raw, outs } = call('jacobian', func, xs);
  const jac = jacobianAt('jacobian', func, outs, xs, opts).map((row) => finish(row, createGraph));
  const rows = jac.map((row) => like(inputs, row));
  return (Array.isArray(raw) ? rows : rows[0]!) as Tensor | Tensor[] | Tensor[][];
}

function scalarOutput(op: string, func: Func, xs: Tensor[]): Tensor {
  const { raw, outs } = call(op, func, xs);
  if (Array.isArray(raw)) throw new Error(`${op}: the function must return a single tensor, not an array of ${raw.length}`);
  if (outs.length !== 1 || outs[0]!.size !== 1) {
    throw new Error(`${op}: the function must return a single one-element tensor, got ${outs.map((o) => fmt(o.shape)).join(', ')}`);
  }
  return outs[0]!;
}

/** The Hessian of a function with a one-element output, as torch.autograd.functional.hessian. */
export function hessian(func: Func, inputs: Inputs, opts: Omit<JacobianOptions, 'strategy'> & { outerJacobianStrategy?: 'reverse-mode' | 'forward-mode' } = {}): Tensor | Tensor[][] {
  const o: JacobianOptions = { ...opts, strategy: opts.outerJacobianStrategy };
  checkJacobianOptions('hessian', o);
  const createGraph = opts.createGraph ?? false;
  const xs = prepare('hessian', inputs, createGraph);
  const y = scalarOutput('hessian', func, xs);
  const g = enableGrad(() => gradOf('hessian', [y], xs, [onesLike(y)], true, opts.strict ?? false));
  // The outer Jacobian is that of x -> grad(func)(x): forward mode over it is forward-over-reverse.
  const gradFn = (...ys: Tensor[]) => gradOf('hessian', [scalarOutput('hessian', func, ys)], ys, [onesLike(y)], true, opts.strict ?? false);
  const h = jacobianAt('hessian', gradFn, g, xs, o).map((row) => finish(row, createGraph));
  return Array.isArray(inputs) ? h : h[0]![0]!;
}

/** [func(inputs), v^T H], as torch.autograd.functional.vhp. */
export function vhp(func: Func, inputs: Inputs, v?: Inputs, opts: FunctionalOptions = {}): [Tensor, Tensor | Tensor[]] {
  return secondOrder('vhp', func, inputs, v, opts);
}

/** [func(inputs), H v], as torch.autograd.functional.hvp (H is symmetric, so this is v^T H too). */
export function hvp(func: Func, inputs: Inputs, v?: Inputs, opts: FunctionalOptions = {}): [Tensor, Tensor | Tensor[]] {
  return secondOrder('hvp', func, inputs, v, opts);
}

function secondOrder(op: string, func: Func, inputs: Inputs, v: Inputs | undefined, opts: FunctionalOptions): [Tensor, Tensor | Tensor[]] {
  const { createGraph = false, strict = false } = opts;
  const xs = prepare(op, inputs, createGraph);
  const y = scalarOutput(op, func, xs);
  const vs = vectors(op, v, xs, 'input');
  const g = enableGrad(() => gradOf(op, [y], xs, [onesLike(y)], true, strict));
  const hv = gradOf(op, g, xs, vs, createGraph, strict, false, (i) => `the gradient of the function is independent of input ${i}`);
  return [finish([y], createGraph)[0]!, like(inputs, finish(hv, createGraph))];
}
