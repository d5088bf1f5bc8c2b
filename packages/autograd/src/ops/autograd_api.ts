/** The tape as methods: detach, requiresGrad_, hooks, retainGrad, clone, to (backward lives in engine.ts). */
import { backends, getBackend } from '../registry.js';
import { isDType, isFloat, type DType } from '../dtype.js';
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { Tensor, type Hook } from '../tensor.js';
import { kernels, wrap } from './util.js';
import { keep } from '../scope.js';

/** A tensor sharing storage with x but cut from the graph. */
export function detach(x: Tensor): Tensor {
  return x.aliasAs(x.shape);
}

/** Sets requiresGrad on a leaf (PyTorch's requires_grad_); returns x. */
export function requiresGrad_(x: Tensor, flag = true): Tensor {
  if (!x.isLeaf && !flag) {
    throw new Error('requiresGrad_: cannot turn off requiresGrad on a non-leaf tensor; use detach() instead');
  }
  if (flag && !isFloat(x.dtype)) throw new Error(`requiresGrad_: only float tensors can require gradients, got ${x.dtype}`);
  x.requiresGrad = flag;
  return x;
}

/**
 * Registers fn to run on this tensor's gradient when it is computed; a returned tensor replaces
 * the gradient. Returns a function that removes the hook.
 */
export function registerHook(x: Tensor, fn: Hook): () => void {
  if (!x.requiresGrad) throw new Error("registerHook: cannot register a hook on a tensor that doesn't require grad");
  const list = x.gradFn ? ((x.gradFn.outputHooks ??= [])[x.outputIndex] ??= []) : (x.leafHooks ??= []);
  // retainGrad's hook stays last, as in PyTorch: `.grad` holds what the other hooks made.
  const retain = list.findIndex((h) => RETAINS in h);
  if (retain >= 0) list.splice(retain, 0, fn);
  else list.push(fn);
  return removal(list, fn);
}

/** Removes fn from list once; calling it again does nothing (PyTorch's RemovableHandle). */
function removal<F>(list: F[], fn: F): () => void {
  let removed = false;
  return () => {
    const i = removed ? -1 : list.indexOf(fn);
    removed = true;
    if (i >= 0) list.splice(i, 1);
  };
}

/** Marks retainGrad's hook. */
const RETAINS = Symbol('retainGrad');

/**
 * Registers fn to run on a leaf after backward has accumulated its gradient into `.grad` (not
 * for `grad()`, which accumulates nothing), as PyTorch's register_post_accumulate_grad_hook: what
 * DistributedDataParallel uses to start reducing a bucket as soon as its gradients are final.
 * Returns a function that removes the hook.
 */
export function registerPostAccumulateGradHook(x: Tensor, fn: (leaf: Tensor) => void): () => void {
  if (!x.isLeaf) throw new Error(`registerPostAccumulateGradHook: only leaf tensors accumulate a gradient; got a tensor made by ${x.gradFn!.name}`);
  if (!x.requiresGrad) throw new Error("registerPostAccumulateGradHook: cannot register a hook on a tensor that doesn't require grad");
  const list = (x.postAccumulateHooks ??= []);
  list.push(fn);
  return removal(list, fn);
}

/** Keeps the gradient of a non-leaf in `.grad` after backward. */
export function retainGrad(x: Tensor): Tensor {
  if (!x.requiresGrad) throw new Error("retainGrad: cannot retain the gradient of a tensor that doesn't require grad");
  if (x.isLeaf || x.retainsGrad) return x;
  x.retainsGrad = true;
  const hook = Object.assign((g: Tensor) => {
    x.grad = keep(x.grad ? wrap(kernels(g).Add(x.grad, g), g) : g.aliasAs(g.shape));
  }, { [RETAINS]: true });
  registerHook(x, hook);
  return x;
}

const cloneOp = defineOp({
  name: 'clone',
  forward: (_ctx, x: Tensor) => wrap(kernels(x).Copy(x), x),
  backward: (_ctx, g) => [g],
  jvp: (_ctx, [t]) => t,
  jvpElementwise: true,
});

const castOp = defineOp({
  name: 'to',
  forward(ctx: Ctx<{ from: DType }>, x: Tensor, dtype: DType) {
    ctx.from = x.dtype;
    return wrap(kernels(x).Cast(x, dtype), x);
  },
  backward: (ctx, g) => [to(g, ctx.from)],
  jvp: (_ctx, [t], _out, _x, dtype) => to(t!, dtype),
  jvpElementwise: true,
});

const moveOp = defineOp({
  name: 'to',
  forward(ctx: Ctx<{ from: string }>, x: Tensor, device: string) {
    ctx.from = x.device;
    // Between devices the data crosses through the host: the one transfer a move asks for.
    return Tensor.fromData(x.dataSync(), x.shape, x.dtype, device);
  },
  backward: (ctx, g) => [to(g, ctx.from)],
  jvp: (_ctx, [t], _out, _x, device) => to(t!, device),
  jvpElementwise: true,
});

/** Converts to a dtype or moves to a device; returns x itself when nothing changes. */
export function to(x: Tensor, target: DType | string): Tensor {
  if (isDType(target)) {
    if (target === x.dtype) return x;
    if (x.requiresGrad && !isFloat(target as DType)) return detach(wrap(kernels(x).Cast(x, target as DType), x));
    return castOp(x, target as DType);
  }
  if (target === x.device) return x;
  getBackend(target);
  return moveOp(x, target);
}

/**
 * To host memory, as PyTorch's .cpu(): the native 'cpu' device when it is registered, else 'ts';
 * x itself when it is there already.
 */
export function cpu(x: Tensor): Tensor {
  if (x.device === 'cpu' || x.device === 'ts') return x;
  return to(x, backends().some((b) => b.name === 'cpu' && b.available) ? 'cpu' : 'ts');
}

export function clone(x: Tensor): Tensor {
  return cloneOp(x);
}

installMethods({
  detach, requiresGrad_, registerHook, registerPostAccumulateGradHook, retainGrad, clone, to, cpu,
});

declare module '../tensor.js' {
  interface Tensor {
    detach(): Tensor;
    requiresGrad_(flag?: boolean): Tensor;
    registerHook(fn: Hook): () => void;
    registerPostAccumulateGradHook(fn: (leaf: Tensor) => void): () => void;
    retainGrad(): Tensor;
    clone(): Tensor;
    to(target: DType | string): Tensor;
    cpu(): Tensor;
  }
}
