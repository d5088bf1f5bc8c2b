/**
 * Collectives on the default process group, as torch.distributed's: in place where PyTorch works
 * in place (allReduce, broadcast), new tensors where it fills a list (allGather, reduceScatter).
 * Each has a blocking form and an `…Async` form returning a Work. Host tensors ('cpu', 'ts') go
 * through MPI, this rank's GPU's tensors through NCCL ('nccl' groups), other devices' tensors
 * through MPI by host copies; every rank passes the same dtype and shape, except allGather's
 * first dimension. bfloat16 and float16 tensors reach MPI as float32 copies, so sums accumulate in
 * float32 and each result is rounded once.
 */
import { cat, fmt, fromTypedArray, isHalf, keep, narrow, split, syncView, Tensor, zeros, type DType } from '@nodegrad/autograd';
import type { MpiReduceOp } from '@nodegrad/native';
import { mpiEngine, ncclEngine, stagedEngine, throughSlices, writesToSlice, type Engine } from './engines.js';
import { group, releaseFinished, Work, type Pending } from './process_group.js';

export type ReduceOp = MpiReduceOp;
const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];
const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int64', 'bfloat16', 'float16'];

/**
 * Checks a tensor argument and returns the engine its device takes; `slices`: the collective
 * writes into a slice (t, or another tensor of its list).
 */
function engineFor(op: string, arg: string, t: unknown, slices = t instanceof Tensor && writesToSlice(t)): Engine {
  if (!(t instanceof Tensor)) throw new Error(`${op}: '${arg}' must be a Tensor, got ${typeof t}`);
  syncView(t); // a slice whose base changed in place since it was taken gets the base's values first
  if (!DTYPES.includes(t.dtype)) throw new Error(`${op}: '${arg}' has dtype ${t.dtype}; collectives take ${DTYPES.join(', ')}`);
  const g = group(op);
  // A slice (narrow, chunk) has a storage of its own: its result is written through to its base
  // after the collective (the staged engine's copy back does that too).
  const direct = (e: Engine) => (slices ? throughSlices(e) : e);
  if (t.device === 'cpu' || t.device === 'ts') {
    if (g.mpi) return isHalf(t.dtype) ? stagedEngine(g.mpi) : direct(mpiEngine(g.mpi));
    throw new Error(`${op}: '${arg}' (${fmt(t.shape)}) is on ${t.device}; this 'nccl' group of one process has no MPI for host tensors`);
  }
  if (g.nccl && t.device === g.nccl.device) return direct(ncclEngine(g.nccl));
  // Any other device's tensors go through host copies (an 'mpi' group on GPUs, like gloo).
  if (g.mpi) return stagedEngine(g.mpi);
  throw new Error(`${op}: '${arg}' (${fmt(t.shape)}) is on ${t.device}; this 'nccl' group of one process works on ` +
    `${g.nccl!.device} (this rank's GPU) only`);
}

function checkSrc(op: string, src: number): void {
  const g = group(op);
  if (!Number.isInteger(src) || src < 0 || src >= g.worldSize) throw new Error(`${op}: src ${src} is not a rank of a world of ${g.worldSize}`);
}

function checkOp(op: string, reduce: unknown): asserts reduce is ReduceOp {
  if (!REDUCE_OPS.includes(reduce as ReduceOp)) {
    throw new Error(`${op}: op must be one of ${REDUCE_OPS.map((o) => `'${o}'`).join(', ')}, got ${String(reduce)}`);
  }
}

/** The collectives the debug handshake tells apart, and what each takes beside its tensors. */
const COLLECTIVES = ['allReduce', 'allReduceCoalesced', 'reduceScatter', 'broadcast', 'broadcastCoalesced', 'allGather',
  'allGatherInto', 'barrier'] as const;
type Collective = (typeof COLLECTIVES)[number];
/** A reduction's op, or a broadcast's src: what must also agree across ranks. */
type Param = { op: ReduceOp } | { src: number } | null;
const describeParam = (p: number, reduces: boolean) => (reduces ? `op '${REDUCE_OPS[p]}'` : `src ${p}`);

/**
 * The shapes of `t` on every rank, in rank order (one small all-gather); also checks that every
 * rank issued this collective, with the same dtype and the same op or src.
 */
function shapesOnRanks(op: Collective, t: Tensor, engine: Engine, param: Param = null): number[][] {
  const g = group(op);
  const MAX = 8;
  if (t.shape.length > MAX) throw new Error(`${op}: tensors of more than ${MAX} dimensions are not supported (got ${fmt(t.shape)})`);
  // [rank, ndim, dims..., dtype index, collective index, op index or src]: one float64 row per rank.
  const row = new Float64Array(MAX + 5);
  row[0] = g.rank;
  row[1] = t.shape.length;
  t.shape.forEach((d, i) => { row[2 + i] = d; });
  row[MAX + 2] = DTYPES.indexOf(t.dtype);
  row[MAX + 3] = COLLECTIVES.indexOf(op);
  row[MAX + 4] = param === null ? -1 : 'op' in param ? REDUCE_OPS.indexOf(param.op) : param.src;
  const opts = { device: engine.scratchDevice, dtype: 'float64' as const };
  const mine = fromTypedArray(row, [row.length], opts);
  const all = zeros([g.worldSize * row.length], opts);
  const done = engine.allGather(mine, all, Array(g.worldSize).fill(row.length) as number[]);
  if (!done.wait(g.timeoutMs)) throw new Error(`${op} on rank ${g.rank}: the shape exchange did not finish within ${g.timeoutMs} ms`);
  const a = all.toTypedArray();
  const rows = Array.from({ length: g.worldSize }, (_, r) => a.subarray(r * row.length, (r + 1) * row.length));
  for (const [r, other] of rows.entries()) {
    if (other[MAX + 3] !== row[MAX + 3]) throw new Error(`${op} on rank ${g.rank}: rank ${r} issued ${COLLECTIVES[other[MAX + 3]!]} at this point`);
    if (other[MAX + 2] !== row[MAX + 2]) throw new Error(`${op} on rank ${g.rank}: dtype ${t.dtype} here, ${DTYPES[other[MAX + 2]!]} on rank ${r}`);
    if (param && other[MAX + 4] !== row[MAX + 4]) {
      const reduces = 'op' in param;
      throw new Error(`${op} on rank ${g.rank}: ${describeParam(row[MAX + 4]!, reduces)} here, ` +
        `${describeParam(other[MAX + 4]!, reduces)} on rank ${r}`);
    }
  }
  return rows.map((x) => Array.from(x.subarray(2, 2 + x[1]!)));
}

/** Under the debug flag, checks that every rank passes the same shape (and the same collective, op or src). */
function handshake(op: Collective, t: Tensor, engine: Engine, param: Param = null): void {
  const g = group(op);
  if (!g.debug) return;
  const shapes = shapesOnRanks(op, t, engine, param);
  const bad = shapes.findIndex((s) => s.join() !== t.shape.join());
  if (bad >= 0) throw new Error(`${op} on rank ${g.rank}: shape ${fmt(t.shape)} here, ${fmt(shapes[bad]!)} on rank ${bad}`);
}

function work<T>(op: string, pending: Pending, finish: () => T, held: unknown[]): Work<T> {
  const g = group(op);
  const w = new Work(pending, op, g.rank, g.timeoutMs, finish, held);
  releaseFinished(); // after the new work holds its own tensors, should a query throw
  return w;
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
  const engine = engineFor(name, 'tensor', tensor);
  checkOp(name, op);
  handshake(name, tensor, engine, { op });
  const p = engine.allReduce(tensor, op);
  tensor.markWritten();
  return work(name, p, () => tensor, [tensor]);
}

/** Checks the tensors of a coalesced collective (one dtype and device) and returns their engine. */
function listEngine(op: Collective, tensors: readonly Tensor[], param: Param): Engine {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new Error(`${op}: 'tensors' must be a non-empty array of Tensors`);
  const engine = engineFor(op, 'tensors[0]', tensors[0], tensors.some((t) => t instanceof Tensor && writesToSlice(t)));
  const g = group(op);
  if (g.debug) {
    // First the count (and the op or src): ranks with lists of different lengths would shake hands a
    // different number of times.
    const counts = shapesOnRanks(op, zeros([tensors.length], { device: engine.scratchDevice, dtype: 'float64' }), engine, param);
    const bad = counts.findIndex((s) => s[0] !== tensors.length);
    const n = tensors.length;
    if (bad >= 0) throw new Error(`${op} on rank ${g.rank}: ${n} tensor${n === 1 ? '' : 's'} here, ${counts[bad]![0]} on rank ${bad}`);
  }
  tensors.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new Error(`${op}: 'tensors[${i}]' must be a Tensor, got ${typeof t}`);
    syncView(t);
    if (t.dtype !== tensors[0]!.dtype || t.device !== tensors[0]!.device) {
      throw new Error(`${op}: tensors[${i}] is ${t.dtype} on ${t.device} but tensors[0] is ${tensors[0]!.dtype} on ${tensors[0]!.device}`);
    }
    handshake(op, t, engine);
  });
  return engine;
}

/**
 * allReduce of several tensors of one dtype and device as one collective (torch's
 * all_reduce_coalesced), each written in place: with MPI packed and unpacked on the communication
 * thread, with NCCL one group call.
 */
export function allReduceCoalesced(tensors: readonly Tensor[], op: ReduceOp = 'sum'): Tensor[] {
  return allReduceCoalescedAsync(tensors, op).wait();
}

export function allReduceCoalescedAsync(tensors: readonly Tensor[], op: ReduceOp = 'sum'): Work<Tensor[]> {
  const name = 'allReduceCoalesced';
  checkOp(name, op);
  const p = listEngine(name, tensors, { op }).allReduceCoalesced([...tensors], op);
  for (const t of tensors) t.markWritten();
  return work(name, p, () => [...tensors], [...tensors]);
}

/** broadcast of several tensors of one dtype and device as one collective, each in place. */
export function broadcastCoalesced(tensors: readonly Tensor[], src = 0): Tensor[] {
  return broadcastCoalescedAsync(tensors, src).wait();
}

export function broadcastCoalescedAsync(tensors: readonly Tensor[], src = 0): Work<Tensor[]> {
  const name = 'broadcastCoalesced';
  checkSrc(name, src);
  const p = listEngine(name, tensors, { src }).broadcastCoalesced([...tensors], src);
  for (const t of tensors) t.markWritten();
  return work(name, p, () => [...tensors], [...tensors]);
}

/** Copies rank `src`'s `tensor` into `tensor` on every other rank, in place. */
export function broadcast(tensor: Tensor, src = 0): Tensor {
  return broadcastAsync(tensor, src).wait();
}

export function broadcastAsync(tensor: Tensor, src = 0): Work<Tensor> {
  const name = 'broadcast';
  const engine = engineFor(name, 'tensor', tensor);
  checkSrc(name, src);
  handshake(name, tensor, engine, { src });
  const p = engine.broadcast(tensor, src);
  tensor.markWritten();
  return work(name, p, () => tensor, [tensor]);
}

/**
 * Every rank's `tensor`, of one shape on every rank, into `output` (world size x its elements,
 * rank r's in block r), as torch's all_gather_into_tensor: one collective, no shape exchange.
 */
export function allGatherInto(output: Tensor, tensor: Tensor): Tensor {
  return allGatherIntoAsync(output, tensor).wait();
}

export function allGatherIntoAsync(output: Tensor, tensor: Tensor): Work<Tensor> {
  const name = 'allGatherInto';
  engineFor(name, 'tensor', tensor);
  // The written tensor's engine (they agree but where the output is a slice, whose result must reach its base).
  const engine = engineFor(name, 'output', output);
  const g = group(name);
  if (output.device !== tensor.device || output.dtype !== tensor.dtype || output.size !== tensor.size * g.worldSize) {
    throw new Error(`${name}: 'output' (${output.dtype} ${fmt(output.shape)} on ${output.device}) must hold ${g.worldSize} x ` +
      `'tensor' (${tensor.dtype} ${fmt(tensor.shape)} on ${tensor.device})`);
  }
  handshake(name, tensor, engine);
  const p = engine.allGather(tensor, output, Array(g.worldSize).fill(tensor.size) as number[]);
  output.markWritten();
  return work(name, p, () => output, [tensor, output]);
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
  const engine = engineFor(name, 'tensor', tensor);
  const g = group(name);
  // The shapes travel first: the output's size depends on them.
  const shapes = shapesOnRanks(name, tensor, engine);
  shapes.forEach((s, r) => {
    if (s.length !== tensor.shape.length || s.slice(1).join() !== tensor.shape.slice(1).join()) {
      throw new Error(`${name} on rank ${g.rank}: shape ${fmt(tensor.shape)} here, ${fmt(s)} on rank ${r}; ` +
        'only the first dimension may differ');
    }
  });
  const counts = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const opts = { device: tensor.device, dtype: tensor.dtype };
  if (engine.name === 'nccl') {
    // NCCL gathers equal blocks: each rank's part padded to the largest, the padding cut after.
    const block = Math.max(...counts);
    // The work pins both while NCCL's stream uses them; `out` is also kept, as the results are cut
    // from it when the work is waited for, maybe after a tidy() around the call ended.
    const mine = tensor.size < block ? cat([tensor.reshape([tensor.size]), zeros([block - tensor.size], opts)]) : tensor.reshape([block]);
    const out = keep(zeros([block * g.worldSize], opts));
    const p = engine.allGather(mine, out, Array(g.worldSize).fill(block) as number[]);
    return work(name, p, () => shapes.map((s, r) => narrow(out, 0, r * block, counts[r]!).reshape(s)), [mine, out]);
  }
  // Kept: the results are cut from it when the work is waited for, maybe after a tidy() around the call ended.
  const out = keep(zeros([counts.reduce((a, b) => a + b, 0)], opts));
  const p = engine.allGather(tensor, out, counts);
  return work(name, p, () => split(out, counts).map((part, r) => part.reshape(shapes[r]!)), [tensor, out]);
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
  const engine = engineFor(name, 'input', input);
  checkOp(name, op);
  const g = group(name);
  if (input.ndim === 0 || input.shape[0]! % g.worldSize !== 0) {
    throw new Error(`${name}: 'input' (${fmt(input.shape)}) must have a first dimension divisible by the world size ${g.worldSize}`);
  }
  handshake(name, input, engine, { op });
  // Kept: the work's result, handed out when it is waited for, maybe after a tidy() around the call ended.
  const out = keep(zeros([input.shape[0]! / g.worldSize, ...input.shape.slice(1)], { device: input.device, dtype: input.dtype }));
  const p = engine.reduceScatter(input, out, op);
  return work(name, p, () => out, [input, out]);
}

/** Waits until every rank reaches this call (MPI's barrier; a 'nccl' group of one has nothing to wait for). */
export function barrier(): void {
  barrierAsync().wait();
}

export function barrierAsync(): Work<void> {
  const g = group('barrier');
  if (!g.mpi) return work('barrier', { wait: () => true, done: () => true, whenDone: async () => {} }, () => undefined, []);
  const mpi = g.mpi;
  if (g.debug) {
    // Through the engine a collective on the group's own device takes (NCCL's in an 'nccl' group), so
    // that a barrier against such a collective is seen on both ranks.
    const engine = g.nccl ? ncclEngine(g.nccl) : mpiEngine(mpi);
    handshake('barrier', zeros([0], { device: 'ts' }), engine);
  }
  const w = mpi.barrier();
  return work('barrier', { wait: (ms) => mpi.wait(w, ms), done: () => mpi.done(w), whenDone: () => mpi.whenDone(w) }, () => undefined, []);
}
