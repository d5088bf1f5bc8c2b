/**
 * Tensor: a shape, a dtype, a device and a backend storage, plus the autograd fields the tape
 * uses. Every tensor is contiguous and row-major; views (reshape, view, squeeze, ...) share the
 * storage, and with it the version counter that in-place ops bump. Slices (narrow, slice) are
 * copies that remember where they came from, so that they behave as PyTorch's views: an in-place
 * op on one writes through to its base, and one taken before the base changed is refreshed when
 * it is next used (ops/view_sync.ts).
 */
import type { Backend, Raw } from './backend.js';
import { getBackend } from './registry.js';
import { isFloat, type DType } from './dtype.js';
import { fmt, numel, sameShape, type Shape } from './shape.js';
import type { Node } from './tape.js';

/**
 * Storage shared by a tensor and its views; `version` counts in-place writes. `refs` counts the
 * tensors over it not yet disposed: disposing a view drops its reference, and the storage is
 * freed with the last one (or by a tidy scope, or the backend's finalizer, whichever is first).
 */
export interface Storage {
  buf: unknown;
  version: number;
  refs: number;
  readonly backend: Backend;
  /**
   * @internal The backward engine's: how many pending gradient slots hold this storage (a count
   * on the storage rather than in a Map, whose churn was garbage per op; issue 17).
   */
  slots: number;
}

export type Hook = (grad: Tensor) => Tensor | void;

/** Where a slice's elements lie in its base: base.slice(dim, start, end, step). */
export interface SliceOf {
  /** Weak: a copy must not keep its base alive; a base nobody holds can't be read or written. */
  base: WeakRef<Tensor>;
  dim: number;
  start: number;
  end: number;
  step: number;
  /** The base's version when this slice's values were last equal to its region. */
  version: number;
  /** For a piece of split/chunk: which function and piece. PyTorch refuses recorded in-place ops on those. */
  piece?: { op: string; index: number };
}

/** Brings a view or slice up to date after its base changed in place; set by ops/view_sync.ts. */
let viewSync: (t: Tensor) => void = () => {};
/** @internal */
export function setViewSync(f: (t: Tensor) => void): void { viewSync = f; }
/** @internal Refreshes a view's history (and a slice's values) if its base changed since. */
export function syncView(t: Tensor): void {
  if (t.hasBase) viewSync(t);
}

/** A tensor's fields that few tensors set: hooks, views, slices, tangents (Tensor's accessors). */
class TensorExtras {
  leafHooks: Hook[] | null = null;
  postAccumulateHooks: ((leaf: Tensor) => void)[] | null = null;
  accumulator: Node | null = null;
  retainsGrad = false;
  viewBase: Tensor | null = null;
  viewVersion = 0;
  sliceOf: SliceOf | null = null;
  tangent: Tensor | null = null;
}

export class Tensor implements Raw {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly storage: Storage;
  private requires = false;
  private gradient: Tensor | null = null;
  /** The node that produced this tensor; null for leaves. */
  gradFn: Node | null = null;
  /** Which output of `gradFn` this tensor is. */
  outputIndex = 0;
  /** The fields most tensors never set, made on the first set: a tensor is half the size (issue 17). */
  private more: TensorExtras | null = null;

  private extras(): TensorExtras {
    return (this.more ??= new TensorExtras());
  }

  /** Hooks on a leaf run before accumulation; on a non-leaf they live on its node. Null: none yet. */
  get leafHooks(): Hook[] | null { return this.more?.leafHooks ?? null; }
  set leafHooks(v: Hook[] | null) { if (v !== null || this.more) this.extras().leafHooks = v; }
  /** A leaf's hooks that run after its `.grad` was accumulated, given the leaf. Null: none yet. */
  get postAccumulateHooks(): ((leaf: Tensor) => void)[] | null { return this.more?.postAccumulateHooks ?? null; }
  set postAccumulateHooks(v: ((leaf: Tensor) => void)[] | null) { if (v !== null || this.more) this.extras().postAccumulateHooks = v; }
  /** @internal the AccumulateGrad node of a leaf, created once. */
  get accumulator(): Node | null { return this.more?.accumulator ?? null; }
  set accumulator(v: Node | null) { if (v !== null || this.more) this.extras().accumulator = v; }
  get retainsGrad(): boolean { return this.more?.retainsGrad ?? false; }
  set retainsGrad(v: boolean) { if (v || this.more) this.extras().retainsGrad = v; }
  /** The tensor this one is a view of (reshape, view, squeeze, ...): in-place ops check it. */
  get viewBase(): Tensor | null { return this.more?.viewBase ?? null; }
  set viewBase(v: Tensor | null) { if (v !== null || this.more) this.extras().viewBase = v; }
  /** @internal For a view: the storage version its gradFn was made at; behind it, it is stale. */
  get viewVersion(): number { return this.more?.viewVersion ?? 0; }
  set viewVersion(v: number) { if (v !== 0 || this.more) this.extras().viewVersion = v; }
  /** @internal For a slice: its base and region. */
  get sliceOf(): SliceOf | null { return this.more?.sliceOf ?? null; }
  set sliceOf(v: SliceOf | null) { if (v !== null || this.more) this.extras().sliceOf = v; }
  /**
   * Forward mode: the tangent of a dual tensor (`dual(primal, tangent)`), carried through every op
   * that has a JVP rule; null is a zero tangent.
   */
  get tangent(): Tensor | null { return this.more?.tangent ?? null; }
  set tangent(v: Tensor | null) { if (v !== null || this.more) this.extras().tangent = v; }
  /** @internal Whether this tensor is a view or a slice (syncView's test, without two lookups). */
  get hasBase(): boolean {
    const m = this.more;
    return m !== null && (m.viewBase !== null || m.sliceOf !== null);
  }

  /**
   * Whether gradients flow to this tensor. As PyTorch's requires_grad: only a float tensor can
   * require them, and only a leaf's flag can be turned off (detach() cuts a non-leaf instead).
   */
  get requiresGrad(): boolean { return this.requires; }
  set requiresGrad(v: boolean) {
    if (v === this.requires) return;
    if (v && !isFloat(this.dtype)) throw new Error(`requiresGrad: only float tensors can require gradients, got ${this.dtype}`);
    if (!v && this.gradFn) {
      throw new Error(`requiresGrad: only a leaf's flag can be turned off; this tensor was made by ${this.gradFn.name} (use detach())`);
    }
    this.requires = v;
  }

  /**
   * Accumulated gradient of a leaf (or of a tensor that called `retainGrad()`). As PyTorch, one
   * assigned must have the tensor's shape, dtype and device.
   */
  get grad(): Tensor | null { return this.gradient; }
  set grad(g: Tensor | null) {
    if (g && (g.dtype !== this.dtype || g.device !== this.device || !sameShape(g.shape, this.shape))) {
      throw new Error(`grad: cannot assign a gradient of ${g.dtype} ${fmt(g.shape)} on ${g.device} to a tensor of ` +
        `${this.dtype} ${fmt(this.shape)} on ${this.device}`);
    }
    this.gradient = g;
  }

  /** Whether this tensor's reference to its storage was given up (dispose, or moved to a new view). */
  private released = false;

  constructor(storage: Storage, shape: Shape, dtype: DType) {
    this.storage = storage;
    // A frozen shape cannot change under us, so it is shared rather than copied (issue 17).
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze([...shape]);
    this.dtype = dtype;
    storage.refs++;
  }

  /** Wraps a kernel's result. */
  static fromRaw(raw: Raw, backend: Backend): Tensor {
    return new Tensor({ buf: raw.buf, version: 0, refs: 0, backend, slots: 0 }, raw.shape, raw.dtype);
  }

  static fromData(data: Parameters<Backend['fromArray']>[0], shape: Shape, dtype: DType, device: string): Tensor {
    const backend = getBackend(device);
    return Tensor.fromRaw(backend.fromArray(data, shape, dtype), backend);
  }

  get buf(): unknown { return this.storage.buf; }
  get backend(): Backend { return this.storage.backend; }
  get device(): string { return this.storage.backend.name; }
  get version(): number { return this.storage.version; }
  get ndim(): number { return this.shape.length; }
  get size(): number { return numel(this.shape); }
  /** Whether dispose() gave up this tensor's storage. */
  get isDisposed(): boolean { return this.released; }
  /** A leaf is a tensor not produced by a recorded op. */
  get isLeaf(): boolean { return this.gradFn === null; }

  /** Shares this tensor's storage under another shape (same number of elements): a view. */
  aliasAs(shape: Shape): Tensor {
    return new Tensor(this.storage, shape, this.dtype);
  }

  /**
   * @internal The same storage under another shape, taking over this tensor's reference: for an
   * op's own intermediate that is about to be dropped, so disposing the result frees the storage.
   */
  moveAs(shape: Shape): Tensor {
    const t = new Tensor(this.storage, shape, this.dtype);
    if (!this.released) {
      this.released = true;
      this.storage.refs--;
    }
    return t;
  }

  /**
   * @internal Writes a kernel result (same size and dtype) into this tensor's storage and counts
   * the write in the version counter: the one place an in-place change to a storage happens.
   */
  assign(src: Raw): void {
    this.backend.copyInto(this, src);
    this.markWritten();
  }

  /** @internal Counts a write a kernel made into this tensor's storage in place (optimizer steps, running statistics). */
  markWritten(): void {
    this.storage.version++;
  }

  /**
   * @internal Makes this tensor the only reference to its storage, for the engine when it keeps a
   * temporary of its own as a leaf's `.grad`: the op temporaries that shared the storage are dead.
   */
  takeOwnership(): this {
    this.storage.refs = 1;
    // Its storage is its own now: no view or slice of another tensor (a gradient the engine keeps
    // as a leaf's .grad must not write into the tensor it was computed from).
    if (this.more) {
      this.more.viewBase = null;
      this.more.sliceOf = null;
    }
    return this;
  }

  /** Host copy of the elements (a Float64Array for int64), once the device has written them. */
  dataSync(): Float32Array | Float64Array | Int32Array {
    syncView(this);
    return this.backend.readSync(this);
  }

  /** The same as dataSync(). */
  toTypedArray(): Float32Array | Float64Array | Int32Array {
    return this.dataSync();
  }

  /** Nested arrays as PyTorch's `tolist()`; a number for a 0-d tensor. */
  toArray(): unknown {
    const flat = Array.from(this.toTypedArray());
    const nest = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return flat[off];
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => nest(dim + 1, off + i * step));
    };
    return nest(0, 0);
  }

  /** Host copy of the elements, resolved after the device's stream has written them. */
  data(): Promise<Float32Array | Float64Array | Int32Array> {
    syncView(this);
    return this.backend.read(this);
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item: expected a tensor with one element, got shape ${fmt(this.shape)}`);
    return this.toTypedArray()[0]!;
  }

  /**
   * Drops this tensor's reference to its storage, freeing it now when no other undisposed tensor
   * (a view, or the tensor this one views) shares it; the tensor must not be used afterwards.
   */
  dispose(): void {
    if (this.released) return;
    this.released = true;
    if (--this.storage.refs === 0) this.backend.free?.(this.storage.buf);
  }
  // toString and util.inspect print the values as PyTorch does: tensor_str.ts.
}
