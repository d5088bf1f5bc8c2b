/**
 * The tape. Each recorded op is a Node holding edges to where its inputs' gradients go, and the
 * op's backward with its context, which map output gradients to input gradients. `runBackward`
 * orders the graph once (depth-first post-order) and walks it in reverse, summing gradients that
 * meet at a node.
 */
import { fmt, sameShape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Where a gradient flows: output `index` of `node`. */
export interface Edge {
  node: Node;
  index: number;
}

/** An op's VJP as defineOp's OpDef has it: the op's context, then one gradient per output. */
export interface Backward {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  backward(ctx: any, ...grads: Tensor[]): (Tensor | null | undefined)[] | Tensor;
}

export class Node {
  readonly name: string;
  /** One edge per differentiable input; null where that input needs no gradient. */
  readonly edges: (Edge | null)[];
  /**
   * Shapes and dtypes of the outputs, to materialize zero gradients and check results. Read only:
   * nodes whose outputs look alike share one list (defineOp).
   */
  readonly outputMeta: readonly { readonly shape: readonly number[]; readonly dtype: string; readonly device: string }[];
  /** Hooks per output index, run on the summed gradient before the backward; null until one is registered. */
  outputHooks: ((g: Tensor) => Tensor | void)[][] | null = null;
  /** The forward's creation stack, kept under detectAnomaly. */
  stack: string | undefined;
  // The op and its context rather than a closure over them: one object fewer per recorded op (issue 17).
  private op: Backward | null;
  private ctx: unknown;
  /** For AccumulateGrad nodes: the leaf. */
  readonly leaf: Tensor | null;
  /** @internal The engine's: the number of the last walk over the graph that reached this node. */
  visited = 0;

  constructor(name: string, edges: (Edge | null)[], outputMeta: Node['outputMeta'], op: Backward | null,
    ctx: unknown = null, leaf: Tensor | null = null) {
    this.name = name;
    this.edges = edges;
    this.outputMeta = outputMeta;
    this.op = op;
    this.ctx = ctx;
    this.leaf = leaf;
  }

  /**
   * Runs the op's backward; after `release()` that is an error, as in PyTorch. As PyTorch checks a
   * custom Function's: it must return an entry (a gradient, or null) for every input that needs
   * one and none beyond its inputs; each gradient must have its input's shape and device (one of
   * another dtype the engine casts to the input's).
   */
  apply(grads: Tensor[]): (Tensor | null | undefined)[] {
    if (!this.op) {
      throw new Error(`${this.name}: trying to backward through the graph a second time (or to use saved ` +
        `tensors after they were freed). Pass { retainGraph: true } to the first backward if you need this.`);
    }
    const r = this.op.backward(this.ctx, ...grads);
    const out = Array.isArray(r) ? r : [r];
    const n = this.edges.length;
    for (let i = n; i < out.length; i++) {
      if (out[i]) throw new Error(`${this.name}: backward returned ${out.length} gradients for ${n} inputs`);
    }
    for (let i = 0; i < n; i++) {
      const g = out[i];
      const e = this.edges[i];
      if (!e) continue;
      if (g === undefined) {
        throw new Error(`${this.name}: backward returned ${out.length} gradients for ${n} inputs; input ${i} needs one ` +
          '(return null for a zero gradient)');
      }
      if (!g) continue;
      const want = e.node.outputMeta[e.index]!;
      if (!sameShape(g.shape, want.shape)) {
        throw new Error(`${this.name}: backward returned a gradient of shape ${fmt(g.shape)} for input ${i}, ` +
          `whose shape is ${fmt(want.shape)}`);
      }
      if (g.device !== want.device) {
        throw new Error(`${this.name}: backward returned a gradient on ${g.device} for input ${i}, which is on ${want.device}`);
      }
    }
    return out;
  }

  /** Drops the op's context and with it every saved tensor. */
  release(): void {
    this.op = null;
    this.ctx = null;
  }
}
