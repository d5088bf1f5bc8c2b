/**
 * Views and slices that keep PyTorch's semantics under in-place ops.
 *
 * A view (reshape, view, squeeze, ...) shares its base's storage. A slice (narrow, slice, split,
 * chunk) is a copy here, since every tensor is contiguous, but remembers its base and region. Two
 * rules make both act as PyTorch's views:
 * - An in-place op on one rewrites the base's history, as PyTorch's CopySlices does: the base of
 *   a view becomes reshape(view), the base of a slice sliceScatter(base, slice) (written into its
 *   storage too), and so on up the chain.
 * - One whose base changed in place since (through another alias, or the base itself) is brought
 *   up to date when it is next used: a view gets reshape(base) as its history, a slice the base's
 *   current values and slice(base) as its history. PyTorch regenerates a view's grad_fn the same
 *   way; its views never hold stale values, and here a slice's are refreshed before anything reads
 *   them (an op, a backward, dataSync, data).
 */
import { enableGrad, isGradEnabled } from '../grad_mode.js';
import { fmt } from '../shape.js';
import { setViewSync, syncView, type Tensor } from '../tensor.js';
import { slice, sliceScatter } from './join.js';
import { reshape } from './shape.js';

/** Gives t the history (gradFn, output index, requiresGrad, tangent) of the fresh tensor made from the same values. */
export function takeHistory(t: Tensor, fresh: Tensor): void {
  t.gradFn = fresh.gradFn;
  t.outputIndex = fresh.outputIndex;
  t.requiresGrad = fresh.requiresGrad;
  t.tangent = fresh.tangent;
}

/** A slice's base, or null once it is gone (collected or disposed): then nobody can see it change. */
function liveBase(t: Tensor): Tensor | null {
  const base = t.sliceOf!.base.deref();
  if (base && !base.isDisposed) return base;
  t.sliceOf = null;
  return null;
}

function sync(t: Tensor): void {
  // A view or slice made a leaf by hand (requiresGrad set on it) stays that leaf, as in PyTorch.
  if (t.isLeaf && t.requiresGrad) return;
  if (t.viewBase) {
    const root = t.viewBase;
    syncView(root);
    if (t.viewVersion === t.version) return;
    // Regenerated as a recorded op even under noGrad, as PyTorch does, so the view keeps a history.
    const fresh = enableGrad(() => reshape(root, t.shape));
    takeHistory(t, fresh);
    fresh.dispose();
    t.viewVersion = t.version;
  } else if (t.sliceOf) {
    const base = liveBase(t);
    if (!base) return;
    syncView(base);
    const { dim, start, end, step, version } = t.sliceOf;
    if (base.version === version) return;
    const fresh = enableGrad(() => slice(base, dim, start, end, step));
    t.assign(fresh);
    takeHistory(t, fresh);
    fresh.dispose();
    t.sliceOf.version = base.version;
  }
}
setViewSync(sync);

/** The base of a view or slice, the one above it, and so on. */
function* bases(t: Tensor): Generator<Tensor> {
  for (let b = t.viewBase ?? t.sliceOf?.base.deref(); b; b = b.viewBase ?? b.sliceOf?.base.deref()) yield b;
}

/** PyTorch refuses in-place ops on a view of a leaf that requires grad while recording: the leaf would change. */
export function checkViewOfLeaf(op: string, t: Tensor): void {
  if (!isGradEnabled()) return;
  for (const b of bases(t)) {
    if (b.isLeaf && b.requiresGrad) {
      throw new Error(`${op}: a view of a leaf tensor that requires grad (${fmt(t.shape)} of ${fmt(b.shape)}) is being ` +
        'used in an in-place operation; wrap it in noGrad() or work on a clone');
    }
  }
}

/**
 * After t was written in place (its storage and, when recorded, its history): passes the change up
 * to its bases. A view's base shares the storage, so only its history changes; a slice's base gets
 * the slice's values written into its region.
 */
export function writeThrough(t: Tensor): void {
  if (t.viewBase) {
    const root = t.viewBase;
    t.viewVersion = t.version;
    // Under noGrad the write is not recorded: the base keeps its history (the view's gradFn is the old one).
    if (t.gradFn && isGradEnabled()) {
      const rebased = reshape(t, root.shape);
      takeHistory(root, rebased);
      rebased.dispose();
    } else if (t.tangent || root.tangent) {
      root.tangent = t.tangent ? reshape(t.tangent, root.shape) : null; // unrecorded: only the tangent moves
    }
    writeThrough(root);
  } else if (t.sliceOf) {
    const base = liveBase(t);
    if (!base) return;
    const { dim, start, end, step } = t.sliceOf;
    const merged = sliceScatter(base, t, dim, start, end, step);
    base.assign(merged);
    if (merged.gradFn) takeHistory(base, merged);
    else base.tangent = merged.tangent;
    merged.dispose();
    t.sliceOf.version = base.version;
    writeThrough(base);
  }
}
