/**
 * The gradients waiting at each node during a backward pass, summed as they arrive. Without
 * createGraph they are the engine's own temporaries, and each is freed as soon as no pending slot
 * refers to its storage (PyTorch frees them by reference count), unless a hook saw it or grad()
 * returns it ("spared").
 */
import { add } from './ops/arith.js';
import { freeIfCreated, type Scope } from './scope.js';
import type { Edge, Node } from './tape.js';
import type { Tensor } from './tensor.js';

export class GradBuffers {
  private readonly pending = new Map<Node, (Tensor | undefined)[] | undefined>();
  private readonly spared = new Set<unknown>();

  /** `scope`: where the pass allocates, whose buffers may be freed early; null keeps everything. */
  constructor(private readonly scope: Scope | null) {}

  /** Adds g to the slot the edge points at (summing with what is there). */
  accumulate(e: Edge, g: Tensor): void {
    let slots = this.pending.get(e.node);
    // Sized once: an empty array's first store reserves 17 slots (issue 17: allocations per op).
    if (!slots) this.pending.set(e.node, (slots = new Array<Tensor | undefined>(e.node.outputMeta.length)));
    const prev = slots[e.index];
    const next = prev ? add(prev, g) : g;
    if (this.scope) {
      this.hold(next);
      if (prev) { this.drop(prev); this.release([prev]); }
    }
    slots[e.index] = next;
  }

  /** Removes and returns a node's summed output gradients (undefined if none arrived). */
  take(node: Node): (Tensor | undefined)[] | undefined {
    const slots = this.pending.get(node);
    if (!slots) return undefined;
    // Cleared, not deleted: deletes made the Map shrink and rehash over and over (issue 17).
    this.pending.set(node, undefined);
    if (this.scope) for (const g of slots) if (g) this.drop(g);
    return slots;
  }

  /**
   * Whether t's storage is this pass's own and nothing else will read it: made during the pass,
   * in no pending slot, shown to no hook. A leaf may then take it as its `.grad` without a copy.
   */
  disposable(t: Tensor): boolean {
    return !!this.scope?.has(t.buf) && t.storage.slots === 0 && !this.spared.has(t.buf);
  }

  /** Never frees t's storage early: a hook or the caller may keep it. */
  spare(t: Tensor): void {
    this.spared.add(t.buf);
  }

  /** Frees those of ts whose storage no pending slot refers to and that were made in this pass. */
  release(ts: readonly (Tensor | null | undefined)[]): void {
    if (!this.scope) return;
    for (const t of ts) if (t && t.storage.slots === 0 && !this.spared.has(t.buf)) freeIfCreated(this.scope, t.buf);
  }

  private hold(t: Tensor): void {
    t.storage.slots++;
  }

  private drop(t: Tensor): void {
    t.storage.slots--;
  }
}
