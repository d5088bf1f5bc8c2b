/**
 * The ways a collective runs: MPI on host tensors ('cpu', 'ts'; the addon's communication
 * thread), NCCL on this rank's GPU ('cuda:N'; the communicator's stream), and MPI through
 * float32 host copies for any other device and for the half types (MPI has no 16-bit floats). A
 * collective picks its engine by its tensors' device and dtype; each hands back a Pending for Work.
 */
import { fmt, isHalf, noGrad, type Tensor } from '@nodegrad/autograd';
import type { MpiAddon, MpiReduceOp } from '@nodegrad/native';
import type { NcclGroup, Pending } from './process_group.js';

export interface Engine {
  name: 'mpi' | 'nccl';
  allReduce(t: Tensor, op: MpiReduceOp): Pending;
  allReduceCoalesced(ts: Tensor[], op: MpiReduceOp): Pending;
  broadcast(t: Tensor, src: number): Pending;
  broadcastCoalesced(ts: Tensor[], src: number): Pending;
  /** counts[r] elements from rank r into `out`, in rank order. */
  allGather(t: Tensor, out: Tensor, counts: number[]): Pending;
  reduceScatter(input: Tensor, out: Tensor, op: MpiReduceOp): Pending;
  /** The device of the small tensors the collectives exchange among themselves (shapes). */
  scratchDevice: string;
}

export function mpiEngine(mpi: MpiAddon): Engine {
  type W = ReturnType<MpiAddon['barrier']>;
  const pending = (w: W): Pending => ({ wait: (ms) => mpi.wait(w, ms), done: () => mpi.done(w), whenDone: () => mpi.whenDone(w) });
  return {
    name: 'mpi',
    scratchDevice: 'ts',
    allReduce: (t, op) => pending(mpi.allReduce(t, op)),
    allReduceCoalesced: (ts, op) => pending(mpi.allReduceCoalesced(ts, op)),
    broadcast: (t, src) => pending(mpi.broadcast(t, src)),
    broadcastCoalesced: (ts, src) => pending(mpi.broadcastCoalesced(ts, src)),
    allGather: (t, out, counts) => pending(mpi.allGather(t, out, counts)),
    reduceScatter: (input, out, op) => pending(mpi.reduceScatter(input, out, op)),
  };
}

export function ncclEngine(g: NcclGroup): Engine {
  const { addon, comm } = g;
  type W = ReturnType<typeof addon.allReduce>;
  const pending = (w: W): Pending => ({
    wait: () => { addon.wait(w); return true; },
    done: () => addon.done(w),
    whenDone: async () => { while (!addon.done(w)) await new Promise((r) => setTimeout(r, 1)); },
  });
  return {
    name: 'nccl',
    scratchDevice: g.device,
    allReduce: (t, op) => pending(addon.allReduce(comm, t, op)),
    allReduceCoalesced: (ts, op) => pending(addon.allReduceCoalesced(comm, ts, op)),
    broadcast: (t, src) => pending(addon.broadcast(comm, t, src)),
    broadcastCoalesced: (ts, src) => pending(addon.broadcastCoalesced(comm, ts, src)),
    allGather: (t, out, counts) => {
      // NCCL gathers equal blocks: allGather (collectives.ts) pads every rank's part to the largest.
      if (counts.some((c) => c !== t.size)) throw new Error(`allGather: NCCL gathers equal sizes; got ${fmt(counts)}`);
      return pending(addon.allGather(comm, t, out));
    },
    reduceScatter: (input, out, op) => pending(addon.reduceScatter(comm, input, out, op)),
  };
}

/**
 * `p`, then `after` once when it is first seen finished by a wait (a dropped work's wait comes
 * from releaseFinished): the copies back that make a collective's result visible.
 */
function thenOnce(p: Pending, after: () => void, holds = p.holds): Pending {
  let ran = false;
  return {
    wait: (ms) => {
      const ok = p.wait(ms);
      if (ok && !ran) { ran = true; after(); }
      return ok;
    },
    done: () => p.done(),
    whenDone: () => p.whenDone(),
    holds,
  };
}

/** Whether writing `t` must reach a slice's base: t is a slice, or a view of one (up the chain of views). */
export function writesToSlice(t: Tensor): boolean {
  for (let b: Tensor | null = t; b; b = b.viewBase) if (b.sliceOf) return true;
  return false;
}

/**
 * `inner` for written tensors that are slices (narrow, chunk): a slice holds a copy of its
 * region, so the collective writes the slice, and its result reaches the base when the work
 * completes, as into a PyTorch view (copy_ from its own storage copies nothing and writes through).
 */
export function throughSlices(inner: Engine): Engine {
  const back = (p: Pending, written: Tensor[]) =>
    thenOnce(p, () => noGrad(() => { for (const t of written) if (writesToSlice(t)) t.copy_(t.detach()); }));
  return {
    ...inner,
    allReduce: (t, op) => back(inner.allReduce(t, op), [t]),
    allReduceCoalesced: (ts, op) => back(inner.allReduceCoalesced(ts, op), ts),
    broadcast: (t, src) => back(inner.broadcast(t, src), [t]),
    broadcastCoalesced: (ts, src) => back(inner.broadcastCoalesced(ts, src), ts),
    allGather: (t, out, counts) => back(inner.allGather(t, out, counts), [out]),
    reduceScatter: (input, out, op) => back(inner.reduceScatter(input, out, op), [out]),
  };
}

/**
 * MPI for tensors of another device ('cuda:N' in an 'mpi' group, as gloo does for PyTorch) or of
 * a half type: each tensor is copied to host memory first, widened to float32 if it is half,
 * reduced there, and copied back (rounded once) into the tensor when the work is waited for; the
 * copy back writes through a slice to its base.
 * Correct everywhere, and as slow as two copies per collective.
 */
export function stagedEngine(mpi: MpiAddon): Engine {
  const inner = mpiEngine(mpi);
  const host = (t: Tensor) => noGrad(() => {
    const h = t.device === 'cpu' || t.device === 'ts' ? t.detach() : t.detach().to('ts');
    return isHalf(h.dtype) ? h.to('float32') : h;
  });
  /**
   * `p`, then each (device, host) pair's host values written back into the device tensor, once.
   * The work holds the host copies (those written, and `read`) until then, as it holds its tensors:
   * a tidy around an async call must not free them under MPI.
   */
  const back = (p: Pending, pairs: [Tensor, Tensor][], read: Tensor[] = []): Pending =>
    thenOnce(p, () => noGrad(() => { for (const [dev, h] of pairs) dev.copy_(h.to(dev.dtype).to(dev.device)); }),
      [...pairs.map(([, h]) => h), ...read]);
  return {
    name: 'mpi',
    scratchDevice: 'ts',
    allReduce: (t, op) => { const h = host(t); return back(inner.allReduce(h, op), [[t, h]]); },
    allReduceCoalesced: (ts, op) => { const hs = ts.map(host); return back(inner.allReduceCoalesced(hs, op), ts.map((t, i) => [t, hs[i]!])); },
    broadcast: (t, src) => { const h = host(t); return back(inner.broadcast(h, src), [[t, h]]); },
    broadcastCoalesced: (ts, src) => { const hs = ts.map(host); return back(inner.broadcastCoalesced(hs, src), ts.map((t, i) => [t, hs[i]!])); },
    allGather: (t, out, counts) => { const h = host(out), i = host(t); return back(inner.allGather(i, h, counts), [[out, h]], [i]); },
    reduceScatter: (input, out, op) => {
      const h = host(out), i = host(input);
      return back(inner.reduceScatter(i, h, op), [[out, h]], [i]);
    },
  };
}
