/**
 * Views and slices that keep PyTorch's semantics under in-place ops.
 *
 * A view (reshape, view, squeeze, ...) shares its base's storage. A slice (narrow, slice, split,
 * chunk) or a reordering of dims (permute, transpose, t) is a copy here, since every tensor is
 * contiguous, but remembers its base and region. Two rules make all of them act as PyTorch's views:
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
import { expandTo, inverse, permuteTo, reshape } from './shape.js';

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
    const { region, version } = t.sliceOf;
    if (base.version === version) return;
    const fresh = enableGrad(() => ('perm' in region ? permuteTo(base, region.perm) : 'expand' in region ? expandTo(base, region.expand)
      : slice(base, region.dim, region.start, region.end, region.step)));
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

/**
 * PyTorch refuses in-place ops on an expanded tensor (or a view of one): several of its elements
 * are one element of memory.
 */
export function checkNotExpanded(op: string, t: Tensor): void {
  for (const b of [t, ...bases(t)]) {
    if (b.sliceOf && 'expand' in b.sliceOf.region) {
      throw new Error(`${op}: unsupported operation: more than one element of the written-to tensor (${fmt(t.shape)}, expanded ` +
        'from a smaller one) refers to a single memory location; clone() it before the operation');
    }
  }
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
    if (t.gradFn) {
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
    const { region } = t.sliceOf;
    if ('expand' in region) throw new Error('writeThrough: an expanded tensor cannot be written (checked before the write)');
    // A reordering covers the whole base: the base is the copy's dims put back.
    const merged = 'perm' in region ? permuteTo(t, inverse(region.perm))
      : sliceScatter(base, t, region.dim, region.start, region.end, region.step);
    base.assign(merged);
    if (merged.gradFn) takeHistory(base, merged);
    else base.tangent = merged.tangent;
    merged.dispose();
    t.sliceOf.version = base.version;
    writeThrough(base);
  }
}
