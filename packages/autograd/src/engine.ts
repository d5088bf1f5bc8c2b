/**
 * Runs the tape backwards: `backward` accumulates into leaves' `.grad`, `grad` returns the
 * gradients of chosen inputs without touching `.grad`.
 */
import { gradEdge } from './function.js';
import { GradBuffers } from './grad_buffers.js';
import { withoutAutocast } from './autocast.js';
import { enableGrad, isAnomalyEnabled, noGrad } from './grad_mode.js';
import { installMethods } from './methods.js';
import { add } from './ops/arith.js';
import { fullLike } from './ops/creation.js';
import type { DType } from './dtype.js';
import { fmt, sameShape } from './shape.js';
import type { Edge, Node } from './tape.js';
import { syncView, Tensor } from './tensor.js';
import { closeScope, keep, openScope, scoped, scopedCall } from './scope.js';

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
  syncView(t); // a view whose base gained history since must report it
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
    if (g.device !== t.device) throw new Error(`${op}: gradient on ${g.device} for an output on ${t.device}`);
    // As PyTorch: the seed takes the output's dtype, so every gradient below keeps its input's.
    return g.dtype === t.dtype ? g : g.to(t.dtype);
  }
  if (t.size !== 1) {
    throw new Error(`${op}: a gradient can be created implicitly only for one-element outputs, got shape ${fmt(t.shape)}`);
  }
  return fullLike(t, 1);
}

/** The number of the latest postOrder walk: a node it reached has it as its `visited`. */
let walk = 0;

/**
 * Nodes reachable from the roots, in depth-first post-order (inputs before their users). A node
 * is marked with the walk's number rather than kept in a Set, and the stack is two parallel
 * arrays, not an object per node (issue 17: a Set of a thousand nodes was a twentieth of a chain).
 */
function postOrder(roots: Node[]): Node[] {
  const order: Node[] = [];
  const mark = ++walk;
  const nodes: Node[] = [];
  const next: number[] = [];
  for (const r of roots) {
    if (r.visited === mark) continue;
    r.visited = mark;
    nodes.push(r);
    next.push(0);
    while (nodes.length) {
      const top = nodes.length - 1;
      const node = nodes[top]!;
      const k = next[top]!++;
      if (k >= node.edges.length) {
        nodes.pop();
        next.pop();
        order.push(node);
        continue;
      }
      const e = node.edges[k];
      if (e && e.node.visited !== mark) {
        e.node.visited = mark;
        nodes.push(e.node);
        next.push(0);
      }
    }
  }
  return order;
}

function checkFinite(node: Node, grads: (Tensor | null | undefined)[]): void {
  grads.forEach((g, i) => {
    if (g && g.dataSync().some((v) => !Number.isFinite(v))) {
      throw new Error(`Function '${node.name}' returned nan or inf values in its gradient for input ${i}. ` +
        `The forward op was created at:\n${node.stack ?? '(stack not recorded)'}`);
    }
  });
}

/** In grad() mode, the nodes on a path to a captured input: only they run. */
function neededNodes(order: Node[], capture: Map<Node, Map<number, number[]>>): Set<Node> {
  const needed = new Set<Node>();
  for (const n of order) {
    if (capture.has(n) || n.edges.some((e) => e && needed.has(e.node))) needed.add(n);
  }
  return needed;
}

/** node.apply as a function of its own, for scopedCall: no closure per node. */
const applyNode = (node: Node, grads: Tensor[]) => node.apply(grads);

/** A node's output gradients with zeros where none arrived. */
function zeroFilled(node: Node, grads: readonly (Tensor | undefined)[]): Tensor[] {
  return node.outputMeta.map((m, i) => grads[i] ?? fullLike(m, 0));
}

/** Whether every one of n output gradients arrived (slots may have holes: every() would skip them). */
function allArrived(grads: readonly (Tensor | undefined)[], n: number): boolean {
  if (grads.length < n) return false;
  for (let i = 0; i < n; i++) if (!grads[i]) return false;
  return true;
}

/** A node's summed output gradients after its hooks (a leaf's hooks live on the tensor, so grad() runs them too). */
function runHooks(node: Node, slots: (Tensor | undefined)[], buffers: GradBuffers, consumed: (Tensor | undefined)[]) {
  return node.outputMeta.map((_m, i) => {
    const first = slots[i];
    if (!first) return undefined;
    let g: Tensor = first;
    const hooks = (node.leaf ? node.leaf.leafHooks : node.outputHooks?.[i]) ?? [];
    // A copy: a hook may remove itself, which must not skip the next one.
    for (const h of hooks.length > 1 ? [...hooks] : hooks) {
      buffers.spare(g); // a hook may keep what it is given
      // A returned tensor replaces the gradient; anything else (an arrow function's value) does not.
      const out: unknown = h(g);
      const r: Tensor = out instanceof Tensor ? out : g;
      // As PyTorch: a hook may change the values, not the shape, dtype or device.
      if (r !== g && (!sameShape(r.shape, g.shape) || r.dtype !== g.dtype || r.device !== g.device)) {
        throw new Error(`hook '${h.name || 'anonymous'}' changed the gradient from ${g.dtype} ${fmt(g.shape)} on ${g.device} ` +
          `to ${r.dtype} ${fmt(r.shape)} on ${r.device}`);
      }
      g = r;
      consumed.push(g);
    }
    return g;
  });
}

/**
 * backward() at a leaf: accumulate into `.grad`, then the post-accumulate hooks. `steal`: g is
 * the pass's own temporary, which the leaf may keep instead of copying.
 */
function runLeaf(leaf: Tensor, g: Tensor, createGraph: boolean, steal: boolean): void {
  if (createGraph) accumulateLeaf(leaf, g, true, false);
  else scoped(() => accumulateLeaf(leaf, g, false, steal), () => new Set());
  if (!leaf.postAccumulateHooks?.length) return;
  for (const h of [...leaf.postAccumulateHooks]) {
    // A tensor back means a hook written as a tensor hook (PyTorch: "should return None"); any
    // other value is an arrow function's expression, ignored.
    if ((h(leaf) as unknown) instanceof Tensor) {
      throw new Error(`post-accumulate-grad hook '${h.name || 'anonymous'}' returned a tensor; it must return nothing (it may change leaf.grad in place)`);
    }
  }
}

/**
 * Walks the graph from the roots in reverse topological order, running each node's backward once
 * all its output gradients have arrived. `capture` (grad() mode) maps nodes to the output slots
 * whose gradient is returned in `captured`; without it, leaves accumulate into `.grad`.
 */
function execute(rootEdges: Edge[], rootGrads: Tensor[], opts: BackwardOptions,
  capture: Map<Node, Map<number, number[]>> | null, captured: (Tensor | null)[]): void {
  const retain = opts.retainGraph ?? opts.createGraph ?? false;
  const order = postOrder(rootEdges.map((e) => e.node));
  const needed = capture ? neededNodes(order, capture) : null;
  const scope = opts.createGraph ? null : openScope();
  const buffers = new GradBuffers(scope);
  rootEdges.forEach((e, i) => buffers.accumulate(e, rootGrads[i]!));

  const step = (node: Node) => {
    const slots = buffers.take(node);
    if (!slots) return;
    // Without hooks the summed gradients are the node's inputs as they are (no copies: issue 17).
    const hooked = node.leaf ? !!node.leaf.leafHooks?.length : node.outputHooks !== null;
    const consumed: (Tensor | undefined)[] = hooked ? [...slots] : slots;
    const grads = hooked ? runHooks(node, slots, buffers, consumed) : slots;
    const caught = capture?.get(node);
    if (caught) {
      for (const [i, slots] of caught) {
        for (const slot of slots) captured[slot] = grads[i] ?? null;
        if (grads[i]) buffers.spare(grads[i]!);
      }
    }
    if (node.leaf) {
      if (!capture) runLeaf(node.leaf, grads[0]!, !scope, buffers.disposable(grads[0]!));
      buffers.release(consumed);
      return;
    }
    // grad() stops at a captured input unless another captured input lies further back.
    if (needed && !node.edges.some((e) => e && needed.has(e.node))) return;
    const full = allArrived(grads, node.outputMeta.length) ? grads as Tensor[] : zeroFilled(node, grads);
    // The backward's own temporaries are freed as it returns; the gradients it returns live on.
    const inGrads = scope ? scopedCall(applyNode, node, full, undefined) : node.apply(full);
    if (isAnomalyEnabled()) checkFinite(node, inGrads);
    for (let i = 0; i < node.edges.length; i++) {
      const e = node.edges[i];
      let g = inGrads[i];
      if (!e || !g) continue;
      // As PyTorch: a gradient of another dtype than its input (a custom backward's) takes the input's.
      const dtype = e.node.outputMeta[e.index]!.dtype as DType;
      if (g.dtype !== dtype) inGrads[i] = g = g.to(dtype);
      buffers.accumulate(e, g);
    }
    buffers.release(consumed);
    if (full !== grads) buffers.release(full);
    buffers.release(inGrads);
    if (!retain) node.release();
  };
  const run = () => {
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      if (!needed || needed.has(node)) step(node);
    }
  };
  // Backward runs with autocast off: each gradient op takes the types its forward chose.
  if (!scope) {
    enableGrad(() => withoutAutocast(run));
    return;
  }
  try {
    noGrad(() => withoutAutocast(run));
  } finally {
    // What is left (gradients grad() returns, anything still referenced) passes to the caller's scope.
    closeScope(scope, 'all');
  }
}

/** Gradients the engine allocated for a leaf's `.grad`, which releaseGrad may free at once. */
const ownedGrads = new WeakSet<Tensor>();

/**
 * As PyTorch's AccumulateGrad: the first gradient is stored in a buffer of the leaf's own (the
 * incoming one when nothing else can see it, as PyTorch steals a gradient it holds the only
 * reference to; else a device copy), later ones are added into it (or into a `.grad` the user
 * set) in place; with createGraph the sum is out of place and keeps its history. The stored
 * gradient outlives any tidy() scope.
 */
function accumulateLeaf(leaf: Tensor, g: Tensor, createGraph: boolean, steal: boolean): void {
  const old = leaf.grad;
  if (createGraph) {
    // A gradient without history may be the caller's seed or shared with another leaf (add's
    // backward hands both inputs one tensor): the leaf gets its own copy, which a later backward
    // may then add into in place (PyTorch's clone_obey_contract).
    leaf.grad = keep(old ? add(old, g) : g.gradFn ? g : Tensor.fromRaw(g.backend.kernels.Copy(g), g.backend));
  } else if (old && !old.gradFn && !old.requiresGrad) {
    // In place, the engine's buffer or one the user set (PyTorch's `variable_grad += new_grad`):
    // whoever holds it, a preallocated gradient bucket say, sees the sum.
    old.assign(old.backend.kernels.Add(old, g));
  } else {
    const first = steal && !g.gradFn ? g.takeOwnership() : Tensor.fromRaw(g.backend.kernels.Copy(g), g.backend);
    leaf.grad = keep(old ? add(old, g) : first);
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
  if (Array.isArray(grads) && gs.length !== outs.length) throw new Error(`backward: got ${outs.length} outputs and ${gs.length} gradients`);
  const edges = outs.map((t, i) => rootEdge('backward', t, i));
  execute(edges, outs.map((t, i) => defaultGrad('backward', t, gs[i])), opts, null, []);
}

/** The gradients of outputs with respect to inputs, as `torch.autograd.grad`. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  if (ins.length === 0) throw new Error('grad: inputs must not be empty');
  const gs = opts.gradOutputs ?? [];
  if (opts.gradOutputs && gs.length !== outs.length) throw new Error(`grad: got ${outs.length} outputs and ${gs.length} gradOutputs`);
  const capture = new Map<Node, Map<number, number[]>>();
  ins.forEach((t, slot) => {
    if (!t.requiresGrad) throw new Error(`grad: input ${slot} (${fmt(t.shape)}) does not require grad`);
    const e = gradEdge(t);
    if (!capture.has(e.node)) capture.set(e.node, new Map());
    const slots = capture.get(e.node)!;
    // The same input twice gets its gradient twice, as in PyTorch.
    slots.set(e.index, [...(slots.get(e.index) ?? []), slot]);
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

installMethods({
  backward: (x: Tensor, grad?: Tensor | null, opts?: BackwardOptions) => backward(x, grad ?? null, opts),
});

declare module './tensor.js' {
  interface Tensor {
    /** Accumulates gradients of this tensor into the leaves' `.grad`. */
    backward(grad?: Tensor | null, opts?: BackwardOptions): void;
  }
}
