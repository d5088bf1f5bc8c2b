// Run by collectives.test.ts under `mpirun -np 2`: each rank runs the collectives on 'cpu' and 'ts'
// tensors, or on the devices NODEGRAD_RANK_DEVICES names ('cuda-emu', or 'cuda:0' shared by both
// ranks in the GPU kit: tensors of a device go through host copies in an 'mpi' group), and prints
// one JSON line of what it saw; the test compares against the values every rank must end with.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { full, narrow, noGrad, tensor, tidy, zeros, type Tensor } from '@nodegrad/autograd';
import { registerCudaEmulation } from '@nodegrad/native';
import {
  allGather, allGatherAsync, allGatherInto, allReduce, allReduceAsync, allReduceCoalesced, barrier, broadcast, broadcastCoalesced, initProcessGroup, reduceScatter,
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
  // NaN against a number: the number, whichever rank holds it (NCCL's fmax and fmin); NaN where all are.
  const nan = (t: Tensor) => list(t).map((v) => (Number.isNaN(v) ? 'NaN' : v));
  for (const dtype of device === 'cuda-emu' ? ['float32', 'float64'] as const : ['float32', 'float64', 'bfloat16'] as const) {
    for (const op of ['max', 'min'] as const) {
      const values = r === 0 ? [NaN, 1, NaN, -3] : [2, NaN, NaN, -4];
      out[`${device} ${dtype} ${op} with NaN`] = nan(allReduce(tensor(values, { device, dtype }), op));
    }
  }
  out[`${device} reduceScatter max with NaN`] = nan(reduceScatter(tensor(r === 0 ? [NaN, 5] : [1, NaN], { device }), 'max'));
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
  // In place into a slice (narrow): the result reaches its base, as into a PyTorch view.
  for (const dtype of ['float32', 'int64'] as const) {
    const base = tensor([1, 2, 3, 4], { device, dtype }).mul(r + 1);
    allReduce(narrow(base, 0, 1, 2));
    out[`${device} ${dtype} allReduce into a slice`] = list(base);
  }
  // A list whose second tensor is a slice.
  const sliced = tensor([1, 2, 3], { device }).mul(r + 1);
  allReduceCoalesced([tensor([r], { device }), narrow(sliced, 0, 1, 2)]);
  out[`${device} allReduceCoalesced into a slice`] = list(sliced);
  // A slice whose base changed in place after it was taken: the collective sees the base's values.
  const changed = tensor([1, 2, 3, 4], { device });
  const stale = narrow(changed, 0, 0, 2);
  noGrad(() => changed.mul_(r + 1));
  allReduce(stale);
  out[`${device} allReduce into a slice of a changed base`] = [list(stale), list(changed)];
  // A view (reshape) of a slice: the result reaches the slice's base.
  const viewed = tensor([1, 2, 3, 4, 5, 6], { device }).mul(r + 1);
  allReduce(narrow(viewed, 0, 2, 4).reshape([2, 2]));
  out[`${device} allReduce into a view of a slice`] = list(viewed);
  const gathered = zeros([3, 2], { device });
  allGatherInto(narrow(gathered, 0, 1, 2), tensor([r + 1, -r], { device }));
  out[`${device} allGatherInto a slice`] = gathered.toArray();
}
// A dropped work through host copies (a half type) gets its result once a later collective is
// waited for, as a dropped float32 one does in place.
const half = tensor([r + 1], { dtype: 'float16' });
allReduceAsync(half, 'sum'); // dropped
barrier();
out['dropped float16 work'] = list(half);
const works = [1, 2, 3].map((k) => allReduceAsync(tensor([k * (r + 1)]), 'sum'));
out['async in order'] = (await Promise.all(works.map((w) => w.promise()))).map(list);

// A work dropped without a wait keeps its tensor until the collective is done, or the tensor's
// memory would go back to the pool while MPI's thread still writes it. Rank 1 joins late; rank 0
// drops its work and collects garbage meanwhile, and its tensor must survive that and get the sum
// (host tensors: MPI writes them in place; a device's get theirs from the host copy on wait()).
if (!process.env.NODEGRAD_RANK_DEVICES) {
  // Async works made inside a tidy() that ends while the collective still runs (rank 1 joins
  // late): their tensors' memory is freed only after it, as PyTorch's groups hold their storage.
  // Tensors made right after would otherwise get that memory, and MPI would read or write them.
  const late = () => (r === 1 ? new Promise((done) => setTimeout(done, 300)) : Promise.resolve());
  const gatherWork = tidy(() => allGatherAsync(full([4096], r + 1, { device: 'cpu' })));
  const reused = full([4096], 999, { device: 'cpu' });
  await late();
  out['tidy: gathered input'] = (await gatherWork.promise()).map((t) => [t.shape[0], t.min().item(), t.max().item()]);
  tidy(() => { allReduceAsync(full([4096], r + 1, { device: 'cpu' })); });
  const victim = full([4096], 7, { device: 'cpu' });
  await late();
  barrier();
  out['tidy: dropped work, a tensor made after'] = [victim.min().item(), victim.max().item(), reused.max().item()];
  // A dropped work into a slice made inside the tidy: its result still reaches the base.
  const sliceBase = tensor([1, 2, 3, 4], { device: 'cpu' });
  tidy(() => { allReduceAsync(narrow(sliceBase, 0, 0, 2)); });
  await late();
  barrier();
  out['tidy: dropped work into a slice'] = list(sliceBase);
  const halfSum = full([4], r + 1, { dtype: 'float16', device: 'cpu' });
  const halfWork = tidy(() => allReduceAsync(halfSum));
  await late();
  out['tidy: float16 work'] = list(await halfWork.promise());
  if (r === 1) await new Promise((done) => setTimeout(done, 400));
  let weak: WeakRef<Tensor> | null = null;
  (() => {
    const t = tensor([r + 1]);
    weak = new WeakRef(t);
    allReduceAsync(t, 'sum'); // dropped
  })();
  await new Promise((done) => setTimeout(done, 0)); // a WeakRef keeps its target through the job that made it
  if (r === 0) {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  }
  let dropped = weak!.deref();
  barrier(); // after the dropped allReduce on both ranks, so it has finished
  out['dropped work'] = dropped ? list(dropped) : 'collected while its collective ran';
  // The next collective lets go of the finished work: the tensor can be collected now.
  dropped = undefined;
  barrier();
  await new Promise((done) => setTimeout(done, 0));
  if (r === 0) {
    (runInNewContext('gc') as () => void)();
    out['dropped work released'] = weak!.deref() === undefined;
  }
}
report(out);
