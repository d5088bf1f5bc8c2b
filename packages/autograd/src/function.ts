/**
 * defineOp: the one way an op gets onto the tape, for built-in ops and users alike
 * (`defineFunction` is the same thing under PyTorch's name). The forward runs without recording;
 * if any tensor argument requires grad, a Node is recorded whose backward is the op's VJP.
 */
import { isAnomalyEnabled, isGradEnabled, noGrad } from './grad_mode.js';
import { fmt } from './shape.js';
import { buffersOf, noteRecorded, scoped } from './scope.js';
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
  readonly needsInputGrad: boolean[];
  private readonly savedTensors: { t: Tensor; version: number }[] = [];
  private readonly keptTensors: Tensor[] = [];
  private readonly opName: string;

  constructor(opName: string, needsInputGrad: boolean[]) {
    this.opName = opName;
    this.needsInputGrad = needsInputGrad;
  }

  /** Saves tensors for backward; modifying one in place before backward is then an error. */
  save(...tensors: Tensor[]): void {
    for (const t of tensors) this.savedTensors.push({ t, version: t.version });
  }

  /** Holds a tensor the backward reads that nothing writes in place (no version check); returns it. */
  keep<T extends Tensor>(t: T): T {
    this.keptTensors.push(t);
    return t;
  }

  /** Adds the storages this context holds for the backward: the saved and the kept tensors. */
  heldBuffers(out: Set<unknown>): void {
    for (const { t } of this.savedTensors) out.add(t.buf);
    for (const t of this.keptTensors) out.add(t.buf);
  }

  /** The saved tensors, checked against in-place modification since they were saved. */
  get saved(): Tensor[] {
    return this.savedTensors.map(({ t, version }, i) => {
      if (t.version !== version) {
        throw new Error(`${this.opName}: one of the tensors needed for gradient computation (saved tensor ${i}, ` +
          `${t.dtype} ${fmt(t.shape)}) has been modified by an inplace operation: it is at version ${t.version}; ` +
          `expected version ${version} instead.`);
      }
      return t;
    });
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
}

/** The edge a gradient for `t` flows along: its producing node, or its AccumulateGrad node. */
export function gradEdge(t: Tensor): Edge {
  syncView(t);
  if (t.gradFn) return { node: t.gradFn, index: t.outputIndex };
  t.accumulator ??= new Node('AccumulateGrad', [], [], [{ shape: t.shape, dtype: t.dtype, device: t.device }], null, t);
  return { node: t.accumulator, index: 0 };
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export function defineOp<A extends unknown[], R extends Tensor | Tensor[], S extends object = {}>(
  def: OpDef<A, R, S>): (...args: A) => R {
  const op = (...args: A): R => {
    for (const a of args) if (a instanceof Tensor) syncView(a);
    const needs = args.map((a) => a instanceof Tensor && a.requiresGrad);
    const ctx = new CtxBase(def.name, needs) as Ctx<S>;
    // The forward's own temporaries are freed as it returns; its outputs and whatever the ctx
    // holds for the backward (saved tensors, stashed raw buffers) live on.
    const result = scoped(() => noGrad(() => def.forward(ctx, ...args)),
      (r) => { const held = buffersOf(r, new Set()); ctx.heldBuffers(held); return held; });
    if (!isGradEnabled() || !needs.some(Boolean)) return result;

    const outs: Tensor[] = Array.isArray(result) ? result : [result];
    // An output that is one of the inputs becomes an alias, so the input keeps its own gradFn.
    const fresh = outs.map((o) => (args.includes(o) ? o.aliasAs(o.shape) : o));
    const edges = args.map((a, i) => (needs[i] ? gradEdge(a as Tensor) : null));
    const inputShapes = args.map((a) => (a instanceof Tensor ? a.shape : null));
    const node = new Node(def.name, edges, inputShapes,
      fresh.map((o) => ({ shape: o.shape, dtype: o.dtype, device: o.device })),
      (grads) => {
        const r = def.backward(ctx, ...grads);
        return Array.isArray(r) ? r : [r];
      });
    if (isAnomalyEnabled()) node.stack = new Error(`${def.name} created at`).stack;
    noteRecorded(ctx);
    fresh.forEach((o, i) => {
      if (o.dtype === 'int32' || o.dtype === 'int64') return;
      o.gradFn = node;
      o.outputIndex = i;
      o.requiresGrad = true;
    });
    return (Array.isArray(result) ? fresh : fresh[0]) as R;
  };
  // The op's name on the function too: stack traces and gradcheck's report show it.
  return Object.defineProperty(op, 'name', { value: def.name });
}

/** A user's own differentiable op: PyTorch's `torch.autograd.Function`, the same path built-ins use. */
export const defineFunction = defineOp;
