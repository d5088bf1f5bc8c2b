// Run by ddp.test.ts under `mpirun -np 2`: which backward DistributedDataParallel reduces, and
// findUnusedParameters, as PyTorch's reducer decides them. The forward decides whether its backward
// reduces (a backward inside noSync after a forward outside it reduces); a parameter counts as used
// when it got a gradient on some rank since the last reduction, a noSync backward's included; the
// output's tensors are found inside objects and Maps; buckets of parameters of two dtypes; eval
// mode; when rank 0's buffers are broadcast, and broadcastBuffers: false. Each DDP gradient is printed beside the average of every rank's own gradient, computed
// here on a copy of the model with each rank's input (the two must agree to float32 rounding).
import { fromTypedArray, noGrad, tensor, type Tensor } from '@nodegrad/autograd';
import { DistributedDataParallel, initProcessGroup } from '@nodegrad/distributed';
import { BatchNorm2d, Linear, Module } from '@nodegrad/nn';
import { report } from './report.js';

const pg = initProcessGroup({ backend: 'mpi' });
const r = pg.rank;
const out: Record<string, unknown> = { rank: r };
const grads = (m: Module) => m.parameters().map((p) => (p.grad ? p.grad.toArray() : null));
const D = 'ts'; // float64 beside float32 (the 'cpu' backend has no float64 matmul)
const input = (rank: number) => tensor([[1, 2 + rank]], { device: D });

/** The DDP gradients of one step of `lossOf` beside the average over ranks of each rank's own, on a copy. */
function againstAverage(make: () => Module, lossOf: (m: Module, x: Tensor) => Tensor, opts = {}) {
  const ddp = new DistributedDataParallel(make(), { findUnusedParameters: true, ...opts });
  lossOf(ddp, input(r)).backward();
  const copy = make();
  copy.loadStateDict(ddp.module.stateDict()); // rank 0's weights, as DDP broadcast them
  lossOf(copy, input(0)).add(lossOf(copy, input(1))).div(2).backward();
  return { ddp: grads(ddp.module), average: grads(copy) };
}

abstract class Chain extends Module {
  a = this.registerModule('a', new Linear(2, 2, { device: D }));
  b = this.registerModule('b', new Linear(2, 1, { device: D }));
}
// The output's tensor inside a plain object, and inside a Map.
class InObject extends Chain {
  override forward(x: Tensor) { return { y: this.b.call(this.a.call(x)) } as unknown as Tensor; }
}
class InMap extends Chain {
  override forward(x: Tensor) { return new Map([['y', this.b.call(this.a.call(x))]]) as unknown as Tensor; }
}
const ySum = (m: Module, x: Tensor) => {
  const o = m.call(x) as unknown as { y: Tensor } | Map<string, Tensor>;
  return (o instanceof Map ? o.get('y')! : o.y).sum();
};
out.inObject = againstAverage(() => new InObject(), ySum);
out.inMap = againstAverage(() => new InMap(), ySum);
// Parameters of two dtypes (float64 a registered first, float32 b): a bucket per dtype, each with its flags.
class TwoDTypes extends Module {
  a = this.registerModule('a', new Linear(2, 1, { dtype: 'float64', device: D }));
  b = this.registerModule('b', new Linear(2, 2, { device: D }));
  override forward(x: Tensor) { return this.a.call(this.b.call(x).to('float64')); }
}
out.twoDTypes = againstAverage(() => new TwoDTypes(), (m, x) => m.call(x).sum());

// Heads a and b; `useB` picks whether b takes part.
class Heads extends Module {
  a = this.registerModule('a', new Linear(2, 1, { device: D }));
  b = this.registerModule('b', new Linear(2, 1, { device: D }));
  useB = false;
  override forward(x: Tensor) { return this.useB ? this.a.call(x).add(this.b.call(x)) : this.a.call(x); }
}
const x = tensor([[1, 2]], { device: D });
// b used by rank 0 in a noSync micro-batch, by nobody in the synced one: used, so averaged.
const acc = new DistributedDataParallel(new Heads(), { findUnusedParameters: true });
acc.module.useB = r === 0;
acc.noSync(() => acc.call(x).sum().backward());
acc.module.useB = false;
acc.call(x).sum().backward();
out.noSyncUsed = grads(acc.module);
// Eval mode: the forward still finds the unused head, for two steps.
const ev = new DistributedDataParallel(new Heads(), { findUnusedParameters: true });
ev.eval();
for (let i = 0; i < 2; i++) ev.call(x).sum().backward();
out.evalUnused = grads(ev.module);
// The last forward before a backward decides what is unused (PyTorch's prepare_for_backward): an
// eval forward with gradients on that reaches b and has no backward, then a training step using a
// alone, twice. rank r's x = [r + 1, r + 1].
const last = new DistributedDataParallel(new Heads(), { findUnusedParameters: true });
const xr = tensor([[r + 1, r + 1]], { device: D });
for (let i = 0; i < 2; i++) {
  last.eval();
  last.module.useB = true;
  last.call(xr);
  last.train();
  last.module.useB = false;
  last.call(xr).sum().backward();
}
out.lastForward = grads(last.module);
// Two forwards, one backward through both: b, unused by the second, gets a gradient from the first
// after its zeros were counted. PyTorch refuses this ("Expected to mark a variable ready only once").
const two = new DistributedDataParallel(new Heads(), { findUnusedParameters: true });
two.module.useB = true;
const first = two.call(x);
two.module.useB = false;
try {
  first.add(two.call(x)).sum().backward();
  out.twoForwards = 'no error';
} catch (e) {
  out.twoForwards = (e as Error).message;
}
// A forward outside noSync, its backward inside: reduced, as PyTorch's forward decides.
const fo = new DistributedDataParallel(new Linear(2, 1, { device: D }));
const loss = fo.call(tensor([[r + 1, 1]], { device: D })).sum();
fo.noSync(() => loss.backward());
out.forwardDecides = grads(fo.module);

// When rank 0's buffers are broadcast (PyTorch's schedule): a BatchNorm whose running mean each
// rank moves with its own batches; the running mean is printed after each forward, with the batch
// means, so the test can tell which forwards started from rank 0's statistics.
const bnNet = () => new BatchNorm2d(2, { dtype: 'float64', device: D });
const batch = (step: number) => fromTypedArray(Float64Array.from([1, 2, 3, 5], (v, i) => v * (r + 1) + step * (i + 1)), [2, 2, 1, 1],
  { dtype: 'float64', device: D });
const bn = new DistributedDataParallel(bnNet());
const running = () => (bn.module as BatchNorm2d).running_mean!.toArray() as number[];
const mean = (step: number) => { const b = batch(step).toArray() as number[][][][]; return [0, 1].map((c) => (b[0]![c]![0]![0]! + b[1]![c]![0]![0]!) / 2); };
const schedule: { step: string; running: number[]; batchMean: number[] }[] = [];
const forward = (step: number, name: string, run: () => void) => { run(); schedule.push({ step: name, running: running(), batchMean: mean(step) }); };
forward(0, 'train', () => bn.call(batch(0)).sum().backward());
forward(1, 'eval, noGrad', () => { bn.eval(); noGrad(() => bn.call(batch(1))); bn.train(); });
forward(2, 'train in noSync', () => bn.noSync(() => bn.call(batch(2)).sum().backward()));
forward(3, 'train', () => bn.call(batch(3)).sum().backward());
forward(4, 'train', () => bn.call(batch(4)).sum().backward());
out.bufferSchedule = schedule;
// broadcastBuffers: false leaves each rank's statistics, at construction too; parameters are broadcast.
const own = bnNet();
noGrad(() => { own.running_mean!.fill_(r + 1); own.weight!.fill_(r + 1); });
new DistributedDataParallel(own, { broadcastBuffers: false });
out.noBufferBroadcast = [own.running_mean!.toArray(), own.weight!.toArray()];
report(out);
