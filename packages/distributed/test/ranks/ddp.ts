// Run by ddp.test.ts under `mpirun -np 2`: five SGD-momentum steps of a small ResNet with
// SyncBatchNorm under DistributedDataParallel, batch B per rank, against one process (computed
// here, on every rank) with BatchNorm2d and batch 2B; rank 1 starts from other weights, which
// DDP's broadcast must replace with rank 0's. Also with noSync over 2 micro-batches, with two
// forwards before one backward, and the error for a parameter left without a gradient; a second
// backward without a forward. Prints the largest |difference| of the parameters and buffers after
// the steps.
import { fromTypedArray, manualSeed, narrow, tensor, type Tensor } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native';
import { convertSyncBatchNorm, DistributedDataParallel, initProcessGroup } from '@nodegrad/distributed';
import { CrossEntropyLoss, Linear, Module, resnet18, SGD } from '@nodegrad/nn';
import { report } from './report.js';

const pg = initProcessGroup({ backend: 'mpi' });
// NODEGRAD_RANK_DEVICES: the float32 runs on each device named instead of the host cases ('cuda:0'
// shared by both ranks in the GPU kit, its gradients crossing the 'mpi' group through host copies),
// at batch 16 per rank: float32 over five momentum steps is only as close as batch norm is well
// conditioned, and at batch 4 its 1x1 layer4 normalizes 4 values (noSync in float32 then ends 0.2
// apart on 'cpu', where batch 16 ends 1e-5 apart).
const devices = process.env.NODEGRAD_RANK_DEVICES?.split(',');
const B = devices ? 16 : 4, STEPS = 5, CLASSES = 3;

let seed = 5;
const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32; };
const batches = Array.from({ length: STEPS }, () => ({
  x: Float64Array.from({ length: 2 * B * 8 * 8 }, () => rand() * 2 - 1),
  y: Array.from({ length: 2 * B }, () => Math.floor(rand() * CLASSES)),
}));

function model(device: string, dtype: 'float32' | 'float64', s: number): Module {
  manualSeed(s);
  const m = resnet18({ numClasses: CLASSES, inChannels: 1, smallImageStem: true, widths: [4, 4, 8, 8] });
  return m.to(device).to(dtype);
}

const maxDiff = (a: Tensor[], b: Tensor[]) => a.reduce((m, t, i) => {
  const x = t.toTypedArray(), y = b[i]!.toTypedArray();
  return Array.from(x).reduce((mm, v, k) => Math.max(mm, Math.abs(v - y[k]!)), m);
}, 0);

/** `rows` rows [start, start + n) of step k's batch, as (input, target). */
function data(k: number, start: number, n: number, device: string, dtype: 'float32' | 'float64'): [Tensor, Tensor] {
  const x = fromTypedArray(batches[k]!.x.slice(start * 64, (start + n) * 64), [n, 1, 8, 8], { device, dtype });
  return [x, tensor(batches[k]!.y.slice(start, start + n), { device, dtype: 'int64' })];
}

/**
 * `micro` micro-batches per step, the first ones under noSync; `together`: instead, their
 * forwards all run before one backward of the summed loss (buffers are broadcast before each).
 */
function run(device: string, dtype: 'float32' | 'float64', micro: number, together = false) {
  const loss = new CrossEntropyLoss();
  // The reference: one process, BatchNorm2d, the micro-batches of both ranks together.
  const ref = model(device, dtype, 1);
  const refOpt = new SGD(ref.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
  // DDP: rank 1 initializes differently; the broadcast at construction makes it rank 0's model.
  const ddp = new DistributedDataParallel(convertSyncBatchNorm(model(device, dtype, 1 + pg.rank)), { bucketCapMB: 0.002 });
  const opt = new SGD(ddp.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
  const m = B / micro;
  for (let k = 0; k < STEPS; k++) {
    refOpt.zeroGrad();
    opt.zeroGrad();
    let refLoss: Tensor | null = null, ddpLoss: Tensor | null = null;
    for (let j = 0; j < micro; j++) {
      // Reference micro-batch j: rank 0's rows of it, then rank 1's.
      const parts = [0, 1].map((r) => data(k, r * B + j * m, m, device, dtype));
      const [xr, yr] = [catRows(parts.map((p) => p[0])), catRows(parts.map((p) => p[1]))];
      const [xm, ym] = parts[pg.rank]!;
      const lr = loss.call(ref.call(xr), yr).div(micro);
      const ddpLossOf = () => loss.call(ddp.call(xm), ym).div(micro);
      if (together) {
        const ld = ddpLossOf();
        refLoss = refLoss ? refLoss.add(lr) : lr;
        ddpLoss = ddpLoss ? ddpLoss.add(ld) : ld;
        continue;
      }
      lr.backward();
      // The micro-batches before the last: forward and backward under noSync (the forward decides).
      if (j < micro - 1) ddp.noSync(() => ddpLossOf().backward());
      else ddpLossOf().backward();
    }
    refLoss?.backward();
    ddpLoss?.backward();
    refOpt.step();
    opt.step();
  }
  return {
    params: maxDiff(ddp.module.parameters(), ref.parameters()),
    buffers: maxDiff(ddp.module.buffers(), ref.buffers()),
    scale: maxDiff(ref.parameters(), ref.parameters().map((p) => p.mul(0))),
  };
}

function catRows(ts: Tensor[]): Tensor {
  return ts[0]!.ndim === 1 ? tensor([...ts[0]!.toTypedArray(), ...ts[1]!.toTypedArray()], { device: ts[0]!.device, dtype: ts[0]!.dtype })
    : fromTypedArray(Float64Array.from([...ts[0]!.toTypedArray(), ...ts[1]!.toTypedArray()]),
      [ts[0]!.shape[0]! + ts[1]!.shape[0]!, ...ts[0]!.shape.slice(1)], { device: ts[0]!.device, dtype: ts[0]!.dtype });
}

const out: Record<string, unknown> = { rank: pg.rank };
// Float32 to 1e-5 needs float32 convolutions, not cuDNN's default TF32 (10 bits of mantissa).
if (devices?.some((d) => d.startsWith('cuda:'))) cuda.setAllowTF32({ cudnn: false });
if (devices) {
  for (const device of devices) {
    out[`float32 ${device}`] = run(device, 'float32', 1);
    out[`float32 ${device}, noSync over 2 micro-batches`] = run(device, 'float32', 2);
  }
  report(out);
  process.exit(0);
}
out['float64 ts'] = run('ts', 'float64', 1);
out['float64 ts, noSync over 2 micro-batches'] = run('ts', 'float64', 2);
out['float64 ts, two forwards before one backward'] = run('ts', 'float64', 2, true);
out['float32 cpu'] = run('cpu', 'float32', 1);

// A parameter without a gradient: the next forward says which.
class TwoHeads extends Module {
  a = this.registerModule('a', new Linear(2, 2));
  b = this.registerModule('b', new Linear(2, 2));
  override forward(x: Tensor) { return this.a.call(x); }
}
const twoHeads = new DistributedDataParallel(new TwoHeads());
twoHeads.call(tensor([[1, 2]])).sum().backward();
try { twoHeads.call(tensor([[1, 2]])); out.unused = 'no error'; } catch (e) { out.unused = (e as Error).message; }
// With findUnusedParameters the unused head joins with zeros and every step completes.
const tolerant = new DistributedDataParallel(new TwoHeads(), { findUnusedParameters: true });
for (let i = 0; i < 2; i++) tolerant.call(tensor([[1, 2]])).sum().backward();
const [aWeight, , bWeight] = tolerant.module.parameters();
out.tolerated = { a: narrow(aWeight!.grad!, 0, 0, 1).toArray(), b: bWeight!.grad?.toArray() ?? null };
// Used on rank 0 only: every rank gets the average, rank 1's share counted as zeros.
class Switch extends TwoHeads {
  override forward(x: Tensor) { return pg.rank === 0 ? this.a.call(x).add(this.b.call(x)) : this.a.call(x); }
}
const partial = new DistributedDataParallel(new Switch(), { findUnusedParameters: true });
partial.call(tensor([[1, 2]])).sum().backward();
out.partial = partial.module.parameters()[2]!.grad!.toArray();
// A second backward through the same graph, without a forward: accumulated locally, not reduced
// again, as PyTorch's reducer ignores its hooks.
const twice = new DistributedDataParallel(new Linear(2, 1));
const loss = twice.call(tensor([[pg.rank + 1, 1]])).sum();
loss.backward(undefined, { retainGraph: true });
loss.backward();
out.twice = twice.module.parameters()[0]!.grad!.toArray();
report(out);
