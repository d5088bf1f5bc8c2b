/**
 * A tidy scope: the buffers it created, with the backend that frees each, as a Map's operations
 * over an entry held inline and a Map made on the second. Every op's forward and every node's
 * backward opens a scope, and nearly all create one buffer, their result's: a Map each was a
 * tenth of the memory an op allocated (issue 17).
 */
import type { Backend } from './backend.js';

export class Scope {
  /** The buffer recorded last (it may have been freed or kept since). */
  last: unknown = undefined;
  /** The one entry while there is at most one (`backend` null: none), before `map` exists. */
  private buf: unknown = undefined;
  private backend: Backend | null = null;
  private map: Map<unknown, Backend> | null = null;

  get size(): number {
    return this.map ? this.map.size : this.backend ? 1 : 0;
  }

  get(buf: unknown): Backend | undefined {
    if (this.map) return this.map.get(buf);
    return this.backend && this.buf === buf ? this.backend : undefined;
  }

  has(buf: unknown): boolean {
    return this.get(buf) !== undefined;
  }

  set(buf: unknown, backend: Backend): void {
    if (this.map) { this.map.set(buf, backend); return; }
    if (!this.backend || this.buf === buf) { this.buf = buf; this.backend = backend; return; }
    this.map = new Map([[this.buf, this.backend], [buf, backend]]);
    this.buf = undefined;
    this.backend = null;
  }

  delete(buf: unknown): boolean {
    if (this.map) return this.map.delete(buf);
    if (!this.backend || this.buf !== buf) return false;
    this.buf = undefined;
    this.backend = null;
    return true;
  }

  /** Forgets every buffer (after close), so that the scope can be opened again. */
  clear(): void {
    this.last = undefined;
    this.buf = undefined;
    this.backend = null;
    this.map = null;
  }

  /**
   * Closes the scope: frees its buffers except `survivors` ('all': every one), which move to
   * `parent`, or, with none, to the garbage collector (Backend.collectable).
   */
  close(parent: Scope | undefined, survivors: Set<unknown> | 'all'): void {
    if (this.map) {
      settleAll(this.map, parent, survivors);
    } else if (this.backend) {
      settle(this.buf, this.backend, parent, survivors);
    }
  }
}

// Apart from close(): a closure there would give every call a context for what it captures.
function settleAll(map: Map<unknown, Backend>, parent: Scope | undefined, survivors: Set<unknown> | 'all'): void {
  // forEach, not for-of: a destructured entry is an array per buffer.
  map.forEach((backend, buf) => settle(buf, backend, parent, survivors));
}

function settle(buf: unknown, backend: Backend, parent: Scope | undefined, survivors: Set<unknown> | 'all'): void {
  if (survivors !== 'all' && !survivors.has(buf)) backend.free!(buf);
  else if (parent) {
    parent.set(buf, backend);
    parent.last = buf; // so the parent's own fast path (createdOnlyResult) sees it
  } else {
    backend.collectable?.(buf);
  }
}
