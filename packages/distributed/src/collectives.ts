/**
 * Collectives on the default process group, as torch.distributed's: in place where PyTorch works
 * in place (allReduce, broadcast), new tensors where it fills a list (allGather, reduceScatter).
 * Each has a blocking form and an `…Async` form returning a Work. Tensors must be host tensors
 * ('cpu', or 'ts') of the same dtype and shape on every rank, except allGather's first dimension.
 */
import { fmt, fromTypedArray, keep, split, Tensor, zeros, type DType } from '@nodegrad/autograd';
import type { MpiReduceOp, MpiWork } from '@nodegrad/native';
import { group, Work } from './process_group.js';

export type ReduceOp = MpiReduceOp;
const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];
const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int64'];

function checkTensor(op: string, arg: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${op}: '${arg}' must be a Tensor, got ${typeof t}`);
  if (t.device !== 'cpu' && t.device !== 'ts') {
    throw new Error(`${op}: '${arg}' (${fmt(t.shape)}) is on ${t.device}; the 'mpi' process group works on host tensors ('cpu' or 'ts')`);
  }
  if (!DTYPES.includes(t.dtype)) throw new Error(`${op}: '${arg}' has dtype ${t.dtype}; collectives take ${DTYPES.join(', ')}`);
}

function checkOp(op: string, reduce: unknown): asserts reduce is ReduceOp {
  if (!REDUCE_OPS.includes(reduce as ReduceOp)) {
    throw new Error(`${op}: op must be one of ${REDUCE_OPS.map((o) => `'${o}'`).join(', ')}, got ${String(reduce)}`);
  }
}

/** The shapes of `t` on every rank, in rank order (one small all-gather). */
function shapesOnRanks(op: string, t: Tensor): number[][] {
  const g = group(op);
  const MAX = 8;
  if (t.shape.length > MAX) throw new Error(`${op}: tensors of more than ${MAX} dimensions are not supported (got ${fmt(t.shape)})`);
  // [rank, ndim, dims..., dtype index, op hash]: one float64 row per rank.
  const row = new Float64Array(MAX + 4);
  row[0] = g.rank;
  row[1] = t.shape.length;
  t.shape.forEach((d, i) => { row[2 + i] = d; });
  row[MAX + 2] = DTYPES.indexOf(t.dtype);
  row[MAX + 3] = [...op].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 2 ** 31, 7);
  const mine = fromTypedArray(row, [row.length], { device: 'ts', dtype: 'float64' });
  const all = zeros([g.worldSize * row.length], { device: 'ts', dtype: 'float64' });
  g.mpi.wait(g.mpi.allGather(mine, all, Array(g.worldSize).fill(row.length)), g.timeoutMs);
  const a = all.toTypedArray();
  const rows = Array.from({ length: g.worldSize }, (_, r) => a.subarray(r * row.length, (r + 1) * row.length));
  for (const [r, other] of rows.entries()) {
    if (other[MAX + 3] !== row[MAX + 3]) throw new Error(`${op} on rank ${g.rank}: rank ${r} issued another collective at this point`);
    if (other[MAX + 2] !== row[MAX + 2]) throw new Error(`${op} on rank ${g.rank}: dtype ${t.dtype} here, ${DTYPES[other[MAX + 2]!]} on rank ${r}`);
  }
  return rows.map((x) => Array.from(x.subarray(2, 2 + x[1]!)));
}

/** Under the debug flag, checks that every rank passes the same shape (and the same collective). */
function handshake(op: string, t: Tensor): void {
  const g = group(op);
  if (!g.debug) return;
  const shapes = shapesOnRanks(op, t);
  const bad = shapes.findIndex((s) => s.join() !== t.shape.join());
  if (bad >= 0) throw new Error(`${op} on rank ${g.rank}: shape ${fmt(t.shape)} here, ${fmt(shapes[bad]!)} on rank ${bad}`);
}

function work<T>(op: string, w: MpiWork, finish: () => T, held: unknown[]): Work<T> {
  const g = group(op);
  return new Work(w, g.mpi, op, g.rank, g.timeoutMs, finish, held);
}

/**
 * Reduces `tensor` over all ranks, in place: every rank ends with the sum (avg, max, min).
 * @example allReduce(grad, 'avg');
 */
export function allReduce(tensor: Tensor, op: ReduceOp = 'sum'): Tensor {
  return allReduceAsync(tensor, op).wait();
}

export function allReduceAsync(tensor: Tensor, op: ReduceOp = 'sum'): Work<Tensor> {
  const name = 'allReduce';
  checkTensor(name, 'tensor', tensor);
  checkOp(name, op);
  handshake(name, tensor);
  const g = group(name);
  const w = g.mpi.allReduce(tensor, op);
  tensor.markWritten();
  return work(name, w, () => tensor, [tensor]);
}

/**
 * allReduce of several tensors of one dtype as one collective (torch's all_reduce_coalesced):
 * packed, reduced and unpacked on the communication thread, each tensor written in place.
 */
export function allReduceCoalesced(tensors: readonly Tensor[], op: ReduceOp = 'sum'): Tensor[] {
  return allReduceCoalescedAsync(tensors, op).wait();
}

export function allReduceCoalescedAsync(tensors: readonly Tensor[], op: ReduceOp = 'sum'): Work<Tensor[]> {
  const name = 'allReduceCoalesced';
  if (!Array.isArray(tensors) || tensors.length === 0) throw new Error(`${name}: 'tensors' must be a non-empty array of Tensors`);
  tensors.forEach((t, i) => {
    checkTensor(name, `tensors[${i}]`, t);
    if (t.dtype !== tensors[0]!.dtype) throw new Error(`${name}: tensors[${i}] has dtype ${t.dtype} but tensors[0] has ${tensors[0]!.dtype}`);
  });
  checkOp(name, op);
  if (group(name).debug) for (const t of tensors) handshake(name, t);
  const g = group(name);
  const w = g.mpi.allReduceCoalesced([...tensors], op);
  for (const t of tensors) t.markWritten();
  return work(name, w, () => [...tensors], [...tensors]);
}

/** Copies rank `src`'s `tensor` into `tensor` on every other rank, in place. */
export function broadcast(tensor: Tensor, src = 0): Tensor {
  return broadcastAsync(tensor, src).wait();
}

export function broadcastAsync(tensor: Tensor, src = 0): Work<Tensor> {
  const name = 'broadcast';
  checkTensor(name, 'tensor', tensor);
  const g = group(name);
  if (!Number.isInteger(src) || src < 0 || src >= g.worldSize) throw new Error(`${name}: src ${src} is not a rank of a world of ${g.worldSize}`);
  handshake(name, tensor);
  const w = g.mpi.broadcast(tensor, src);
  tensor.markWritten();
  return work(name, w, () => tensor, [tensor]);
}

/**
 * Every rank's `tensor`, in rank order, as new tensors on tensor's device. Ranks may differ in
 * the first dimension (PyTorch's all_gather with unequal sizes); the rest of the shape must agree.
 */
export function allGather(tensor: Tensor): Tensor[] {
  return allGatherAsync(tensor).wait();
}

export function allGatherAsync(tensor: Tensor): Work<Tensor[]> {
  const name = 'allGather';
  checkTensor(name, 'tensor', tensor);
  const g = group(name);
  // The shapes travel first: the output's size depends on them.
  const shapes = shapesOnRanks(name, tensor);
  shapes.forEach((s, r) => {
    if (s.length !== tensor.shape.length || s.slice(1).join() !== tensor.shape.slice(1).join()) {
      throw new Error(`${name} on rank ${g.rank}: shape ${fmt(tensor.shape)} here, ${fmt(s)} on rank ${r}; ` +
        'only the first dimension may differ');
    }
  });
  const counts = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  // Kept: a tidy() scope around the async call must not free it under MPI.
  const out = keep(zeros([counts.reduce((a, b) => a + b, 0)], { device: tensor.device, dtype: tensor.dtype }));
  const w = g.mpi.allGather(tensor, out, counts);
  return work(name, w, () => split(out, counts).map((part, r) => part.reshape(shapes[r]!)), [tensor, out]);
}

/**
 * The reduction of `input` over ranks, split along its first dimension: rank r gets block r
 * (input.shape[0] must divide by the world size). torch's reduce_scatter_tensor.
 */
export function reduceScatter(input: Tensor, op: ReduceOp = 'sum'): Tensor {
  return reduceScatterAsync(input, op).wait();
}

export function reduceScatterAsync(input: Tensor, op: ReduceOp = 'sum'): Work<Tensor> {
  const name = 'reduceScatter';
  checkTensor(name, 'input', input);
  checkOp(name, op);
  const g = group(name);
  if (input.ndim === 0 || input.shape[0]! % g.worldSize !== 0) {
    throw new Error(`${name}: 'input' (${fmt(input.shape)}) must have a first dimension divisible by the world size ${g.worldSize}`);
  }
  handshake(name, input);
  const out = keep(zeros([input.shape[0]! / g.worldSize, ...input.shape.slice(1)], { device: input.device, dtype: input.dtype }));
  const w = g.mpi.reduceScatter(input, out, op);
  return work(name, w, () => out, [input, out]);
}

/** Waits until every rank reaches this call. */
export function barrier(): void {
  barrierAsync().wait();
}

export function barrierAsync(): Work<void> {
  const g = group('barrier');
  return work('barrier', g.mpi.barrier(), () => undefined, []);
}
