// Run by collectives.test.ts under `mpirun -np 2`: each rank runs the collectives on 'cpu' and 'ts'
// tensors, or on the devices NODEGRAD_RANK_DEVICES names ('cuda-emu', or 'cuda:0' shared by both
// ranks in the GPU kit: tensors of a device go through host copies in an 'mpi' group), and prints
// one JSON line of what it saw; the test compares against the values every rank must end with.
import { tensor, zeros, type Tensor } from '@nodegrad/autograd';
import { registerCudaEmulation } from '@nodegrad/native';
import {
  allGather, allGatherInto, allReduce, allReduceAsync, barrier, broadcast, broadcastCoalesced, initProcessGroup, reduceScatter,
} from '@nodegrad/distributed';
import { report } from './report.js';

registerCudaEmulation(); // a device of its own memory: its tensors go through host copies, as 'cuda:N' ones do
const devices = process.env.NODEGRAD_RANK_DEVICES?.split(',') ?? ['cpu', 'ts'];
const pg = initProcessGroup({ backend: 'mpi' });
const r = pg.rank;
const out: Record<string, unknown> = { rank: r, worldSize: pg.worldSize };
const list = (t: Tensor) => Array.from(t.toTypedArray());

for (const device of devices) {
  for (const op of ['sum', 'avg', 'max', 'min'] as const) {
    out[`${device} float32 ${op}`] = list(allReduce(tensor([r + 1, -2 * r, 0.5], { device, dtype: 'float32' }), op));
  }
  out[`${device} float64 sum`] = list(allReduce(tensor([[1 / 3 + r, 2], [3, 4e300 * (r ? -1 : 1)]], { device, dtype: 'float64' })));
  out[`${device} int64 sum`] = list(allReduce(tensor([2 ** 40 + r, -7], { device, dtype: 'int64' })));
  out[`${device} int32 max`] = list(allReduce(tensor([r, -r], { device, dtype: 'int32' }), 'max'));
  // The half types (on the devices that hold them) cross MPI as float32: each result is the
  // float32 sum rounded once.
  for (const [dtype, op] of device === 'cuda-emu' ? [] : [['bfloat16', 'sum'], ['float16', 'avg']] as const) {
    const t = allReduce(tensor([r + 1, 0.1 * (r + 1), 300 + r], { device, dtype }), op);
    out[`${device} ${dtype} ${op}`] = { dtype: t.dtype, values: list(t) };
  }
  out[`${device} broadcast from 1`] = list(broadcast(tensor([r, r + 10], { device }), 1));
  out[`${device} broadcastCoalesced from 1`] = broadcastCoalesced([tensor([r, r + 10], { device }), tensor([[2 * r]], { device })], 1)
    .map((t) => t.toArray());
  out[`${device} allGatherInto`] = allGatherInto(zeros([2, 2], { device }), tensor([r, -r], { device })).toArray();
  // Unequal first dimensions: rank r sends r + 1 rows of 2.
  const rows = tensor(Array.from({ length: r + 1 }, (_, i) => [10 * r + i, -i]), { device });
  out[`${device} allGather`] = allGather(rows).map((t) => ({ shape: t.shape, values: list(t), device: t.device }));
  out[`${device} reduceScatter`] = list(reduceScatter(tensor([[1, 2], [3, 4]], { device }).mul(r + 1), 'sum'));
}
const works = [1, 2, 3].map((k) => allReduceAsync(tensor([k * (r + 1)]), 'sum'));
out['async in order'] = (await Promise.all(works.map((w) => w.promise()))).map(list);
barrier();
report(out);
