/** Shape arithmetic shared by ops and backends: sizes, strides, broadcasting, axis checks. */
export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A shape given to a creation function: an array of integer sizes >= 0 (PyTorch: "negative dimension"). */
export function checkShape(op: string, shape: unknown): void {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${op}: the shape must be an array of integer sizes >= 0, got ${Array.isArray(shape) ? fmt(shape) : String(shape)}`);
  }
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

// A loop, not every(): its closure was an allocation per call, and the engine compares shapes per op.
export function sameShape(a: Shape, b: Shape): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const OPERAND_NAMES: readonly [string, string] = ['input', 'other'];

/** Throws as broadcastShapes does when a and b do not broadcast; allocates nothing when they do. */
export function checkBroadcast(op: string, a: Shape, b: Shape): void {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const da = dimFromRight(a, n - i), db = dimFromRight(b, n - i);
    if (da !== db && da !== 1 && db !== 1) broadcastShapes(op, a, b);
  }
}

/**
 * The k-th size from the right (k >= 1), 1 past the first: a broadcast's missing dims. Not
 * `s[s.length - k] ?? 1`: a negative index is a named property V8 looks up along the prototype chain.
 */
const dimFromRight = (s: Shape, k: number) => (k <= s.length ? s[s.length - k]! : 1);

/** PyTorch broadcasting: align from the right; sizes must match or one of them be 1. */
export function broadcastShapes(op: string, a: Shape, b: Shape, names: readonly [string, string] = OPERAND_NAMES): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = dimFromRight(a, n - i), db = dimFromRight(b, n - i);
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: cannot broadcast ${names[0]} of shape ${fmt(a)} with ${names[1]} of shape ${fmt(b)} ` +
        `(size ${da} vs ${db} at output dimension ${i})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalizes a possibly negative dim against rank, naming the op on error. */
export function normAxis(op: string, axis: number, rank: number): number {
  const r = Math.max(rank, 1);
  if (!Number.isInteger(axis) || axis < -r || axis >= r) {
    throw new Error(`${op}: dim ${axis} is out of range for a tensor of rank ${rank} (expected in [${-r}, ${r - 1}])`);
  }
  return axis < 0 ? axis + r : axis;
}

/**
 * The dims a reduction runs over, sorted: all of them when `axes` is omitted or an empty list (as
 * PyTorch's dim=[]); none for a 0-d tensor, whose dim 0 or -1 names the tensor itself.
 */
export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  const list = axes === undefined ? [] : typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normAxis(op, a, rank)))];
  if (out.length !== list.length) throw new Error(`${op}: dims [${list.join(', ')}] repeat a dimension`);
  if (rank === 0) return [];
  return out.length === 0 ? Array.from({ length: rank }, (_, i) => i) : out.sort((x, y) => x - y);
}
