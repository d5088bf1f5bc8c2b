/**
 * The tape. Each recorded op is a Node holding edges to where its inputs' gradients go and a
 * closure that maps output gradients to input gradients. `runBackward` orders the graph once
 * (depth-first post-order) and walks it in reverse, summing gradients that meet at a node.
 */
import { fmt, sameShape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Where a gradient flows: output `index` of `node`. */
export interface Edge {
  node: Node;
  index: number;
}

export type BackwardFn = (grads: Tensor[]) => (Tensor | null | undefined)[];

export class Node {
  readonly name: string;
  /** One edge per differentiable input; null where that input needs no gradient. */
  readonly edges: (Edge | null)[];
  /** Shapes and dtypes of the outputs, to materialize zero gradients and check results. */
  readonly outputMeta: { shape: readonly number[]; dtype: string; device: string }[];
  /** Shapes of the inputs, to check each gradient the backward returns. */
  readonly inputShapes: (readonly number[] | null)[];
  /** Hooks per output index, run on the summed gradient before the backward; null until one is registered. */
  outputHooks: ((g: Tensor) => Tensor | void)[][] | null = null;
  /** The forward's creation stack, kept under detectAnomaly. */
  stack: string | undefined;
  private fn: BackwardFn | null;
  /** For AccumulateGrad nodes: the leaf. */
  readonly leaf: Tensor | null;

  constructor(name: string, edges: (Edge | null)[], inputShapes: (readonly number[] | null)[],
    outputMeta: Node['outputMeta'], fn: BackwardFn | null, leaf: Tensor | null = null) {
    this.name = name;
    this.edges = edges;
    this.inputShapes = inputShapes;
    this.outputMeta = outputMeta;
    this.fn = fn;
    this.leaf = leaf;
  }

  /** Runs the backward closure; after `release()` that is an error, as in PyTorch. */
  apply(grads: Tensor[]): (Tensor | null | undefined)[] {
    if (!this.fn) {
      throw new Error(`${this.name}: trying to backward through the graph a second time (or to use saved ` +
        `tensors after they were freed). Pass { retainGraph: true } to the first backward if you need this.`);
    }
    const out = this.fn(grads);
    for (let i = 0; i < this.edges.length; i++) {
      const g = out[i];
      const want = this.inputShapes[i];
      if (g && want && !sameShape(g.shape, want)) {
        throw new Error(`${this.name}: backward returned a gradient of shape ${fmt(g.shape)} for input ${i}, ` +
          `whose shape is ${fmt(want)}`);
      }
    }
    return out;
  }

  /** Drops the closure and with it every saved tensor. */
  release(): void {
    this.fn = null;
  }
}
