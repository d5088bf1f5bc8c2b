/**
 * nodegrad's side of the overhead cases (bench/overhead_specs.ts), driven by bench/overhead.ts over
 * JSON lines with the protocol of bench/nodegrad_cases.ts: {"cmd":"setup","case":OverheadSpec},
 * {"cmd":"run","iters":k} -> per-iteration seconds, {"cmd":"profile","iters":k} -> where k
 * iterations spend their time (bench/overhead_profile.ts), {"cmd":"exit"}. One thread.
 *   node --import tsx bench/overhead_cases.ts
 */
import { readFileSync } from 'node:fs';
import { backends, fromTypedArray, manualSeed, randn, tidy, type Tensor } from '@nodegrad/autograd';
import { gradcheck } from '@nodegrad/autograd/testing';
import { setNumThreads } from '@nodegrad/native';
import { Adam, CrossEntropyLoss, Linear, ReLU, Sequential } from '@nodegrad/nn';
import { profileIterations } from './overhead_profile.js';
import type { OverheadSpec } from './overhead_specs.js';
import { serve, timeIterations } from './worker_serve.js';

let iteration: (() => void) | null = null;

function chain(spec: OverheadSpec): () => void {
  return () => tidy(() => {
    let y: Tensor = randn([16], { requiresGrad: true, device: spec.device });
    for (let i = 0; i < spec.ops; i += 2) y = y.mul(1.01).add(0.5);
    y.sum().backward();
  });
}

function mlp(spec: OverheadSpec): () => void {
  const model = new Sequential(new Linear(784, 128), new ReLU(), new Linear(128, 10)).to(spec.device);
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const criterion = new CrossEntropyLoss();
  const x = randn([64, 784], { device: spec.device });
  const y = fromTypedArray(Float64Array.from({ length: 64 }, (_, i) => i % 10), [64], { dtype: 'int64', device: spec.device });
  return () => tidy(() => {
    optimizer.zeroGrad();
    criterion.call(model.call(x), y).backward();
    optimizer.step();
  });
}

function gradcheckCase(spec: OverheadSpec): () => void {
  const a = randn([4, 5], { dtype: 'float64', requiresGrad: true, device: spec.device });
  const b = randn([5, 3], { dtype: 'float64', requiresGrad: true, device: spec.device });
  const f = (p: Tensor, q: Tensor) => p.matmul(q).tanh();
  return () => tidy(() => {
    if (gradcheck(f, [a, b]) !== true) throw new Error('gradcheck: the case itself fails');
  });
}

function setup(spec: OverheadSpec): void {
  manualSeed(0);
  iteration = spec.kind === 'chain' ? chain(spec) : spec.kind === 'mlp' ? mlp(spec) : gradcheckCase(spec);
}

function hello(): object {
  const cpu = backends().find((b) => b.name === 'cpu');
  if (!cpu?.available) return { ready: false, error: `the native 'cpu' backend is unavailable: ${cpu?.reason ?? 'not registered'}` };
  setNumThreads(1);
  const pkg = JSON.parse(readFileSync(new URL('../packages/autograd/package.json', import.meta.url), 'utf8')) as { version: string };
  return { ready: true, version: pkg.version, node: process.version };
}

serve(hello() as { ready: boolean }, (msg: { cmd: string; case?: OverheadSpec; iters?: number }) => {
  if (msg.cmd === 'setup') { setup(msg.case!); return { ok: true }; }
  if (msg.cmd === 'run') return { ok: true, seconds: timeIterations(iteration, msg.iters!) };
  if (msg.cmd === 'profile') return profileIterations(iteration!, msg.iters!, '/native/lib/backend.ts').then((profile) => ({ ok: true, profile }));
  throw new Error(`unknown command ${JSON.stringify(msg.cmd)}`);
});
