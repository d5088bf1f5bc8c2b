/**
 * defineOp: the one way an op gets onto the tape, for built-in ops and users alike
 * (`defineFunction` is the same thing under PyTorch's name). The forward runs without recording;
 * if any tensor argument requires grad, a Node is recorded whose backward is the op's VJP.
 */
import { isAnomalyEnabled, isForwardAdEnabled, isGradEnabled, setForwardAd, setGradEnabled, tangentBatchSize, withoutForwardAd } from './grad_mode.js';
import { fmt, numel } from './shape.js';
import { noteRecorded, scopedCall } from './scope.js';
import { Node, type Edge } from './tape.js';
import { syncView, Tensor } from './tensor.js';

/**
 * Per-call context: what the forward keeps for the backward, said explicitly. `save` keeps tensors
 * under the in-place version check (inputs and outputs a VJP reads); `keep` holds tensors that are
 * the op's own and never written in place (saved statistics, pooling indices). Anything else the
 * backward needs (shapes, options) is a typed field of the op's state S: `Ctx<{ axis: number }>`.
 */
export class CtxBase {
  /** One flag per forward argument: is it a tensor that requires grad. */
  readonly needsInputGrad: readonly boolean[];
  // Made on first use: most ops keep nothing, or save only (issue 17: allocations per op).
  // Saved tensors and their versions at save time, alternating in one list: no object per tensor.
  private savedTensors: (Tensor | number)[] | null = null;
  private keptTensors: Tensor[] | null = null;
  private readonly opName: string;

  constructor(opName: string, needsInputGrad: readonly boolean[]) {
    this.opName = opName;
    this.needsInputGrad = needsInputGrad;
  }

  /** Saves tensors for backward; modifying one in place before backward is then an error. */
  save(...tensors: Tensor[]): void {
    // Sized once: an empty array's first push reserves 17 slots (issue 17: allocations per op).
    const before = this.savedTensors ?? [];
    const saved = new Array<Tensor | number>(before.length + 2 * tensors.length);
    for (let i = 0; i < before.length; i++) saved[i] = before[i]!;
    for (let i = 0; i < tensors.length; i++) {
      saved[before.length + 2 * i] = tensors[i]!;
      saved[before.length + 2 * i + 1] = tensors[i]!.version;
    }
    this.savedTensors = saved;
  }

  /** Holds a tensor the backward reads that nothing writes in place (no version check); returns it. */
  keep<T extends Tensor>(t: T): T {
    (this.keptTensors ??= []).push(t);
    return t;
  }

  /** Adds the storages this context holds for the backward: the saved and the kept tensors. */
  heldBuffers(out: Set<unknown>): void {
    const saved = this.savedTensors ?? [];
    for (let i = 0; i < saved.length; i += 2) {
      const t = saved[i] as Tensor;
      out.add(t.buf);
      if (t.tangent) out.add(t.tangent.buf); // forward-over-reverse reads it in the backward
    }
    for (const t of this.keptTensors ?? []) out.add(t.buf);
  }

  /** The saved tensors, checked against in-place modification since they were saved. */
  get saved(): Tensor[] {
    const saved = this.savedTensors ?? [];
    const out = new Array<Tensor>(saved.length / 2);
    for (let i = 0; i < out.length; i++) {
      const t = saved[2 * i] as Tensor, version = saved[2 * i + 1] as number;
      // A slice whose base changed since is refreshed first: that is a change of its values too,
      // which the version then shows (PyTorch's view shares its base's counter).
      syncView(t);
      if (t.version !== version) {
        throw new Error(`${this.opName}: one of the tensors needed for gradient computation (saved tensor ${i}, ` +
          `${t.dtype} ${fmt(t.shape)}) has been modified by an inplace operation: it is at version ${t.version}; ` +
          `expected version ${version} instead.`);
      }
      out[i] = t;
    }
    return out;
  }
}

/** The context of an op whose forward stores the fields of S for its backward. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type Ctx<S extends object = {}> = CtxBase & S;

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface OpDef<A extends unknown[], R extends Tensor | Tensor[], S extends object = {}> {
  name: string;
  /** Computes the outputs; runs with recording off. Arguments that are Tensors are the inputs. */
  forward(ctx: Ctx<S>, ...args: A): R;
  /**
   * The VJP: one gradient per forward argument (null/undefined where none), written with
   * differentiable ops so that `createGraph` works. Receives one gradient per output.
   */
  backward(ctx: Ctx<S>, ...grads: Tensor[]): (Tensor | null | undefined)[] | Tensor;
  /**
   * Forward mode (optional): the outputs' tangents from the inputs' (one per forward argument,
   * null where an argument is no tensor or has none, which is a zero tangent), given the outputs
   * and the arguments. Written with ops, so reverse mode can differentiate it (forward-over-
   * reverse). A tangent of a smaller shape than its output is broadcast. An op without a rule
   * refuses dual inputs, naming itself.
   */
  jvp?(ctx: Ctx<S>, tangents: (Tensor | null)[], out: R, ...args: A): Tensor | (Tensor | null)[] | null;
  /**
   * Set for an elementwise rule that also holds for batched tangents (vectorized forward mode):
   * each tangent gets a leading dim of columns and the rule runs once for all of them, its inputs'
   * tangents lined up with the output's dims. Other rules run once per column.
   */
  jvpElementwise?: boolean;
}

/** The edge a gradient for `t` flows along: its producing node, or its AccumulateGrad node. */
export function gradEdge(t: Tensor): Edge {
  syncView(t);
  if (t.gradFn) return { node: t.gradFn, index: t.outputIndex };
  t.accumulator ??= new Node('AccumulateGrad', [], [{ shape: t.shape, dtype: t.dtype, device: t.device }], null, null, t);
  return { node: t.accumulator, index: 0 };
}

/** Every op defined so far, by name: whether each definition under that name has a JVP rule. */
const forwardRules = new Map<string, boolean>();

/** Which ops (built-in and defined so far) support forward mode, and which refuse dual inputs. */
export function forwardAdCoverage(): { withJvp: string[]; without: string[] } {
  const names = [...forwardRules.keys()].sort();
  return { withJvp: names.filter((n) => forwardRules.get(n)), without: names.filter((n) => !forwardRules.get(n)) };
}

const NO_TANGENTS: (Tensor | null)[] = [];

/**
 * needsInputGrad lists for up to 4 arguments, by bit mask, shared by every op with the same flags:
 * frozen, so no op's context can change another's (issue 17: a list per op).
 */
const SHARED_NEEDS: readonly (readonly boolean[])[][] = [0, 1, 2, 3, 4].map((n) =>
  Array.from({ length: 1 << n }, (_, mask) => Object.freeze(Array.from({ length: n }, (_, i) => ((mask >> i) & 1) === 1))));

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export function defineOp<A extends unknown[], R extends Tensor | Tensor[], S extends object = {}>(
  def: OpDef<A, R, S>): (...args: A) => R {
  forwardRules.set(def.name, (forwardRules.get(def.name) ?? true) && def.jvp !== undefined);
  // One pass over the arguments, and no closure that captures the call's variables (V8 would give
  // every call a context object for them): every op of a model runs this (issue 17).
  const op = (...args: A): R => {
    const fwOn = isForwardAdEnabled();
    let dual = false;
    let anyNeeds = false;
    let mask = 0;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (!(a instanceof Tensor)) continue;
      syncView(a);
      if (fwOn && a.tangent) dual = true;
      if (!a.requiresGrad) continue;
      anyNeeds = true;
      if (i < SHARED_NEEDS.length) mask |= 1 << i;
    }
    const needs = args.length < SHARED_NEEDS.length ? SHARED_NEEDS[args.length]![mask]!
      : args.map((a) => a instanceof Tensor && a.requiresGrad);
    const tangents = dual ? args.map((a) => (a instanceof Tensor ? a.tangent : null)) : NO_TANGENTS;
    if (dual && !def.jvp) {
      throw new Error(`${def.name}: this op does not support forward-mode AD (it has no JVP rule); ` +
        'unpackDual its inputs, or use reverse mode (the jvp of @nodegrad/autograd/functional)');
    }
    const ctx = new CtxBase(def.name, needs) as Ctx<S>;
    // Tangents are the op's to propagate (by its JVP below), not its forward's inner ops'.
    const fw = setForwardAd(false);
    let result: R;
    try {
      // In a scope of its own: the forward's temporaries are freed as it returns; its outputs and
      // whatever the ctx holds for the backward (saved tensors, stashed raw buffers) live on.
      result = scopedCall(forwardWithoutGrad, def, ctx, args, ctx);
    } finally {
      setForwardAd(fw);
    }
    if (!anyNeeds || !isGradEnabled()) {
      if (dual) attachTangents(def.name, jvpWithoutForwardAd(def, ctx, tangents, result, args), result);
      return result;
    }

    const single = !Array.isArray(result);
    const outs: Tensor[] = single ? [result as Tensor] : result as Tensor[];
    const edges = new Array<Edge | null>(args.length);
    let returnsInput = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      edges[i] = needs[i] ? gradEdge(a as Tensor) : null;
      if (a instanceof Tensor && outs.includes(a)) returnsInput = true;
    }
    // An output that is one of the inputs becomes an alias, so the input keeps its own gradFn.
    const fresh = returnsInput ? aliasInputs(outs, args) : outs;
    const node = new Node(def.name, edges, outputMeta(fresh, edges), def, ctx);
    if (isAnomalyEnabled()) node.stack = new Error(`${def.name} created at`).stack;
    noteRecorded(ctx);
    for (let i = 0; i < fresh.length; i++) {
      const o = fresh[i]!;
      if (o.dtype === 'int32' || o.dtype === 'int64') continue;
      o.gradFn = node;
      o.outputIndex = i;
      o.requiresGrad = true;
    }
    const out = (single ? fresh[0] : fresh) as R;
    // The JVP after recording: a rule reading the output (exp's t * y) then reads it with its
    // history, so reverse mode through the tangent reaches the inputs by way of y too.
    if (dual) attachTangents(def.name, jvpWithoutForwardAd(def, ctx, tangents, out, args), out);
    return out;
  };
  // The op's name on the function too: stack traces and gradcheck's report show it.
  return Object.defineProperty(op, 'name', { value: def.name });
}

/** The op's forward with recording off: noGrad() spelled out, so that no closure is made per op. */
function forwardWithoutGrad<A extends unknown[], R extends Tensor | Tensor[], S extends object>(def: OpDef<A, R, S>, ctx: Ctx<S>, args: A): R {
  const grad = isGradEnabled();
  setGradEnabled(false);
  try {
    return def.forward(ctx, ...args);
  } finally {
    setGradEnabled(grad);
  }
}

/**
 * A node's output metadata. A single output like the tensor the first edge comes from (same shape
 * array, dtype and device: elementwise ops, most of a model's) shares that node's list, which is
 * never written: one list and object fewer per recorded op (issue 17).
 */
function outputMeta(outs: Tensor[], edges: (Edge | null)[]): Node['outputMeta'] {
  if (outs.length === 1) {
    const o = outs[0]!;
    for (const e of edges) {
      if (!e) continue;
      const like = e.node.outputMeta;
      const m = like.length === 1 ? like[0]! : null;
      if (m && m.shape === o.shape && m.dtype === o.dtype && m.device === o.device) return like;
      break;
    }
  }
  return outs.map((o) => ({ shape: o.shape, dtype: o.dtype, device: o.device }));
}

/** The outputs, each one that is also an input replaced by an alias of it. */
function aliasInputs(outs: Tensor[], args: unknown[]): Tensor[] {
  return outs.map((o) => (args.includes(o) ? o.aliasAs(o.shape) : o));
}

/** The op's JVP rule, run with forward mode off (its own ops must not propagate tangents). */
function jvpWithoutForwardAd<A extends unknown[], R extends Tensor | Tensor[], S extends object>(def: OpDef<A, R, S>, ctx: Ctx<S>,
  tangents: (Tensor | null)[], result: R, args: A): Tangents {
  return withoutForwardAd(() => runJvp(def, ctx, tangents, result, args));
}

type Tangents = Tensor | (Tensor | null)[] | null;

/** stack and zerosLike for per-column JVPs, set by ops/join.ts: the ops import this module, so it cannot import them. */
let columnOps: { stack: (ts: Tensor[], dim: number) => Tensor; zerosLike: (t: Tensor) => Tensor } | null = null;
/** @internal */
export function setColumnOps(ops: NonNullable<typeof columnOps>): void { columnOps = ops; }
const asList = (ts: Tangents): (Tensor | null)[] => (Array.isArray(ts) ? ts : [ts]);

/**
 * The op's JVP rule. With batched tangents (vectorized forward mode) an elementwise rule runs once,
 * each input's tangent [B, ...shape] given ones after B up to the output's rank so that it lines
 * up with the output as its primal does; any other rule runs once per column, and the columns'
 * tangents are stacked.
 */
function runJvp<A extends unknown[], R extends Tensor | Tensor[], S extends object>(def: OpDef<A, R, S>, ctx: Ctx<S>,
  tangents: (Tensor | null)[], result: R, args: A): Tangents {
  const B = tangentBatchSize();
  if (B === 0) return def.jvp!(ctx, tangents, result, ...args);
  const outs: Tensor[] = Array.isArray(result) ? result : [result];
  if (def.jvpElementwise) {
    const rank = Math.max(...outs.map((o) => o.ndim));
    return def.jvp!(ctx, tangents.map((t) => (t && t.ndim - 1 < rank
      ? t.reshape([B, ...new Array<number>(rank - t.ndim + 1).fill(1), ...t.shape.slice(1)]) : t)), result, ...args);
  }
  const columns = Array.from({ length: B }, (_, b) =>
    asList(def.jvp!(ctx, tangents.map((t) => t && t.narrow(0, b, 1).reshape(t.shape.slice(1))), result, ...args)));
  return outs.map((o, i) => {
    if (columns.every((c) => !c[i])) return null;
    return columnOps!.stack(columns.map((c) => fitTangent(c[i] ?? null, o) ?? columnOps!.zerosLike(o)), 0);
  });
}

/** A rule's tangent for output o in o's shape (broadcast, or reshaped when it has o's size); null stays null. */
function fitTangent(t: Tensor | null, o: Tensor, batch = 0): Tensor | null {
  if (!t) return null;
  const shape = batch ? [batch, ...o.shape] : [...o.shape];
  if (t.shape.length === shape.length && t.shape.every((d, k) => d === shape[k])) return t;
  return t.size === numel(shape) ? t.reshape(shape) : t.expand(shape);
}

/** Hangs each output's tangent on it, in its shape (with the batch dim when vectorized); integer outputs get none. */
function attachTangents(name: string, ts: Tangents, result: Tensor | Tensor[]): void {
  const outs = Array.isArray(result) ? result : [result];
  const list = asList(ts);
  outs.forEach((o, i) => {
    const t = fitTangent(list[i] ?? null, o, tangentBatchSize());
    if (!t || o.dtype === 'int32' || o.dtype === 'int64') return;
    if (t.dtype !== o.dtype) throw new Error(`${name}: its JVP gave a ${t.dtype} tangent for a ${o.dtype} output`);
    o.tangent = t;
  });
}

/** A user's own differentiable op: PyTorch's `torch.autograd.Function`, the same path built-ins use. */
export const defineFunction = defineOp;
