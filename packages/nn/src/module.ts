/**
 * Module: PyTorch's nn.Module. Parameters, buffers and child modules are registered by name and
 * exposed as properties (assigning to a registered name replaces the entry, so `model.fc = new
 * Linear(...)` works for transfer learning); names are dotted paths as in torchvision
 * checkpoints (`layer1.0.conv1.weight`).
 */
import { DTYPES, keep, noGrad, releaseGrad, Tensor, type DType } from '@nodegrad/autograd';
import { loadIntoModule } from './state_dict.js';

export type ForwardHook = (module: Module, inputs: unknown[], output: unknown) => unknown;
export type ForwardPreHook = (module: Module, inputs: unknown[]) => unknown;

/**
 * Parameters and buffers `to()` replaced by converted copies. An optimizer still holding one
 * would update a tensor the model no longer uses: its step refuses (PyTorch converts in place).
 */
export const replacedByTo = new WeakSet<Tensor>();

export abstract class Module {
  /** Training mode (batch statistics, dropout) vs eval; set with train()/eval(). */
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly bufs = new Map<string, Tensor | null>();
  private readonly nonPersistent = new Set<string>();
  private readonly mods = new Map<string, Module | null>();
  private readonly forwardHooks: ForwardHook[] = [];
  private readonly preHooks: ForwardPreHook[] = [];

  /** The computation; call the module through `call()` so hooks run. */
  abstract forward(...inputs: any[]): any;

  /**
   * Runs pre-hooks, forward and forward hooks (PyTorch's `module(x)`). Typed as the module's own
   * forward: `resnet.call(x)` takes forward's arguments and returns a Tensor (any for a plain Module).
   */
  call<M extends Module>(this: M, ...inputs: Parameters<M['forward']>): ReturnType<M['forward']>;
  call(...inputs: any[]): any {
    let args = inputs;
    // Copies: a hook may remove itself. As PyTorch: a pre-hook's single value is the one input,
    // and a hook returning nothing (undefined or null) leaves things as they are.
    for (const h of this.preHooks.length ? [...this.preHooks] : this.preHooks) {
      const r = h(this, args);
      if (r != null) args = Array.isArray(r) ? r : [r];
    }
    let out = this.forward(...args);
    for (const h of this.forwardHooks.length ? [...this.forwardHooks] : this.forwardHooks) {
      const r = h(this, args, out);
      if (r != null) out = r;
    }
    return out;
  }

  /**
   * Checks a name before it is registered in `map`. As PyTorch's "attribute 'train' already
   * exists", a name that would shadow a method, accessor or set field of the module is refused; a
   * declared field still unset (`fc: Linear;`) and a name registered before in the same map are not.
   */
  private checkName(name: string, map: Map<string, unknown>): void {
    if (name.includes('.') || name === '') throw new Error(`Module: invalid attribute name '${name}'`);
    for (const m of [this.params, this.bufs, this.mods] as Map<string, unknown>[]) {
      if (m !== map && m.has(name)) throw new Error(`Module: '${name}' is already registered as another kind of attribute`);
    }
    if (map.has(name)) return;
    const own = Object.getOwnPropertyDescriptor(this, name);
    let taken = own ? own.get !== undefined || own.value !== undefined : false;
    for (let p = Object.getPrototypeOf(this); !taken && p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      taken = Object.prototype.hasOwnProperty.call(p, name);
    }
    if (taken) throw new Error(`Module: '${name}' is already a member of ${this.constructor.name}; choose another name`);
  }

  /** Makes a registered entry a property (once: a class field that replaced it gets it back). */
  private expose(name: string, map: Map<string, any>, check: (v: unknown) => void): void {
    if (Object.getOwnPropertyDescriptor(this, name)?.get) return;
    Object.defineProperty(this, name, {
      get: () => map.get(name),
      // A tensor stored on a module outlives any tidy() it was made in.
      set: (v: unknown) => { check(v); if (v instanceof Tensor) keep(v); map.set(name, v); },
      enumerable: true,
      // Configurable: a class field initialized with the registration (`a = this.registerModule('a', ...)`) redefines it.
      configurable: true,
    });
  }

  /** Registers a trainable tensor (a leaf; requiresGrad is set). Returns it. */
  registerParameter<T extends Tensor | null>(name: string, t: T): T {
    const check = (v: unknown) => {
      if (v !== null && !(v as Tensor).isLeaf) throw new Error(`registerParameter: '${name}' must be a leaf tensor (use detach())`);
      if (v) (v as Tensor).requiresGrad = true;
    };
    this.checkName(name, this.params);
    check(t);
    if (t) keep(t);
    this.params.set(name, t);
    this.expose(name, this.params, check);
    return t;
  }

  /** Registers state that is not trained (running statistics, counters); persistent ones go into stateDict. */
  registerBuffer<T extends Tensor | null>(name: string, t: T, { persistent = true } = {}): T {
    this.checkName(name, this.bufs);
    if (t) keep(t);
    this.bufs.set(name, t);
    if (persistent) this.nonPersistent.delete(name);
    else this.nonPersistent.add(name);
    this.expose(name, this.bufs, () => {});
    return t;
  }

  /** Registers a child module under `name`. Returns it. */
  registerModule<M extends Module | null>(name: string, m: M): M {
    const check = (v: unknown) => {
      if (v !== null && !(v instanceof Module)) throw new Error(`registerModule: '${name}' must be a Module`);
    };
    this.checkName(name, this.mods);
    check(m);
    this.mods.set(name, m);
    this.expose(name, this.mods, check);
    return m;
  }

  /**
   * Removes a registered child (PyTorch's `del module.name`); the containers renumber with it.
   * Returns the child, or undefined when no child has that name.
   */
  protected unregisterModule(name: string): Module | null | undefined {
    if (!this.mods.has(name)) return undefined;
    const m = this.mods.get(name);
    this.mods.delete(name);
    Reflect.deleteProperty(this, name);
    return m;
  }

  /**
   * Direct children with their names. As PyTorch's, a module registered under two names is listed
   * once, under the first; `removeDuplicate = false` (a nodegrad extension, as named_modules'
   * flag) lists every registration, as the containers, toString() and stateDict() see them.
   */
  *namedChildren(removeDuplicate = true): Generator<[string, Module]> {
    const seen = new Set<Module>();
    for (const [n, m] of this.mods) {
      if (!m || (removeDuplicate && seen.has(m))) continue;
      seen.add(m);
      yield [n, m];
    }
  }

  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }

  /**
   * This module and every descendant, depth-first, with dotted names ('' for this one); each
   * module once, under the first path that reaches it, unless removeDuplicate is false (PyTorch's flag).
   */
  namedModules(prefix = '', removeDuplicate = true): Generator<[string, Module]> {
    return this.walkModules(prefix, removeDuplicate ? new Set() : null);
  }

  private *walkModules(prefix: string, seen: Set<Module> | null): Generator<[string, Module]> {
    if (seen?.has(this)) return;
    seen?.add(this);
    yield [prefix, this];
    for (const [n, m] of this.namedChildren(false)) yield* m.walkModules(prefix ? `${prefix}.${n}` : n, seen);
  }

  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Parameters with dotted names, in registration order, each listed once. */
  namedParameters(recurse = true): [string, Tensor][] {
    return this.collect((m) => m.params, recurse);
  }

  parameters(recurse = true): Tensor[] {
    return this.namedParameters(recurse).map(([, t]) => t);
  }

  namedBuffers(recurse = true): [string, Tensor][] {
    return this.collect((m) => m.bufs, recurse);
  }

  buffers(recurse = true): Tensor[] {
    return this.namedBuffers(recurse).map(([, t]) => t);
  }

  private collect(pick: (m: Module) => Map<string, Tensor | null>, recurse: boolean): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    const mods = recurse ? [...this.namedModules()] : [['', this] as [string, Module]];
    for (const [prefix, m] of mods) {
      for (const [n, t] of pick(m)) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${n}` : n, t]);
      }
    }
    return out;
  }

  /**
   * Sets training mode here and in every descendant. Training mode is refused, before anything
   * changes, when a module inside says it cannot train (an inference layer from fuseForInference).
   */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new Error(`train: mode must be true or false, got ${String(mode)}`);
    if (mode) {
      for (const [path, m] of this.namedModules()) {
        const why = m.whyNotTrainable();
        if (why) throw new Error(`train: ${path ? `'${path}' (${m.constructor.name})` : m.constructor.name} ${why}`);
      }
    }
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Why this module cannot be put in training mode, or null (the default: it can). */
  protected whyNotTrainable(): string | null {
    return null;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears gradients: to null by default (PyTorch 2's set_to_none), or to zeros. */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (setToNone) releaseGrad(p);
      else noGrad(() => p.grad!.zero_());
    }
  }

  /** Freezes (false) or unfreezes every parameter. */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }

  /** Calls fn on every descendant and then this module (PyTorch's order), e.g. for init. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /**
   * Moves or converts every parameter and buffer (integer buffers keep their dtype on a dtype
   * change). Parameters that change are replaced by new leaf tensors, so build optimizers after
   * `to()`; those already on the device and of the dtype stay as they are.
   */
  to(target: string | DType): this {
    const isDType = (DTYPES as readonly string[]).includes(target);
    // One conversion per tensor: a parameter shared by two modules (tied weights) stays shared.
    const converted = new Map<Tensor, Tensor>();
    for (const m of this.modules()) {
      const replaced = new Map<Tensor, Tensor>();
      for (const map of [m.params, m.bufs]) {
        for (const [n, t] of map) {
          if (!t) continue;
          if (isDType && (t.dtype === 'int32' || t.dtype === 'int64')) continue;
          let moved = converted.get(t);
          if (!moved) {
            const c = noGrad(() => t.to(target));
            // Already there: the tensor stays (a detached alias would leave the old object holding
            // a reference, so disposing the module's tensors would free nothing until the GC ran).
            if (c === t) continue;
            // The new storage is the module's alone: the op's temporaries sharing it are dropped here.
            moved = keep(c.detach().takeOwnership());
            moved.requiresGrad = t.requiresGrad;
            // As PyTorch's, the gradient comes along, converted.
            if (t.grad) moved.grad = keep(noGrad(() => t.grad!.to(target)));
            converted.set(t, moved);
            replacedByTo.add(t);
          }
          map.set(n, moved);
          replaced.set(t, moved);
        }
      }
      m.tensorsMoved(replaced);
    }
    return this;
  }

  /**
   * Called by `to()` with the module's own replaced parameters and buffers (old -> new, same
   * values), so a layer that mirrors a buffer on the host (BatchNorm's batch count) keeps it
   * without reading the new tensor back.
   */
  protected tensorsMoved(_replaced: ReadonlyMap<Tensor, Tensor>): void {}

  /** Adds a hook run after forward with (module, inputs, output); a returned value (not undefined or null) replaces the output. */
  registerForwardHook(fn: ForwardHook): () => void {
    return addHook(this.forwardHooks, fn);
  }

  /** Adds a hook run before forward with (module, inputs); a returned array replaces the inputs, a single value is the one input. */
  registerForwardPreHook(fn: ForwardPreHook): () => void {
    return addHook(this.preHooks, fn);
  }

  /** Whether hooks are registered here: a fast path that bypasses `call()` must then not be taken. */
  hasHooks(): boolean {
    return this.forwardHooks.length > 0 || this.preHooks.length > 0;
  }

  /** Parameters and persistent buffers by dotted name (torchvision's checkpoint keys). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    // Every registration, as PyTorch's: a module shared by two names is saved under both.
    for (const [prefix, m] of this.namedModules('', false)) {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [n, t] of m.params) if (t) out[key(n)] = t;
      for (const [n, t] of m.bufs) if (t && !m.nonPersistent.has(n)) out[key(n)] = t;
    }
    return out;
  }

  /**
   * Copies values into this module's parameters and buffers, in place with copy_ (each tensor's
   * version moves by one, so a backward that saved an old value throws). With `strict` (default),
   * every missing, unexpected and shape-mismatched key is named in one error; nothing is copied then.
   */
  loadStateDict(dict: Record<string, Tensor>, { strict = true } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    return loadIntoModule(this.stateDict(), dict, strict);
  }

  /** The architecture as PyTorch prints it. */
  toString(): string {
    const kids = [...this.namedChildren(false)].map(([n, m]) => `  (${n}): ${m.toString().replace(/\n/g, '\n  ')}`);
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    return kids.length ? `${head}\n${kids.join('\n')}\n)` : `${head})`;
  }

  /** Extra text for toString(), e.g. layer sizes. */
  extraRepr(): string {
    return '';
  }
}

/** Adds fn; the returned remover takes it out once (calling it again does nothing, as a RemovableHandle). */
function addHook<H>(list: H[], fn: H): () => void {
  list.push(fn);
  let removed = false;
  return () => {
    const i = removed ? -1 : list.indexOf(fn);
    removed = true;
    if (i >= 0) list.splice(i, 1);
  };
}
