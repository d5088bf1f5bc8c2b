// The 'nccl' process group on this machine's first GPU, a world of one process (no MPI needed):
// every collective on 'cuda:0' tensors against the values it must leave, half types included,
// the NCCL work's stream ordering (a kernel after wait() sees the result), the watchdog ending a
// process whose collective never completes, and DDP through NCCL. Runs in the GPU kit
// (scripts/gpu/kit_tests.ts); skipped here with the driver's reason. NCCL takes one rank per GPU:
// two ranks sharing one go through the 'mpi' group (the [cuda:0] suites of collectives.test.ts,
// sync_batch_norm.test.ts and ddp.test.ts).
import { describe, expect, it } from 'vitest';
import { backends, narrow, tensor, zeros } from '@nodegrad/autograd';
import { cuda, ncclBinding } from '@nodegrad/native';
import {
  allGather, allGatherInto, allReduce, allReduceCoalesced, barrier, broadcast, DistributedDataParallel, initProcessGroup, reduceScatter,
} from '@nodegrad/distributed';
import { Linear } from '@nodegrad/nn';
import { mpirun } from './mpirun.js';

const gpu = backends().find((b) => b.name === 'cuda:0');
const why = gpu?.available ? '' : ` (skipped: unavailable: ${gpu?.reason ?? 'not registered'})`;

(gpu?.available ? describe : describe.skip)(`the 'nccl' process group, one rank [cuda:0]${why}`, () => {
  const on = (v: number[] | number[][], dtype: 'float32' | 'float64' | 'int64' = 'float32') => tensor(v, { device: 'cuda:0', dtype });
  const list = (t: { toArray(): unknown }) => t.toArray();

  it('collectives of one rank leave their values (sum, avg, max of one are the value itself)', () => {
    const pg = initProcessGroup({ backend: 'nccl' });
    expect([pg.backend, pg.rank, pg.worldSize]).toEqual(['nccl', 0, 1]);
    expect(list(allReduce(on([1.5, -2]), 'sum'))).toEqual([1.5, -2]);
    expect(list(allReduce(on([1.5, -2], 'float64'), 'avg'))).toEqual([1.5, -2]);
    expect(list(allReduce(on([2 ** 40, 3], 'int64'), 'max'))).toEqual([2 ** 40, 3]);
    expect(list(broadcast(on([4, 5]), 0))).toEqual([4, 5]);
    const g = allGather(on([[1, 2], [3, 4]]));
    expect(g.map((t) => [t.device, t.shape, t.toArray()])).toEqual([['cuda:0', [2, 2], [[1, 2], [3, 4]]]]);
    expect(list(reduceScatter(on([[1, 2], [3, 4]])))).toEqual([[1, 2], [3, 4]]);
    const [a, b] = allReduceCoalesced([on([1]), on([2, 3])], 'sum');
    expect([list(a!), list(b!)]).toEqual([[1], [2, 3]]);
    barrier();
  });

  it('into a slice (narrow), the result reaches its base, as into a PyTorch view', () => {
    initProcessGroup({ backend: 'nccl' });
    const base = zeros([3, 2], { device: 'cuda:0' });
    allGatherInto(narrow(base, 0, 1, 1), on([[5, 6]]));
    expect(list(base)).toEqual([[0, 0], [5, 6], [0, 0]]);
  });

  it('half tensors go as NCCL\'s own half types: values and dtype kept', () => {
    initProcessGroup({ backend: 'nccl' });
    for (const dtype of ['bfloat16', 'float16'] as const) {
      const t = tensor([1.5, -2, 0.25], { device: 'cuda:0', dtype });
      expect([t.dtype, list(allReduce(t, 'sum'))]).toEqual([dtype, [1.5, -2, 0.25]]);
      const g = allGather(tensor([[1, 2]], { device: 'cuda:0', dtype }));
      expect(g.map((x) => [x.dtype, x.toArray()])).toEqual([[dtype, [[1, 2]]]]);
    }
  });

  it('a kernel queued after wait() sees the collective result (stream ordering, no host wait)', () => {
    initProcessGroup({ backend: 'nccl' });
    const t = on([1, 2, 3]);
    const y = allReduce(t.mul(2), 'sum').add(1);
    expect(list(y)).toEqual([3, 5, 7]);
  });

  it('a rank whose local rank is past the GPUs is refused, naming the device and the count (NCCL: a GPU per rank)', () => {
    const binding = ncclBinding();
    if ('reason' in binding) throw new Error(binding.reason);
    const n = cuda.deviceCount();
    expect(() => binding.nccl.init(n, 0, 1, binding.nccl.uniqueId()))
      .toThrow(`device ${n} (the rank's local rank) is not a GPU of this machine, which has ${n}: NCCL takes one GPU per rank`);
  });

  it('a host tensor is refused by a group of one without MPI, naming the devices it takes', () => {
    initProcessGroup({ backend: 'nccl' });
    expect(() => allReduce(tensor([1], { device: 'ts' }))).toThrow(/this 'nccl' group of one process has no MPI for host tensors/);
  });

  it('a collective pending past the group\'s timeout ends the process, naming it (the watchdog), within seconds', async () => {
    // Launches asynchronous (the kit's tests step makes them blocking): a blocking one would hold
    // this host thread in the collective's launch, before the watchdog is told of it.
    const run = await mpirun(0, 'packages/distributed/test/ranks/nccl_watchdog.ts', { CUDA_LAUNCH_BLOCKING: '0' }, 30_000);
    expect(run.stderr).toMatch(/allReduce on rank 0 \(NCCL, cuda:0\) did not finish within 500 ms \(the group's timeoutMs\)/);
    expect(run.status).toBe(1);
    expect(run.ranks).toEqual([]);
    expect(run.ms).toBeLessThan(15_000); // the stream is held for 20 s
  });

  it('DDP through NCCL: a step of one rank gives the plain gradients', () => {
    initProcessGroup({ backend: 'nccl' });
    const model = new Linear(3, 2).to('cuda:0');
    const ddp = new DistributedDataParallel(model);
    const x = on([[1, 2, 3]]);
    (ddp.call(x) as ReturnType<typeof model.call>).sum().backward();
    expect(list(model.weight.grad!)).toEqual([[1, 2, 3], [1, 2, 3]]);
  });
});
