/**
 * The process group: torch.distributed's default group, on Open MPI for host tensors ('cpu', and
 * 'ts' for float64 reference runs). Rank and world size come from the launcher: `mpirun` (or
 * `nodegrad launch`, which runs it) sets OMPI_COMM_WORLD_*; a process started alone is a world of
 * size 1 (MPI's singleton). Every collective is queued on the addon's communication thread and
 * returns a Work at once; the blocking forms wait on it.
 */
import { fromTypedArray, pinBuffer, Tensor, unpinBuffer } from '@nodegrad/autograd';
import type { MpiAddon, NcclAddon, NcclComm } from '@nodegrad/native';
import { mpiBinding, ncclBinding } from '@nodegrad/native';
import { watchLauncher } from './launcher_watch.js';

export type DistBackend = 'mpi' | 'nccl';

export interface InitOptions {
  /** 'mpi' (host tensors) or 'nccl' (CUDA tensors, one GPU per rank). Default 'mpi'. */
  backend?: DistBackend;
  /**
   * How long a blocking collective waits before it throws (the watchdog): a rank that died or
   * issued another collective would otherwise hang the job. Default 30 minutes, as PyTorch's. In
   * a 'nccl' group a collective still pending that long ends the process instead, naming it on
   * stderr: the GPU streams waiting on it cannot be released otherwise (PyTorch's NCCL watchdog
   * tears the process down the same way), and the launcher then stops the other ranks.
   */
  timeoutMs?: number;
  /**
   * Before every collective, compare its name, dtype and shape across ranks and throw naming the
   * ranks that differ, instead of hanging or mixing data (TORCH_DISTRIBUTED_DEBUG=DETAIL's check).
   * Costs one small all-gather per collective. Default: NODEGRAD_DISTRIBUTED_DEBUG=1 in the environment.
   */
  debug?: boolean;
}

export interface ProcessGroup {
  readonly backend: DistBackend;
  readonly rank: number;
  readonly worldSize: number;
  /** The rank among the processes of this host (OMPI_COMM_WORLD_LOCAL_RANK): a GPU index. */
  readonly localRank: number;
  readonly timeoutMs: number;
  readonly debug: boolean;
  /** The MPI library's own version line ('' for a 'nccl' group of one process, which needs no MPI). */
  readonly library: string;
}

/** The NCCL side of a 'nccl' group: this rank's communicator on its GPU. */
export interface NcclGroup { addon: NcclAddon; comm: NcclComm; device: string }
interface State extends ProcessGroup {
  /** 'mpi' groups, and 'nccl' groups started by mpirun (rank 0's NCCL id travels over MPI). */
  mpi: MpiAddon | null;
  nccl: NcclGroup | null;
}
let state: State | null = null;
let destroyed = false;

/**
 * Joins the job's process group (once per process). Under `mpirun -np N` this is rank
 * OMPI_COMM_WORLD_RANK of N; alone, rank 0 of 1. 'nccl' puts rank r on GPU 'cuda:<local rank>'
 * and takes 'cuda' tensors; 'mpi' takes host tensors.
 * @example const pg = initProcessGroup({ backend: 'mpi' }); console.log(pg.rank, pg.worldSize);
 */
export function initProcessGroup(opts: InitOptions = {}): ProcessGroup {
  const backend = opts.backend ?? 'mpi';
  if (state) {
    if (state.backend !== backend) throw new Error(`initProcessGroup: already initialized with backend '${state.backend}'`);
    return publicView(state);
  }
  if (backend !== 'mpi' && backend !== 'nccl') throw new Error(`initProcessGroup: unknown backend '${String(backend)}'; expected 'mpi' or 'nccl'`);
  if (destroyed) throw new Error('initProcessGroup: the process group was destroyed; MPI cannot start twice in one process');
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new Error(`initProcessGroup: timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  const envSize = process.env.OMPI_COMM_WORLD_SIZE;
  const localRank = Number(process.env.OMPI_COMM_WORLD_LOCAL_RANK ?? 0);
  let mpi: MpiAddon | null = null;
  let world = { rank: 0, size: 1, library: '' };
  if (backend === 'mpi' || envSize !== undefined) {
    const binding = mpiBinding();
    if ('reason' in binding) {
      throw new Error(backend === 'mpi' ? `initProcessGroup: backend 'mpi' is unavailable: ${binding.reason}`
        : `initProcessGroup: backend 'nccl' under mpirun shares NCCL's id over MPI, which is unavailable: ${binding.reason}`);
    }
    mpi = binding.mpi;
    world = mpi.init();
    if (envSize !== undefined && Number(envSize) !== world.size) {
      throw new Error(`initProcessGroup: mpirun started ${envSize} processes but MPI reports a world of ${world.size}`);
    }
  }
  state = {
    backend, mpi, nccl: backend === 'nccl' ? joinNccl(mpi, world.rank, world.size, localRank, timeoutMs) : null,
    rank: world.rank, worldSize: world.size, library: world.library, timeoutMs, localRank,
    debug: opts.debug ?? process.env.NODEGRAD_DISTRIBUTED_DEBUG === '1',
  };
  watchLauncher(state.rank);
  // MPI wants MPI_Finalize before exit, or mpirun calls the job failed; 'exit' runs on
  // process.exit() too. An exit while a collective still runs (a watchdog timeout), or with an
  // error (an uncaught exception: its message is printed by then), leaves without it: MPI_Finalize
  // would wait for the other ranks, and mpirun then ends the job as failed instead of it hanging.
  process.once('exit', (code) => {
    if (!state) return;
    const { mpi: m } = state;
    state = null;
    destroyed = true;
    m?.finalize(true, code !== 0);
  });
  return publicView(state);
}

/** This rank's NCCL communicator: rank 0 makes the id, MPI carries it to the others. */
function joinNccl(mpi: MpiAddon | null, rank: number, size: number, localRank: number, timeoutMs: number): NcclGroup {
  const binding = ncclBinding();
  if ('reason' in binding) throw new Error(`initProcessGroup: backend 'nccl' is unavailable: ${binding.reason}`);
  let id = rank === 0 ? binding.nccl.uniqueId() : new Uint8Array(128);
  if (size > 1) {
    const t = fromTypedArray(new Int32Array(id.slice().buffer), [32], { device: 'ts', dtype: 'int32' });
    if (!mpi!.wait(mpi!.broadcast(t, 0), timeoutMs)) throw new Error(`initProcessGroup: rank ${rank} got no NCCL id from rank 0 within ${timeoutMs} ms`);
    id = new Uint8Array(Int32Array.from(t.toTypedArray()).buffer);
  }
  return { addon: binding.nccl, comm: binding.nccl.init(localRank, rank, size, id, timeoutMs), device: `cuda:${localRank}` };
}

function publicView(s: State): ProcessGroup {
  const { backend, rank, worldSize, localRank, timeoutMs, debug, library } = s;
  return Object.freeze({ backend, rank, worldSize, localRank, timeoutMs, debug, library });
}

export function isInitialized(): boolean {
  return state !== null;
}

/** The group, or an error naming `op` when initProcessGroup was not called. */
export function group(op: string): State {
  if (!state) throw new Error(`${op}: the default process group is not initialized; call initProcessGroup() first`);
  return state;
}

export function getRank(): number {
  return group('getRank').rank;
}

export function getWorldSize(): number {
  return group('getWorldSize').worldSize;
}

/**
 * Leaves the group after every queued collective: MPI_Finalize, which waits for the other ranks
 * to leave too. MPI cannot start again in this process.
 */
export function destroyProcessGroup(): void {
  const s = group('destroyProcessGroup');
  state = null;
  destroyed = true;
  if (s.nccl) s.nccl.addon.destroy(s.nccl.comm);
  s.mpi?.finalize();
  for (const w of [...inFlight.keys()]) letGo(w); // MPI is done with them
}

/**
 * @internal What a Work waits on: an MPI request on the communication thread (wait blocks up to
 * the timeout), or an NCCL event (wait makes the GPU's compute stream wait; the host goes on).
 */
export interface Pending {
  wait(timeoutMs: number): boolean;
  done(): boolean;
  whenDone(): Promise<void>;
  /** Tensors the engine made for the collective (staged host copies): the work holds them too. */
  holds?: readonly Tensor[];
}

/**
 * The works not yet settled, with the tensors each collective reads and writes, held here (from
 * GC and tidy) until it is done: one dropped without a wait must keep them while MPI's thread or
 * NCCL's stream still uses them (PyTorch's groups keep them too), or their memory would go back
 * to the pool under a running collective. Each new collective lets go of those that have finished
 * (releaseFinished); wait() lets go of its own.
 */
const inFlight = new Map<Work<unknown>, readonly unknown[]>();

/**
 * @internal Forgets the works whose collectives are done (what they hold may be collected now),
 * and completes them: a dropped work through host copies (a half type, a slice, another device)
 * writes its result back only here, as gloo writes a host tensor's whether it is waited or not.
 */
export function releaseFinished(): void {
  for (const w of [...inFlight.keys()]) if (w.isCompleted()) w.complete();
}

/**
 * Holds a work's tensors until its collective is done: from the garbage collector (inFlight) and
 * from a tidy closing or a dispose meanwhile (their buffers pinned: freed once it lets go).
 */
function hold(w: Work<unknown>, held: readonly unknown[]): void {
  inFlight.set(w, held);
  for (const t of held) if (t instanceof Tensor) pinBuffer(t.buf);
}

function letGo(w: Work<unknown>): void {
  const held = inFlight.get(w);
  if (!held) return;
  inFlight.delete(w);
  for (const t of held) if (t instanceof Tensor) unpinBuffer(t.buf);
}

/** A handle to a queued collective: wait for it, poll it, or await it. */
export class Work<T = void> {
  /** @internal */
  constructor(private readonly pending: Pending, private readonly what: string, private readonly rank: number,
    private readonly timeoutMs: number, private readonly finish: () => T, held: readonly unknown[]) {
    const all = pending.holds ? [...held, ...pending.holds] : held;
    if (all.length > 0) hold(this, all);
  }

  private result: { value: T } | null = null;

  /** Whether the collective has finished (with or without an error). */
  isCompleted(): boolean {
    return this.result !== null || this.pending.done();
  }

  /**
   * Waits for the collective and returns its result; throws its error, or a timeout error after
   * `timeoutMs` (the group's by default). On 'cuda' tensors (NCCL) the GPU's stream waits, not
   * the host: later kernels see the result, and reading it back waits as any read does.
   */
  wait(timeoutMs = this.timeoutMs): T {
    if (this.result) return this.result.value;
    if (!this.pending.wait(timeoutMs)) {
      throw new Error(`${this.what} on rank ${this.rank} did not finish within ${timeoutMs} ms: another rank died, ` +
        'stalled, or issued a different collective (set NODEGRAD_DISTRIBUTED_DEBUG=1 to compare them)');
    }
    return this.settle();
  }

  /** Resolves once the collective is done (without blocking the event loop), to its result. */
  async promise(): Promise<T> {
    if (!this.result) {
      await this.pending.whenDone();
      this.pending.wait(this.timeoutMs);
    }
    return this.settle();
  }

  private settle(): T {
    if (!this.result) {
      this.result = { value: this.finish() };
      letGo(this);
      releaseFinished(); // the works queued before this one are done too
    }
    return this.result.value;
  }

  /** @internal The collective's own completion (a staged copy back), without making its result. */
  complete(): void {
    try {
      this.pending.wait(0); // its copy back first, while the work still holds what it reads
    } catch {
      // The collective's error: wait() throws it to whoever asks for this work's result.
    } finally {
      letGo(this);
    }
  }
}
