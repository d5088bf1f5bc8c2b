/**
 * Cutting and joining: narrow, slice, sliceScatter, pad, cat, stack, split, chunk. Slice and Pad are each
 * other's adjoints (a slice's gradient is its input zero-padded back, a pad's is the slice of
 * the interior), so every VJP here is written in these same differentiable ops.
 */
import { autocastInputs } from '../autocast.js';
import { fillOverflow, isFloat } from '../dtype.js';
import { defineOp, setColumnOps, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { fmt, normAxis, sameShape, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { where } from './compare.js';
import { onesLike, zerosLike } from './creation.js';
import { reshape, unsqueeze } from './shape.js';
import { checkSame, checkTensor, kernels, wrap } from './util.js';

type Pads = [number, number][];

const padOp: (x: Tensor, pads: Pads, value: number) => Tensor = defineOp({
  name: 'pad',
  forward(ctx: Ctx<{ pads: Pads; xShape: Shape }>, x: Tensor, pads: Pads, value: number) {
    ctx.pads = pads;
    ctx.xShape = x.shape;
    return wrap(kernels(x).Pad(x, pads, value), x);
  },
  backward(ctx, g): (Tensor | null)[] {
    const pads = ctx.pads as Pads;
    return [sliceOp(g, pads.map((p) => p[0]), ctx.xShape, pads.map(() => 1)), null, null];
  },
  jvp: (ctx, [t]) => padOp(t!, ctx.pads, 0),
});

/** The adjoint of a strided slice along one dim: g's rows land every `step` rows, zeros between. */
function spread(g: Tensor, dim: number, step: number): Tensor {
  const n = g.shape[dim]!;
  // [.., n, ..] -> [.., n, 1, ..] -> pad to [.., n, step, ..] -> [.., n*step, ..], then drop the
  // trailing step-1 zeros so the last kept row ends the block.
  const pads: Pads = g.shape.map(() => [0, 0]);
  pads.splice(dim + 1, 0, [0, step - 1]);
  const wide = padOp(unsqueeze(g, dim + 1), pads, 0);
  const merged = reshape(wide, g.shape.map((d, i) => (i === dim ? d * step : d)));
  return narrow(merged, dim, 0, (n - 1) * step + 1);
}

const sliceOp: (x: Tensor, begin: number[], size: readonly number[], step: number[]) => Tensor = defineOp({
  name: 'slice',
  forward(ctx: Ctx<{ xShape: Shape; begin: readonly number[]; step: readonly number[] }>, x: Tensor, begin: number[], size: readonly number[], step: number[]) {
    ctx.xShape = x.shape;
    ctx.begin = begin; ctx.step = step;
    return wrap(kernels(x).Slice(x, begin, size, step), x);
  },
  backward: (ctx, g) => [unslice(g, ctx.begin, ctx.xShape, ctx.step), null, null, null],
  jvp: (_ctx, [t], _out, _x, begin, size, step) => sliceOp(t!, begin, size, step),
});

/** The adjoint of a slice: t's elements back at their places in a zero tensor of shape xShape. */
function unslice(t: Tensor, begin: readonly number[], xShape: Shape, step: readonly number[]): Tensor {
  step.forEach((s, d) => { if (s > 1 && t.shape[d]! > 0) t = spread(t, d, s); });
  // t now covers [begin, begin + extent) in each dim; pad the rest with zeros.
  const pads: Pads = xShape.map((dimSize, d) => {
    const extent = t.shape[d]!;
    const before = extent === 0 ? 0 : begin[d]!;
    return [before, dimSize - before - extent];
  });
  return padOp(t, pads, 0);
}

/** Elements start..start+length-1 along `dim` (start may be negative, counted from the end). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  if (x.ndim === 0) throw new Error('narrow: cannot narrow a 0-d tensor');
  const d = normAxis('narrow', dim, x.ndim);
  const n = x.shape[d]!;
  const s = start < 0 ? start + n : start;
  if (!Number.isInteger(start) || !Number.isInteger(length) || s < 0 || s > n || length < 0 || s + length > n) {
    throw new Error(`narrow: start ${start} and length ${length} do not fit dim ${dim} of size ${n} (input shape ${fmt(x.shape)})`);
  }
  return linkedSlice(x, d, s, length, 1);
}

/** Python's start:end:step along a dim of size n: the first index and the count. */
function sliceRange(op: string, n: number, start: number | null | undefined, end: number | null | undefined, step: number) {
  if (!Number.isInteger(step) || step < 1) throw new Error(`${op}: step must be a positive integer, got ${step}`);
  for (const [name, v] of [['start', start], ['end', end]] as const) {
    if (v != null && !Number.isInteger(v)) throw new Error(`${op}: ${name} must be an integer, got ${v}`);
  }
  const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const b = start == null ? 0 : clampIdx(start);
  const e = end == null ? n : clampIdx(end);
  return { b, len: e > b ? Math.ceil((e - b) / step) : 0 };
}

/**
 * Python's x[start:end:step] along `dim`: negative bounds count from the end and out-of-range
 * bounds are clamped; step must be positive (as in PyTorch).
 */
export function slice(x: Tensor, dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
  if (x.ndim === 0) throw new Error('slice: cannot slice a 0-d tensor');
  const d = normAxis('slice', dim, x.ndim);
  const { b, len } = sliceRange('slice', x.shape[d]!, start, end, step);
  return linkedSlice(x, d, b, len, step);
}

/**
 * The slice as a copy that remembers its base and region, so that it acts as PyTorch's view
 * would: an in-place op on it writes through to the base (ops/view_sync.ts). The whole dim is x.
 */
function linkedSlice(x: Tensor, d: number, b: number, len: number, step: number): Tensor {
  if (b === 0 && len === x.shape[d] && step === 1) return x;
  const out = sliceOp(x, x.shape.map((_, i) => (i === d && len > 0 ? b : 0)), x.shape.map((sz, i) => (i === d ? len : sz)),
    x.shape.map((_, i) => (i === d ? step : 1)));
  out.sliceOf = { base: new WeakRef(x), dim: d, start: b, end: b + len * step, step, version: x.version };
  return out;
}

/**
 * input with its slice [start:end:step] along `dim` replaced by src, as torch.slice_scatter; the
 * gradient goes to src for the slice and to input elsewhere.
 */
export function sliceScatter(input: Tensor, src: Tensor, dim = 0, start?: number | null, end?: number | null, step = 1): Tensor {
  if (input.ndim === 0) throw new Error('sliceScatter: cannot scatter into a 0-d tensor');
  const d = normAxis('sliceScatter', dim, input.ndim);
  const { b, len } = sliceRange('sliceScatter', input.shape[d]!, start, end, step);
  const want = input.shape.map((sz, i) => (i === d ? len : sz));
  if (!sameShape(src.shape, want)) {
    throw new Error(`sliceScatter: src has shape ${fmt(src.shape)} but the slice of the input ${fmt(input.shape)} has shape ${fmt(want)}`);
  }
  const begin = input.shape.map((_, i) => (i === d && len > 0 ? b : 0));
  const steps = input.shape.map((_, i) => (i === d ? step : 1));
  const inSlice = unslice(onesLike(src), begin, input.shape, steps);
  return where(inSlice, unslice(src, begin, input.shape, steps), input);
}

/**
 * Constant padding with PyTorch's F.pad layout: `pads` holds [before, after] pairs starting from
 * the LAST dim ([left, right, top, bottom, ...]). Negative amounts crop, as in PyTorch.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length > 2 * x.ndim) {
    throw new Error(`pad: pads [${pads.join(', ')}] must have an even length of at most 2 * ${x.ndim} for input of shape ${fmt(x.shape)}`);
  }
  if (pads.some((p) => !Number.isInteger(p))) throw new Error(`pad: pads [${pads.join(', ')}] must be integers`);
  if (typeof value !== 'number') {
    throw new Error(`pad: value must be a number, got ${JSON.stringify(value)} (constant padding is the one mode; PyTorch's mode argument has no counterpart)`);
  }
  // As PyTorch: the value is converted to the tensor's dtype (an integer tensor truncates it).
  const overflow = fillOverflow(value, x.dtype);
  if (overflow) throw new Error(`pad: ${overflow}`);
  if (!isFloat(x.dtype)) value = Math.trunc(value) + 0;
  const perDim: Pads = x.shape.map((_, d) => {
    const k = x.ndim - 1 - d; // the pair index for dim d
    return 2 * k < pads.length ? [pads[2 * k]!, pads[2 * k + 1]!] : [0, 0];
  });
  const cropped = perDim.map(([b, a], d) => x.shape[d]! + Math.min(b, 0) + Math.min(a, 0));
  const bad = cropped.findIndex((n) => n < 0);
  if (bad >= 0) {
    throw new Error(`pad: pads [${pads.join(', ')}] crop dim ${bad} of input ${fmt(x.shape)} below size 0`);
  }
  let t = x;
  if (perDim.some(([b, a]) => b < 0 || a < 0)) {
    t = sliceOp(x, perDim.map(([b]) => Math.max(-b, 0)), cropped, perDim.map(() => 1));
  }
  const grow: Pads = perDim.map(([b, a]) => [Math.max(b, 0), Math.max(a, 0)]);
  // A pure crop is done; otherwise pad (a no-op pad still copies, so the result never aliases x).
  if (t !== x && grow.every(([b, a]) => b === 0 && a === 0)) return t;
  return padOp(t, grow, value);
}

const catOp: (dim: number, ...xs: Tensor[]) => Tensor = defineOp({
  name: 'cat',
  forward(ctx: Ctx<{ sizes: number[]; dim: number }>, dim: number, ...xs: Tensor[]) {
    ctx.sizes = xs.map((x) => x.shape[dim]!);
    ctx.dim = dim;
    return wrap(kernels(xs[0]!).Concat(xs, dim), xs[0]!);
  },
  backward(ctx, g) {
    let at = 0;
    const grads = (ctx.sizes as number[]).map((n, i) => {
      const gi = ctx.needsInputGrad[i + 1] ? narrow(g, ctx.dim, at, n) : null;
      at += n;
      return gi;
    });
    return [null, ...grads];
  },
  jvp: (_ctx, tangents, _out, dim, ...xs) => catOp(dim, ...xs.map((x, i) => tangents[i + 1] ?? zerosLike(x))),
});

/** Joins tensors along an existing dim; all other dims must match. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  tensors.forEach((t, i) => checkTensor('cat', `tensors[${i}]`, t));
  tensors = autocastInputs('promote', ...tensors);
  checkSame('cat', Object.fromEntries(tensors.map((t, i) => [`tensors[${i}]`, t])));
  const first = tensors[0]!;
  if (first.ndim === 0) throw new Error('cat: zero-dimensional tensor (tensors[0], shape []) cannot be concatenated');
  const d = normAxis('cat', dim, first.ndim);
  tensors.forEach((t, i) => {
    if (t.ndim !== first.ndim || t.shape.some((s, k) => k !== d && s !== first.shape[k])) {
      throw new Error(`cat: tensors[${i}] of shape ${fmt(t.shape)} does not match tensors[0] of shape ` +
        `${fmt(first.shape)} in dims other than dim ${dim}`);
    }
  });
  return catOp(d, ...tensors);
}

/** Joins same-shaped tensors along a new dim inserted at `dim`. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new Error('stack: expected a non-empty list of tensors');
  tensors.forEach((t, i) => checkTensor('stack', `tensors[${i}]`, t));
  const first = tensors[0]!;
  tensors.forEach((t, i) => {
    if (!sameShape(t.shape, first.shape)) {
      throw new Error(`stack: every tensor must have the same shape, but tensors[0] is ${fmt(first.shape)} ` +
        `and tensors[${i}] is ${fmt(t.shape)}`);
    }
  });
  const d = normAxis('stack', dim, first.ndim + 1);
  return cat(tensors.map((t) => unsqueeze(t, d)), d);
}

/**
 * Splits along `dim` into pieces of `splitSize` (the last may be smaller), or of the listed
 * sizes, as torch.split.
 */
export function split(x: Tensor, splitSize: number | readonly number[], dim = 0): Tensor[] {
  if (x.ndim === 0) throw new Error('split: expects a tensor of at least 1 dim, got shape []');
  const d = normAxis('split', dim, x.ndim);
  const n = x.shape[d]!;
  let sizes: number[];
  if (typeof splitSize === 'number') {
    if (!Number.isInteger(splitSize) || splitSize < 1) throw new Error(`split: splitSize must be a positive integer, got ${splitSize}`);
    sizes = [];
    for (let at = 0; at < n; at += splitSize) sizes.push(Math.min(splitSize, n - at));
    if (n === 0) sizes.push(0);
  } else {
    sizes = [...splitSize];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== n || sizes.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new Error(`split: sizes [${sizes.join(', ')}] must be non-negative and sum to ${n}, the size of dim ${dim} of ${fmt(x.shape)}`);
    }
  }
  return pieces('split', x, d, sizes);
}

/** The slices of x along d of the given sizes, each knowing it is one of several views (inplace.ts). */
function pieces(op: string, x: Tensor, d: number, sizes: readonly number[]): Tensor[] {
  let at = 0;
  return sizes.map((s, index) => {
    const t = linkedSlice(x, d, at, s, 1);
    at += s;
    if (t.sliceOf) t.sliceOf.piece = { op, index };
    return t;
  });
}

/** Splits into `chunks` pieces of ceil(size / chunks) along `dim` (fewer if it does not divide), as torch.chunk. */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks < 1) throw new Error(`chunk: chunks must be a positive integer, got ${chunks}`);
  if (x.ndim === 0) throw new Error('chunk: expects a tensor of at least 1 dim, got shape []');
  const d = normAxis('chunk', dim, x.ndim);
  const n = x.shape[d]!;
  const size = Math.max(Math.ceil(n / chunks), 1);
  // An empty dim gives `chunks` empty pieces, as PyTorch.
  return pieces('chunk', x, d, n === 0 ? new Array<number>(chunks).fill(0) : Array.from({ length: Math.ceil(n / size) }, (_, i) => Math.min(size, n - i * size)));
}

installMethods({ narrow, slice, sliceScatter, pad, split, chunk });
setColumnOps({ stack, zerosLike });

declare module '../tensor.js' {
  interface Tensor {
    narrow(dim: number, start: number, length: number): Tensor;
    slice(dim: number, start?: number | null, end?: number | null, step?: number): Tensor;
    sliceScatter(src: Tensor, dim?: number, start?: number | null, end?: number | null, step?: number): Tensor;
    pad(pads: readonly number[], value?: number): Tensor;
    split(splitSize: number | readonly number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
  }
}
