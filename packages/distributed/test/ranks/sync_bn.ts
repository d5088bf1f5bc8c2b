// Run by sync_batch_norm.test.ts under `mpirun -np 2`: SyncBatchNorm on each rank's part of one
// global batch against BatchNorm2d on the whole batch, computed here on every rank. Prints, per
// case, the largest |difference| of each quantity (outputs and input gradients over this rank's
// rows; weight and bias gradients after averaging over ranks as DDP does; running statistics and
// num_batches_tracked after two training steps) and the largest |value|, so the test can tell a
// match from two zeros.
import { allReduce, initProcessGroup } from '@nodegrad/distributed';
import { convertSyncBatchNorm, SyncBatchNorm } from '@nodegrad/distributed';
import { fromTypedArray, narrow, noGrad, type Tensor } from '@nodegrad/autograd';
import { registerCudaEmulation } from '@nodegrad/native';
import { BatchNorm2d, Sequential } from '@nodegrad/nn';
import { report } from './report.js';

const pg = initProcessGroup({ backend: 'mpi' });
const W = pg.worldSize;

let seed = 11;
const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32 * 2 - 1; };

interface Case {
  name: string; rows: number[]; shape: number[]; device: string; dtype: 'float32' | 'float64'; momentum: number | null;
  /** The input's and its gradient's dtype when not the module's (autocast's bfloat16 beside float32 parameters). */
  input?: 'bfloat16';
}
const HOST_CASES: Case[] = [
  { name: 'batches 3 and 5', rows: [3, 5], shape: [3, 4, 5], device: 'ts', dtype: 'float64', momentum: 0.1 },
  { name: 'an empty rank', rows: [0, 6], shape: [3, 4, 5], device: 'ts', dtype: 'float64', momentum: 0.1 },
  { name: 'one value per channel per rank', rows: [1, 1], shape: [2, 1, 1], device: 'ts', dtype: 'float64', momentum: 0.3 },
  { name: 'cumulative average (momentum null)', rows: [2, 3], shape: [3, 2, 2], device: 'ts', dtype: 'float64', momentum: null },
  { name: "float32 on 'cpu'", rows: [3, 5], shape: [3, 4, 5], device: 'cpu', dtype: 'float32', momentum: 0.1 },
  { name: "bfloat16 input, float32 parameters on 'cpu'", rows: [3, 5], shape: [3, 4, 5], device: 'cpu', dtype: 'float32',
    momentum: 0.1, input: 'bfloat16' },
];
// NODEGRAD_RANK_DEVICES: float32 cases on each device named instead ('cuda-emu'; 'cuda:0' in the
// GPU kit, both ranks on one GPU), bfloat16 input where the device holds it.
const deviceCases = (device: string): Case[] => [
  { name: `float32 on '${device}'`, rows: [3, 5], shape: [3, 4, 5], device, dtype: 'float32', momentum: 0.1 },
  { name: `float32 on '${device}', an empty rank`, rows: [0, 6], shape: [3, 4, 5], device, dtype: 'float32', momentum: 0.1 },
  ...(device === 'cuda-emu' ? [] : [{ name: `bfloat16 input, float32 parameters on '${device}'`, rows: [3, 5], shape: [3, 4, 5],
    device, dtype: 'float32', momentum: 0.1, input: 'bfloat16' } as Case]),
];
const devices = process.env.NODEGRAD_RANK_DEVICES?.split(',');
if (devices?.includes('cuda-emu')) registerCudaEmulation();
const CASES = devices ? devices.flatMap(deviceCases) : HOST_CASES;

const maxAbs = (t: Tensor) => Array.from(t.toTypedArray()).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const diff = (a: Tensor, b: Tensor) => {
  if (a.shape.join() !== b.shape.join()) return Infinity;
  const x = a.toTypedArray(), y = b.toTypedArray();
  return Array.from(x).reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
};

const out: Record<string, unknown> = { rank: pg.rank };
for (const c of CASES) {
  const N = c.rows.reduce((a, b) => a + b, 0);
  const C = c.shape[0]!;
  const per = c.shape.reduce((a, b) => a * b, 1);
  const opts = { device: c.device, dtype: c.dtype };
  const make = (n: number, scale = 1, shift = 0) => Float64Array.from({ length: n }, () => rand() * scale + shift);
  const w0 = make(C, 0.5, 1), b0 = make(C, 0.5);
  const steps = [0, 1].map(() => ({ x: make(N * per, 2, 0.5), g: make(N * per) }));
  const start = c.rows.slice(0, pg.rank).reduce((a, b) => a + b, 0), mine = c.rows[pg.rank]!;
  const bnRef = new BatchNorm2d(C, { ...opts, momentum: c.momentum });
  // Converted inside a container, as a model's layers are.
  const sync = convertSyncBatchNorm(new Sequential(new BatchNorm2d(C, { ...opts, momentum: c.momentum }))).children()[0] as SyncBatchNorm;
  for (const m of [bnRef, sync]) noGrad(() => { m.weight!.copy_(fromTypedArray(w0, [C], opts)); m.bias!.copy_(fromTypedArray(b0, [C], opts)); });
  const worst: Record<string, number> = {}, scale: Record<string, number> = {};
  const note = (k: string, a: Tensor, ref: Tensor) => {
    worst[k] = Math.max(worst[k] ?? 0, diff(a, ref));
    scale[k] = Math.max(scale[k] ?? 0, maxAbs(ref));
  };
  const input = (data: Float64Array, shape: number[]) =>
    noGrad(() => fromTypedArray(data, shape, opts).to(c.input ?? c.dtype)).requiresGrad_();
  for (const { x, g } of steps) {
    const X = input(x, [N, ...c.shape]);
    const G = input(g, [N, ...c.shape]).detach();
    const yRef = bnRef.call(X);
    yRef.mul(G).sum().backward();
    const xr = input(x.slice(start * per, (start + mine) * per), [mine, ...c.shape]);
    const y = sync.call(xr);
    // W times this rank's part of the loss: DDP's average over ranks then gives the whole loss's gradient.
    y.mul(narrow(G, 0, start, mine)).sum().mul(W).backward();
    for (const p of [sync.weight!, sync.bias!]) allReduce(p.grad!, 'avg');
    note('output', y, narrow(yRef, 0, start, mine));
    note('input grad', xr.grad!.div(W), narrow(X.grad!, 0, start, mine));
    note('weight grad', sync.weight!.grad!, bnRef.weight!.grad!);
    note('bias grad', sync.bias!.grad!, bnRef.bias!.grad!);
    for (const m of [bnRef, sync]) m.zeroGrad();
  }
  note('running_mean', sync.running_mean!, bnRef.running_mean!);
  note('running_var', sync.running_var!, bnRef.running_var!);
  out[c.name] = { worst, scale, numBatchesTracked: [sync.num_batches_tracked!.item(), bnRef.num_batches_tracked!.item()] };
}
// Eval uses the running statistics, without communication: rank 1 alone evaluates.
const solo = new SyncBatchNorm(2, { device: 'ts', dtype: 'float64' }).eval();
if (pg.rank === 1 && !devices) out.eval = Array.from(solo.call(fromTypedArray(Float64Array.from([1, 2, 3, 4]), [2, 2], { device: 'ts', dtype: 'float64' })).toTypedArray());
report(out);
