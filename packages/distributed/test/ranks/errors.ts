// Run by collectives.test.ts: the process group's errors. CASE picks one:
//   singleton: started alone (no mpirun), a world of size 1; argument errors; prints them.
//   mismatch:  2 ranks, debug handshake on, rank 1 passes another shape to allReduce, then
//              another number of tensors to allReduceCoalesced, another op, another src, and
//              another collective than rank 0's barrier.
//   timeout:   2 ranks, rank 1 skips an allReduce; rank 0's 300 ms watchdog fires.
//   syncbn:    2 ranks, a SyncBatchNorm in a dtype 'cpu' cannot normalize, rank 1's batch empty.
import { tensor, zeros } from '@nodegrad/autograd';
import { mpiBinding, registerCudaEmulation } from '@nodegrad/native';
import {
  allGather, allReduce, allReduceCoalesced, barrier, broadcast, broadcastCoalesced, getRank, initProcessGroup, reduceScatter,
  SyncBatchNorm,
} from '@nodegrad/distributed';
import { report } from './report.js';

const message = (f: () => unknown) => { try { f(); return 'no error'; } catch (e) { return (e as Error).message; } };
const mode = process.env.CASE;
const out: Record<string, unknown> = {};

if (mode === 'singleton') {
  out.beforeInit = message(() => getRank());
  const pg = initProcessGroup({ backend: 'mpi' });
  Object.assign(out, { rank: pg.rank, worldSize: pg.worldSize });
  out.sum = Array.from(allReduce(tensor([1.5, 2])).toTypedArray());
  out.gather = allGather(tensor([[1, 2]])).map((t) => t.shape);
  out.badOp = message(() => allReduce(tensor([1]), 'prod' as 'sum'));
  out.badSrc = message(() => broadcast(tensor([1]), 1));
  out.badScatter = message(() => reduceScatter(tensor(3)));
  // The binding itself: counts are MPI's int displacements, so they must fit the output and the world.
  const binding = mpiBinding();
  if ('mpi' in binding) {
    const { mpi } = binding;
    out.rawCounts = message(() => mpi.allGather(tensor([1, 2], { device: 'cpu' }), zeros([2], { device: 'cpu' }), [3]));
    out.rawRanks = message(() => mpi.allGather(tensor([1, 2], { device: 'cpu' }), zeros([2], { device: 'cpu' }), [1, 1]));
  }
  registerCudaEmulation();
  const emu = allReduce(tensor([2.5], { device: 'cuda-emu' }), 'max');
  out.staged = [Array.from(emu.toTypedArray()), emu.device];
  out.nccl = message(() => initProcessGroup({ backend: 'nccl' }));
} else if (mode === 'mismatch') {
  const pg = initProcessGroup({ backend: 'mpi', debug: true });
  out.rank = pg.rank;
  out.error = message(() => allReduce(tensor(pg.rank === 0 ? [1, 2, 3] : [1, 2])));
  out.countError = message(() => allReduceCoalesced(pg.rank === 0 ? [tensor([1]), tensor([2])] : [tensor([1])]));
  out.opError = message(() => allReduce(tensor([1]), pg.rank === 0 ? 'sum' : 'max'));
  out.srcError = message(() => broadcastCoalesced([tensor([1])], pg.rank));
  out.collectiveError = message(() => (pg.rank === 0 ? barrier() : allReduce(tensor([1]))));
  out.after = Array.from(allReduce(tensor([pg.rank + 1])).toTypedArray());
} else if (mode === 'timeout') {
  const pg = initProcessGroup({ backend: 'mpi', timeoutMs: 300 });
  out.rank = pg.rank;
  if (pg.rank === 0) out.error = message(() => allReduce(tensor([1])));
} else if (mode === 'syncbn') {
  const pg = initProcessGroup({ backend: 'mpi', timeoutMs: 5000 });
  out.rank = pg.rank;
  const bn = new SyncBatchNorm(2, { dtype: 'float64', device: 'cpu' });
  out.error = message(() => bn.call(zeros([pg.rank === 0 ? 3 : 0, 2], { dtype: 'float64', device: 'cpu' })));
  out.after = Array.from(allReduce(tensor([pg.rank + 1])).toTypedArray());
}
report(out);
