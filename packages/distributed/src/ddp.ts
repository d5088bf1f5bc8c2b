/**
 * DistributedDataParallel, as torch.nn.parallel.DistributedDataParallel: the model's parameters
 * and buffers are broadcast from rank 0 at construction; during backward each parameter's final
 * gradient (a post-accumulate-grad hook) fills its bucket, and a full bucket's gradients are
 * all-reduced (averaged) in place as one collective, packed and unpacked on the communication
 * thread while backward goes on; the last bucket's hook waits for all of them. Buckets hold
 * ~25 MiB, in reverse registration order at first and, after the first backward, in the order
 * gradients arrived (rank 0's), the first one 1 MiB so that communication starts early.
 */
import {
  bytesPerElement, isGradEnabled, keep, noGrad, registerPostAccumulateGradHook, releaseGrad, Tensor, tensor, zerosLike, type Node,
} from '@nodegrad/autograd';
import { fusedLists, Module } from '@nodegrad/nn';
import { allReduceCoalescedAsync, broadcast, broadcastCoalesced } from './collectives.js';
import { group, type Work } from './process_group.js';

export interface DDPOptions {
  /** Bucket size in MiB (default 25, as PyTorch's bucket_cap_mb). */
  bucketCapMB?: number;
  /**
   * Parameters may get no gradient in an iteration (branches not taken): each forward finds
   * them from the graph and they join the reduction with zeros. Off by default, as in PyTorch:
   * a parameter without a gradient is then an error at the next forward, naming it.
   */
  findUnusedParameters?: boolean;
  /**
   * Broadcast rank 0's buffers (BatchNorm statistics) at construction and before each forward
   * that follows a forward which recorded gradients outside noSync (default true), as PyTorch's.
   */
  broadcastBuffers?: boolean;
}

const FIRST_BUCKET_BYTES = 1 << 20;

interface Bucket {
  params: Tensor[];
  ready: number;
  work: Work<Tensor[]> | null;
  /** Gradients this reduction made (zeros for parameters without one), and the used flags. */
  made: Tensor[];
  used: Tensor | null;
}

export class DistributedDataParallel<M extends Module = Module> extends Module {
  declare module: M;
  private readonly synced: Tensor[];
  private readonly names = new Map<Tensor, string>();
  private buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Tensor, Bucket>();
  private readonly capBytes: number;
  private readonly findUnused: boolean;
  private readonly broadcastBuffers: boolean;
  private sync = true;
  /** The reduction of the current backward: parameters marked ready, in the order they were. */
  private readonly arrived = new Set<Tensor>();
  private launched = 0;
  /** findUnusedParameters: the parameters the last prepared forward's outputs do not reach. */
  private unused = new Set<Tensor>();
  private rebuilt = false;
  /** A forward since the last reduction prepared one: its backward's gradients are reduced. */
  private expectHooks = false;
  /**
   * findUnusedParameters: the parameters that got a gradient on this rank since the last
   * reduction, under noSync too (PyTorch's local_used_map): one used by any rank is averaged.
   */
  private readonly locallyUsed = new Set<Tensor>();
  /**
   * PyTorch's require_forward_param_sync: the last forward recorded gradients outside noSync (true
   * before the first), and so the next one starts by broadcasting rank 0's buffers.
   */
  private buffersToSync = true;

  constructor(module: M, opts: DDPOptions = {}) {
    super();
    group('DistributedDataParallel');
    if (!(module instanceof Module)) throw new Error('DistributedDataParallel: expected a Module to wrap');
    const capMB = opts.bucketCapMB ?? 25;
    if (!(capMB > 0)) throw new Error(`DistributedDataParallel: bucketCapMB must be > 0, got ${capMB}`);
    this.capBytes = capMB * 2 ** 20;
    this.findUnused = opts.findUnusedParameters ?? false;
    this.broadcastBuffers = opts.broadcastBuffers ?? true;
    this.registerModule('module', module);
    const named = module.namedParameters().filter(([, p]) => p.requiresGrad);
    this.synced = named.map(([, p]) => p);
    for (const [n, p] of named) this.names.set(p, n);
    // Every rank starts from rank 0's weights, and statistics unless broadcastBuffers is false (as PyTorch's).
    broadcastFromRank0([...module.parameters(), ...(this.broadcastBuffers ? module.buffers() : [])]);
    this.buildBuckets([...this.synced].reverse(), this.capBytes);
    for (const p of this.synced) registerPostAccumulateGradHook(p, () => this.gradReady(p));
  }

  /**
   * Runs `fn` without preparing a reduction: a backward of a forward run inside accumulates its
   * gradients locally (a backward inside it of a forward outside still reduces, as in PyTorch).
   */
  noSync<T>(fn: () => T): T {
    const before = this.sync;
    this.sync = false;
    try {
      return fn();
    } finally {
      this.sync = before;
    }
  }

  /** The wrapped module's forward, with its arguments and result types. */
  override forward(...inputs: Parameters<M['forward']>): ReturnType<M['forward']> {
    this.checkPreviousReduction();
    // As PyTorch's DDP, decided at the forward (prepare_for_backward): only a backward after a
    // forward that records gradients outside noSync reduces, inside noSync or not; a second backward
    // through the same graph accumulates locally. In eval mode too.
    const prepares = this.sync && isGradEnabled();
    if (prepares) this.expectHooks = true;
    // Rank 0's buffers (BatchNorm statistics) reach every rank before a forward that follows one
    // which prepared a reduction, whatever the mode, as in PyTorch: after a noSync or noGrad forward not.
    const g = group('DistributedDataParallel');
    if (this.buffersToSync && this.broadcastBuffers && g.worldSize > 1) broadcastFromRank0(this.module.buffers());
    this.buffersToSync = prepares;
    const out = (this.module as Module).call(...inputs) as ReturnType<M['forward']>;
    if (this.findUnused && prepares) this.noteUsed(out);
    return out;
  }

  private buildBuckets(order: Tensor[], cap: number, firstCap = cap): void {
    this.buckets = [];
    this.bucketOf.clear();
    let current: Bucket | null = null;
    let bytes = 0;
    for (const p of order) {
      const size = p.size * bytesPerElement(p.dtype);
      const limit = this.buckets.length === 1 ? firstCap : cap;
      const head = current?.params[0];
      if (!current || bytes + size > limit || head!.dtype !== p.dtype || head!.device !== p.device) {
        current = { params: [], ready: 0, work: null, made: [], used: null };
        this.buckets.push(current);
        bytes = 0;
      }
      current.params.push(p);
      bytes += size;
      this.bucketOf.set(p, current);
    }
  }

  /**
   * findUnusedParameters: the parameters the graph of `out` does not reach join this round with
   * zeros. `out`'s tensors are found in arrays, Maps, Sets and plain objects, nested, as PyTorch's
   * _find_tensors looks into lists, tuples and dicts.
   */
  private noteUsed(out: unknown): void {
    const reached = new Set<Tensor>();
    const seen = new Set<Node>();
    const stack: Node[] = [];
    const containers = new Set<object>();
    const visit = (t: unknown): void => {
      if (t instanceof Tensor) {
        if (t.gradFn) stack.push(t.gradFn);
        else if (t.requiresGrad) reached.add(t);
        return;
      }
      if (t === null || typeof t !== 'object' || containers.has(t)) return;
      containers.add(t);
      if (Array.isArray(t) || t instanceof Set) for (const x of t) visit(x);
      else if (t instanceof Map) for (const x of t.values()) visit(x);
      else if ([Object.prototype, null].includes(Object.getPrototypeOf(t))) for (const x of Object.values(t)) visit(x);
    };
    visit(out);
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      if (n.leaf) reached.add(n.leaf);
      for (const e of n.edges) if (e) stack.push(e.node);
    }
    // As PyTorch's prepare_for_backward: the last forward that prepares a reduction decides, so an
    // eval forward with gradients on and no backward leaves nothing behind.
    this.unused = new Set(this.synced.filter((p) => !reached.has(p)));
  }

  private gradReady(p: Tensor): void {
    if (this.findUnused) this.locallyUsed.add(p);
    if (!this.expectHooks) return;
    if (this.arrived.size === 0 && this.launched === 0) {
      // The first gradient of this backward: parameters known to be unused are ready at once (p
      // too, if the last forward left it unused: its own gradient is then the error below).
      for (const u of this.unused) this.mark(u);
    }
    this.mark(p);
  }

  private mark(p: Tensor): void {
    if (this.arrived.has(p)) {
      // PyTorch's "Expected to mark a variable ready only once": a backward through the output of an
      // earlier forward reaches a parameter the last forward left unused, after its zeros were counted.
      throw new Error(`DistributedDataParallel: parameter '${this.names.get(p)}' got a gradient in this backward ` +
        'after it was marked unused: findUnusedParameters looks at the last forward before the backward, and this ' +
        'backward also reaches an earlier forward\'s output. Call backward after each forward, or use noSync for all but the last.');
    }
    this.arrived.add(p);
    this.bucketOf.get(p)!.ready++;
    // Complete buckets are reduced now, while backward continues, and in bucket order, so every
    // rank issues the same collectives in the same order (as PyTorch's reducer does).
    for (let b = this.buckets[this.launched]; b && b.ready === b.params.length; b = this.buckets[this.launched]) {
      // A parameter without a gradient (unused) joins with zeros, in a gradient made for it.
      b.made = b.params.filter((q) => !q.grad);
      for (const q of b.made) q.grad = keep(noGrad(() => zerosLike(q)));
      // With findUnusedParameters, one flag per parameter rides along: 0 on every rank means
      // no rank gave it a gradient since the last reduction, and it is then left alone (None stays
      // None), as in PyTorch.
      const { device, dtype } = b.params[0]!;
      b.used = this.findUnused ? keep(tensor(b.params.map((q) => (this.locallyUsed.has(q) ? 1 : 0)), { device, dtype })) : null;
      // The gradients are packed, averaged and written back in place on the communication thread.
      b.work = allReduceCoalescedAsync([...b.params.map((q) => q.grad!), ...(b.used ? [b.used] : [])], 'avg');
      this.launched++;
    }
    if (this.launched === this.buckets.length) this.finish();
  }

  /** Waits for every bucket: the averages are then in `.grad`. */
  private finish(): void {
    for (const b of this.buckets) {
      b.work!.wait();
      const used = b.used?.toTypedArray();
      b.params.forEach((q, i) => { if (used && used[i] === 0 && b.made.includes(q)) releaseGrad(q); });
      Object.assign(b, { work: null, ready: 0, used: null, made: [] });
    }
    if (!this.rebuilt) this.rebuildFromArrival();
    this.arrived.clear();
    this.launched = 0;
    this.expectHooks = false;
    this.unused.clear();
    this.locallyUsed.clear();
  }

  /** After the first backward, buckets follow the order gradients arrived on rank 0. */
  private rebuildFromArrival(): void {
    this.rebuilt = true;
    const index = new Map(this.synced.map((p, i) => [p, i]));
    const order = tensor([...this.arrived].map((p) => index.get(p)!), { device: 'ts', dtype: 'float64' });
    if (group('DistributedDataParallel').worldSize > 1) broadcast(order, 0);
    this.buildBuckets(Array.from(order.toTypedArray(), (i) => this.synced[i]!), this.capBytes, FIRST_BUCKET_BYTES);
  }

  /** A backward that left parameters without a gradient cannot have finished its reduction. */
  private checkPreviousReduction(): void {
    if (this.arrived.size === 0 && this.launched === 0) return;
    const missing = this.synced.filter((p) => !this.arrived.has(p)).map((p) => this.names.get(p)!);
    throw new Error('DistributedDataParallel: the previous backward did not finish reducing gradients: ' +
      `${missing.length} parameter${missing.length === 1 ? '' : 's'} got no gradient (${missing.slice(0, 10).join(', ')}` +
      `${missing.length > 10 ? ', ...' : ''}). Pass findUnusedParameters: true if some parameters are unused ` +
      'in a forward, or make every output take part in the loss.');
  }
}

/** Rank 0's values of `tensors`, in place: one collective per device and dtype. */
function broadcastFromRank0(tensors: Tensor[]): void {
  noGrad(() => { for (const list of fusedLists(tensors)) broadcastCoalesced(list, 0); });
}
