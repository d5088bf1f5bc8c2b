/**
 * Runs the tape backwards: `backward` accumulates into leaves' `.grad`, `grad` returns the
 * gradients of chosen inputs without touching `.grad`.
 */
import { gradEdge } from './function.js';
import { enableGrad, isAnomalyEnabled, noGrad } from './grad_mode.js';
import { add } from './ops/arith.js';
import { clone } from './ops/autograd_api.js';
import { add_ } from './ops/inplace.js';
import { fullLike } from './ops/creation.js';
import { fmt } from './shape.js';
import type { Edge, Node } from './tape.js';
import type { Tensor } from './tensor.js';
import { buffersOf, closeScope, freeIfCreated, keep, openScope, scoped } from './scope.js';

export interface BackwardOptions {
  /** Keep saved tensors so the graph can be walked again. */
  retainGraph?: boolean;
  /** Record the backward itself, for higher-order gradients (implies retainGraph). */
  createGraph?: boolean;
}

export interface GradOptions extends BackwardOptions {
  /** Gradients of the outputs; default ones for one-element outputs. */
  gradOutputs?: (Tensor | null)[];
  /** Return null for inputs the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

function rootEdge(op: string, t: Tensor, i: number): Edge {
  if (!t.requiresGrad) {
    throw new Error(`${op}: element ${i} of the outputs does not require grad and has no gradFn`);
  }
  return gradEdge(t);
}

function defaultGrad(op: string, t: Tensor, g: Tensor | null | undefined): Tensor {
  if (g) {
    if (g.shape.join() !== t.shape.join()) {
      throw new Error(`${op}: gradient of shape ${fmt(g.shape)} does not match output of shape ${fmt(t.shape)}`);
    }
    return g;
  }
  if (t.size !== 1) {
    throw new Error(`${op}: a gradient can be created implicitly only for one-element outputs, got shape ${fmt(t.shape)}`);
  }
  return fullLike(t, 1);
}

/** Nodes reachable from the roots, in depth-first post-order (inputs before their users). */
function postOrder(roots: Node[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  const stack: { node: Node; next: number }[] = [];
  for (const r of roots) {
    if (seen.has(r)) continue;
    seen.add(r);
    stack.push({ node: r, next: 0 });
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const e = top.node.edges[top.next++];
      if (top.next > top.node.edges.length) {
        stack.pop();
        order.push(top.node);
      } else if (e && !seen.has(e.node)) {
        seen.add(e.node);
        stack.push({ node: e.node, next: 0 });
      }
    }
  }
  return order;
}

function checkFinite(node: Node, grads: (Tensor | null | undefined)[]): void {
  grads.forEach((g, i) => {
    if (g && g.toTypedArray().some((v) => !Number.isFinite(v))) {
      throw new Error(`Function '${node.name}' returned nan or inf values in its gradient for input ${i}. ` +
        `The forward op was created at:\n${node.stack ?? '(stack not recorded)'}`);
    }
  });
}

function execute(rootEdges: Edge[], rootGrads: Tensor[], opts: BackwardOptions,
  capture: Map<Node, Map<number, number>> | null, captured: (Tensor | null)[]): void {
  const retain = opts.retainGraph ?? opts.createGraph ?? false;
  const order = postOrder(rootEdges.map((e) => e.node));
  // In grad() mode only nodes on a path to a captured input run.
  let needed: Set<Node> | null = null;
  if (capture) {
    needed = new Set();
    for (const n of order) {
      if (capture.has(n) || n.edges.some((e) => e && needed!.has(e.node))) needed.add(n);
    }
  }
  const buffers = new Map<Node, (Tensor | undefined)[]>();
  // Without createGraph, gradients between nodes are the engine's own temporaries: each is freed
  // as soon as no pending slot refers to its buffer (PyTorch frees them by reference count),
  // unless a hook saw it or grad() returns it. `uses` counts pending slots per buffer.
  const scope = opts.createGraph ? null : openScope();
  const uses = new Map<unknown, number>();
  const hold = (t: Tensor) => { uses.set(t.buf, (uses.get(t.buf) ?? 0) + 1); };
  const drop = (t: Tensor) => { uses.set(t.buf, uses.get(t.buf)! - 1); };
  const spare = new Set<unknown>();
  const release = (ts: (Tensor | null | undefined)[]) => {
    for (const t of ts) if (t && !uses.get(t.buf) && !spare.has(t.buf)) freeIfCreated(scope!, t.buf);
  };
  const accumulate = (e: Edge, g: Tensor) => {
    let b = buffers.get(e.node);
    if (!b) buffers.set(e.node, (b = []));
    const prev = b[e.index];
    const next = prev ? add(prev, g) : g;
    if (scope) { hold(next); if (prev) { drop(prev); release([prev]); } }
    b[e.index] = next;
  };
  rootEdges.forEach((e, i) => accumulate(e, rootGrads[i]!));

  const run = () => {
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      const buf = buffers.get(node);
      if (!buf || (needed && !needed.has(node))) continue;
      buffers.delete(node);
      if (scope) for (const g of buf) if (g) drop(g);
      const consumed: (Tensor | undefined)[] = [...buf];
      const grads = node.outputMeta.map((_m, i) => {
        let g = buf[i];
        if (!g) return undefined;
        // A leaf's hooks live on the tensor, so that grad() runs them as well as backward().
        const hooks = (node.leaf ? node.leaf.leafHooks : node.outputHooks[i]) ?? [];
        for (const h of hooks) {
          spare.add(g.buf); // a hook may keep what it is given
          g = h(g) ?? g;
          consumed.push(g);
        }
        return g;
      });
      const slots = capture?.get(node);
      if (slots) {
        for (const [i, slot] of slots) {
          captured[slot] = grads[i] ?? null;
          if (grads[i]) spare.add(grads[i]!.buf);
        }
      }
      if (node.leaf) {
        if (!capture) {
          if (scope) scoped(() => accumulateLeaf(node.leaf!, grads[0]!, false), () => new Set());
          else accumulateLeaf(node.leaf, grads[0]!, true);
          for (const h of [...node.leaf.postAccumulateHooks]) h(node.leaf);
        }
        if (scope) release(consumed);
        continue;
      }
      // grad() stops at a captured input unless another captured input lies further back.
      if (needed && !node.edges.some((e) => e && needed!.has(e.node))) continue;
      const full = grads.map((g, i) => g ?? fullLike(node.outputMeta[i]!, 0));
      // The backward's own temporaries are freed as it returns; the gradients it returns live on.
      const inGrads = scope ? scoped(() => node.apply(full), (r) => buffersOf(r, new Set())) : node.apply(full);
      if (isAnomalyEnabled()) checkFinite(node, inGrads);
      node.edges.forEach((e, i) => {
        const g = inGrads[i];
        if (e && g) accumulate(e, g);
      });
      if (scope) release([...consumed, ...full, ...inGrads]);
      if (!retain) node.release();
    }
  };
  if (!scope) {
    enableGrad(run);
    return;
  }
  try {
    noGrad(run);
  } finally {
    // What is left (gradients grad() returns, anything still referenced) passes to the caller's scope.
    closeScope(scope, new Set(scope.created.keys()));
  }
}

/** Gradients the engine allocated for a leaf's `.grad`: its own buffers, safe to update in place. */
const ownedGrads = new WeakSet<Tensor>();

/**
 * As PyTorch's AccumulateGrad: the first gradient is stored in a buffer of the leaf's own (a copy,
 * since the incoming one may be shared with another leaf or the caller), later ones are added into
 * it in place; with createGraph the sum is out of place and keeps its history. The stored
 * gradient outlives any tidy() scope.
 */
function accumulateLeaf(leaf: Tensor, g: Tensor, createGraph: boolean): void {
  const old = leaf.grad;
  if (createGraph) {
    leaf.grad = keep(old ? add(old, g) : g);
  } else if (old && ownedGrads.has(old) && !old.gradFn) {
    add_(old, g);
  } else {
    const sum = old ? add(old, g) : clone(g);
    leaf.grad = keep(sum.gradFn ? sum.moveAs(sum.shape) : sum);
    ownedGrads.add(leaf.grad);
  }
}

/**
 * Drops a tensor's `.grad` (zeroGrad with setToNone) and frees its native memory now when the
 * engine allocated it; hold on to a gradient past zeroGrad with `clone()`.
 */
export function releaseGrad(t: Tensor): void {
  const g = t.grad;
  t.grad = null;
  if (g && ownedGrads.has(g)) {
    ownedGrads.delete(g);
    g.dispose();
  }
}

/** Accumulates d(outputs)/d(leaf) into every leaf's `.grad`. */
export function backward(outputs: Tensor | Tensor[], grads?: Tensor | (Tensor | null)[] | null,
  opts: BackwardOptions = {}): void {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const gs = Array.isArray(grads) ? grads : [grads];
  const edges = outs.map((t, i) => rootEdge('backward', t, i));
  execute(edges, outs.map((t, i) => defaultGrad('backward', t, gs[i])), opts, null, []);
}

/** The gradients of outputs with respect to inputs, as `torch.autograd.grad`. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const gs = opts.gradOutputs ?? [];
  const capture = new Map<Node, Map<number, number>>();
  ins.forEach((t, slot) => {
    if (!t.requiresGrad) throw new Error(`grad: input ${slot} (${fmt(t.shape)}) does not require grad`);
    const e = gradEdge(t);
    if (!capture.has(e.node)) capture.set(e.node, new Map());
    capture.get(e.node)!.set(e.index, slot);
  });
  const captured: (Tensor | null)[] = ins.map(() => null);
  const edges = outs.map((t, i) => rootEdge('grad', t, i));
  execute(edges, outs.map((t, i) => defaultGrad('grad', t, gs[i])), opts, capture, captured);
  captured.forEach((g, i) => {
    if (!g && !opts.allowUnused) {
      throw new Error(`grad: input ${i} (${fmt(ins[i]!.shape)}) was not used in computing the outputs; ` +
        'pass { allowUnused: true } to get null for it');
    }
  });
  return captured;
}
