/**
 * tidy / keep: deterministic release of native memory, with TensorFlow.js's semantics.
 *
 * A JS engine frees objects when it likes, so a native buffer owned by a tensor would otherwise
 * live until a finalizer runs, long after the step that made it (a training loop then grows its
 * memory and slows down). Inside `tidy(fn)` every buffer a backend creates is recorded; when fn
 * returns, each one is freed unless fn returned a tensor on it or it was `keep()`-ed. Buffers
 * stored for later by the library itself (a leaf's `.grad`, optimizer state, module parameters
 * and buffers) are kept automatically. A tensor that escapes a tidy any other way (assigned to
 * an outer variable) is freed under it: using it then throws "... was disposed".
 */
import type { Backend } from './backend.js';
import { Scope } from './scope_buffers.js';

export { Scope };

const stack: Scope[] = [];

/**
 * The last element of a stack, undefined when it is empty. Not `a[a.length - 1]`: on an empty
 * array that reads index -1, a named property V8 looks up along the prototype chain, slowly.
 */
const innermost = <T>(a: readonly T[]): T | undefined => (a.length ? a[a.length - 1] : undefined);

/**
 * @internal Records the buffers of a kernel's or upload's result (a raw tensor, or an object of
 * them) in the open tidy scope, to be freed by `backend` when it closes.
 */
export function recordCreated(result: unknown, backend: Backend): void {
  if (result === null || typeof result !== 'object') return;
  const top = innermost(stack);
  if (!top) {
    // No tidy owns it: the garbage collector does.
    if (!backend.collectable) return;
    if ('buf' in result) backend.collectable((result as HasBuf).buf);
    else for (const v of Object.values(result)) if (v && typeof v === 'object' && 'buf' in v) backend.collectable(v.buf);
    return;
  }
  if ('buf' in result) top.set((top.last = (result as HasBuf).buf), backend);
  else for (const v of Object.values(result)) if (v && typeof v === 'object' && 'buf' in v) top.set((top.last = v.buf), backend);
}

/** Anything holding a backend buffer: a Tensor, or a raw kernel result. */
interface HasBuf { readonly buf: unknown }

/**
 * Removes a tensor's buffer from every enclosing tidy, so it outlives them; it is then freed by
 * `dispose()` or by the garbage collector. Returns the tensor.
 */
export function keep<T extends HasBuf>(t: T): T {
  let owner: Backend | undefined;
  for (const s of stack) {
    const b = s.get(t.buf);
    if (b) { owner = b; s.delete(t.buf); }
  }
  owner?.collectable?.(t.buf);
  return t;
}

/** The buffers of the tensors in a tidy's result: a tensor, or arrays / plain objects of them. */
function collect(v: unknown, out: Set<unknown>, depth = 0): void {
  if (v === null || typeof v !== 'object' || depth > 4) return;
  if ('buf' in v && 'shape' in v) {
    out.add((v as HasBuf).buf);
    // A dual tensor's tangent lives as long as it does.
    const tangent = (v as { tangent?: unknown }).tangent;
    if (tangent) collect(tangent, out, depth + 1);
    return;
  }
  if (Array.isArray(v)) { for (const x of v) collect(x, out, depth + 1); return; }
  if (Object.getPrototypeOf(v) === Object.prototype || v instanceof Map) {
    for (const x of v instanceof Map ? v.values() : Object.values(v)) collect(x, out, depth + 1);
  }
}

/**
 * Runs fn and frees every backend buffer created during it except those of the tensors it
 * returns (a tensor, or an array / plain object of tensors), which move to the enclosing tidy.
 * Synchronous only: fn must not return a Promise.
 *
 * @example const lossValue = tidy(() => { const loss = step(x, y); loss.backward(); opt.step(); return loss.item(); });
 */
export function tidy<T>(fn: () => T): T {
  return scoped(fn, (result) => {
    if (result instanceof Promise) throw new Error('tidy: fn must be synchronous (it returned a Promise)');
    const returned = new Set<unknown>();
    collect(result, returned);
    return returned;
  }, true);
}

/**
 * @internal The mechanism under tidy, also used by the library for its own temporaries (an
 * op's internal buffers, a backward's intermediate gradients): runs fn in a new scope, then frees
 * what it created except the buffers `survivors(result)` names, which move to the enclosing
 * scope. If fn throws, everything it created is freed. `resultSurvives`: the caller's survivors
 * always include the buffers of the result (a tensor or raw tensor), which allows a fast path.
 */
export function scoped<T>(fn: () => T, survivors: (result: T) => Set<unknown>, resultSurvives = false): T {
  const scope = openScope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(scope, new Set());
    throw e;
  }
  // Most ops' forwards create one buffer, their result's: when the survivors always include the
  // result's buffers, it moves up without building the survivor set (issue 17: per-op allocations).
  if (resultSurvives && !(result instanceof Promise) && createdOnlyResult(scope, result)) {
    closeScope(scope, 'all');
    return result;
  }
  let keepSet: Set<unknown>;
  try {
    keepSet = survivors(result);
  } catch (e) {
    closeScope(scope, new Set());
    throw e;
  }
  closeScope(scope, keepSet);
  return result;
}

/**
 * @internal scoped() for what the library runs per op (an op's forward, a node's backward), with no
 * closure to allocate: runs fn(a, b, c) in a new scope, then frees what it created except the
 * buffers of its result (a tensor or raw tensor, or an array of them) and those `held` holds.
 */
export function scopedCall<A, B, C, T>(fn: (a: A, b: B, c: C) => T, a: A, b: B, c: C, held?: HoldsBuffers): T {
  const scope = openScope();
  let result: T;
  try {
    result = fn(a, b, c);
  } catch (e) {
    closeScope(scope, new Set());
    throw e;
  }
  if (createdOnlyResult(scope, result)) {
    closeScope(scope, 'all');
  } else {
    const survivors = buffersOf(result, new Set());
    held?.heldBuffers(survivors);
    closeScope(scope, survivors);
  }
  return result;
}

/** Whether `scope` holds nothing, or one buffer, that of `result`: a tensor or raw tensor, or one in an array of them. */
function createdOnlyResult(scope: Scope, result: unknown): boolean {
  if (scope.size === 0) return true;
  if (scope.size !== 1 || !scope.has(scope.last)) return false;
  if (!Array.isArray(result)) return isBufOf(result, scope.last);
  for (const v of result) if (isBufOf(v, scope.last)) return true;
  return false;
}

const isBufOf = (v: unknown, buf: unknown) => v !== null && typeof v === 'object' && 'buf' in v && (v as HasBuf).buf === buf;


/** Something that holds buffers for a later backward: a recorded op's context. */
export interface HoldsBuffers { heldBuffers(out: Set<unknown>): void }

const recorders: HoldsBuffers[][] = [];

/** @internal Called by defineOp for every op it records on the tape. */
export function noteRecorded(h: HoldsBuffers): void {
  innermost(recorders)?.push(h);
}

/**
 * Like tidy, but also keeps every buffer an op recorded inside fn saved for its backward: what is
 * freed on return is exactly the intermediates the tape does not need (a batch norm's output once
 * the relu after it saved its own). For code whose intermediates nobody else can see — a layer
 * without hooks — this gives PyTorch's memory profile, where such tensors die with their last
 * reference.
 */
export function tidyKeepingSaved<T>(fn: () => T): T {
  const mine: HoldsBuffers[] = [];
  recorders.push(mine);
  try {
    return scoped(fn, (result) => {
      const held = buffersOf(result, new Set());
      for (const h of mine) h.heldBuffers(held);
      return held;
    }, true);
  } finally {
    recorders.pop();
    // The ops recorded here still hold their buffers for an enclosing tidyKeepingSaved.
    recorders[recorders.length - 1]?.push(...mine);
  }
}

/**
 * Runs x through `stages` in turn, as a Sequential does, freeing what tidyKeepingSaved frees and
 * sooner: each stage's output is freed once the next stage has returned, unless an op recorded
 * for backward saved it or the new output shares its buffer. A chain of layers run for inference
 * then holds one map between stages instead of every one until the chain returns, the memory
 * profile PyTorch's reference counting gives. For stages whose outputs nobody else sees: no
 * hooks, and no stage keeps its input for later.
 */
export function pipeKeepingSaved<T extends HasBuf>(x: T, stages: readonly ((input: T) => T)[]): T {
  return tidyKeepingSaved(() => {
    const scope = stack[stack.length - 1]!;
    const recorded = recorders[recorders.length - 1]!;
    let out = x;
    for (const stage of stages) {
      const prev = out;
      out = stage(prev);
      if (prev === x) continue;
      const held = buffersOf(out, new Set());
      for (const h of recorded) h.heldBuffers(held);
      for (const buf of buffersOf(prev, new Set())) if (!held.has(buf)) freeIfCreated(scope, buf);
    }
    return out;
  });
}

/**
 * Closed scopes, emptied, for the next to open: scopes nest, so a few serve every op's forward and
 * backward instead of an object each (issue 17: allocations per op).
 */
const spare: Scope[] = [];

/** @internal Opens a scope; every buffer created until it is closed is recorded in it. */
export function openScope(): Scope {
  const scope = spare.pop() ?? new Scope();
  stack.push(scope);
  return scope;
}

/**
 * @internal Closes the innermost scope (which must be `scope`): frees its buffers except
 * `survivors` ('all': every one), which move to the enclosing scope (or, with none open, to the
 * garbage collector).
 */
export function closeScope(scope: Scope, survivors: Set<unknown> | 'all'): void {
  if (stack.pop() !== scope) throw new Error('internal error: scopes closed out of order');
  scope.close(innermost(stack), survivors);
  scope.clear();
  if (spare.length < 64) spare.push(scope);
}

/** @internal Frees `buf` now if `scope` created it (and nothing kept it); returns whether it did. */
export function freeIfCreated(scope: Scope, buf: unknown): boolean {
  const backend = scope.get(buf);
  if (!backend) return false;
  scope.delete(buf);
  backend.free!(buf);
  return true;
}

/** @internal Adds the buffers of a tensor, raw tensor, or an array of them to `out`. */
export function buffersOf(v: unknown, out: Set<unknown>): Set<unknown> {
  collect(v, out);
  return out;
}

/**
 * Buffers that work outside JavaScript still reads or writes (a collective on MPI's thread or
 * NCCL's stream), with how many works hold each: freeing one (a tidy closing, a dispose) waits
 * until the last lets go, as PyTorch's process groups hold their tensors' storage.
 */
const pins = new Map<unknown, { count: number; free: ((buf: unknown) => void) | null }>();

/** @internal Holds `buf` from being freed until unpinBuffer; a free asked for meanwhile happens then. */
export function pinBuffer(buf: unknown): void {
  const p = pins.get(buf);
  if (p) p.count++;
  else pins.set(buf, { count: 1, free: null });
}

/** @internal Lets go of a pinBuffer; the last one runs the free asked for while it was pinned. */
export function unpinBuffer(buf: unknown): void {
  const p = pins.get(buf);
  if (!p || --p.count > 0) return;
  pins.delete(buf);
  p.free?.(buf);
}

/** @internal For a backend's free: defers it while `buf` is pinned, and says whether it did. */
export function deferFree(buf: unknown, free: (buf: unknown) => void): boolean {
  if (pins.size === 0) return false;
  const p = pins.get(buf);
  if (!p) return false;
  p.free = free;
  return true;
}

/** @internal How many tidy scopes are open (tests). */
export function tidyDepth(): number {
  return stack.length;
}

/** @internal Whether an open tidy scope still holds `buf` (one that was recorded and not yet freed or released). */
export function isHeldByScope(buf: unknown): boolean {
  return stack.some((s) => s.has(buf));
}
