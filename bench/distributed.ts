/**
 * Data-parallel costs on this machine, 2 ranks under mpirun (bench/distributed.sh runs it):
 * - allReduce (float32 sum, in place on 'cpu') of ResNet-18's and ResNet-50's gradient sizes and
 *   of one 25 MiB bucket, the median of 10 after 3 warm-ups;
 * - a DDP training step of the small-stem ResNet-18 on 28x28 digits, batch 32 per rank, against
 *   one process on the same 32 (rank 0 alone, one thread each: the same resources per rank), and
 *   the backward of a DDP step with and without communication (noSync), so the share of the
 *   all-reduce hidden behind backward shows.
 * Rank 0 prints one JSON line.
 */
import { randn, tensor, tidy, zeros, type Tensor } from '@nodegrad/autograd';
import '@nodegrad/native';
import { allReduce, barrier, DistributedDataParallel, initProcessGroup } from '@nodegrad/distributed';
import { CrossEntropyLoss, resnet18, SGD, type Module } from '@nodegrad/nn';

const pg = initProcessGroup({ backend: 'mpi' });
const out: Record<string, unknown> = { impl: 'nodegrad', ranks: pg.worldSize };

function median(f: () => void, runs = 10, warm = 3): number {
  const t: number[] = [];
  for (let k = 0; k < warm + runs; k++) {
    barrier();
    const t0 = performance.now();
    f();
    if (k >= warm) t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return (t[(runs >> 1) - 1]! + t[runs >> 1]!) / 2;
}

const SIZES: [string, number][] = [['bucket 25 MiB', 6553600], ['resnet18', 11689512], ['resnet50', 25557032]];
for (const [name, n] of SIZES) {
  const g = zeros([n], { device: 'cpu' }).add(1);
  out[name] = +median(() => { allReduce(g, 'sum'); }).toFixed(3);
  g.dispose();
}

const B = 32;
const loss = new CrossEntropyLoss();
const x = randn([B, 1, 28, 28], { device: 'cpu' });
const y = tensor(Array.from({ length: B }, (_, i) => i % 10), { device: 'cpu', dtype: 'int64' });
const make = () => resnet18({ numClasses: 10, inChannels: 1, smallImageStem: true }).to('cpu');

/** Times one training step of `net` and, separately, its backward alone (forward untimed). */
function steps(net: Module, opt: SGD): { step: number; backward: number } {
  const step = median(() => tidy(() => { opt.zeroGrad(); loss.call(net.call(x) as Tensor, y).backward(); opt.step(); }), 8, 2);
  const bwd: number[] = [];
  for (let k = 0; k < 10; k++) {
    tidy(() => {
      opt.zeroGrad();
      const l = loss.call(net.call(x) as Tensor, y);
      barrier();
      const t0 = performance.now();
      l.backward();
      if (k >= 2) bwd.push(performance.now() - t0);
    });
  }
  bwd.sort((a, b) => a - b);
  return { step: +step.toFixed(1), backward: +((bwd[3]! + bwd[4]!) / 2).toFixed(1) };
}

const ddp = new DistributedDataParallel(make());
const withComm = steps(ddp, new SGD(ddp.parameters(), { lr: 0.01, momentum: 0.9 }));
const noComm = ddp.noSync(() => steps(ddp, new SGD(ddp.parameters(), { lr: 0.01, momentum: 0.9 })));
// One process on the same batch, rank 1 waiting: the time a rank would take without DDP.
let single: number | null = null;
if (pg.rank === 0) {
  const m = make();
  const opt = new SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
  const t: number[] = [];
  for (let k = 0; k < 10; k++) {
    const t0 = performance.now();
    tidy(() => { opt.zeroGrad(); loss.call(m.call(x) as Tensor, y).backward(); opt.step(); });
    if (k >= 2) t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  single = +((t[3]! + t[4]!) / 2).toFixed(1);
}
barrier();
if (pg.rank === 0) {
  Object.assign(out, {
    'ddp step ms': withComm.step, 'single-process step ms (same batch per rank)': single,
    'ddp backward ms': withComm.backward, 'backward without communication ms': noComm.backward,
  });
  console.log(JSON.stringify(out));
}
