/**
 * Milliseconds of one optimizer step over every resnet18 parameter (11.7M, float32) on a device:
 * SGD with momentum 0.9 and weight decay, and Adam. The median of 10 timed steps after two
 * untimed ones (the first creates the state). Run with the tests' aliases so the packages load
 * from source:
 *   npx vite-node -c vitest.config.ts bench/optim_step.ts [device]
 */
import { noGrad, randn, tidy, type Tensor } from '@nodegrad/autograd';
import '@nodegrad/native';
import { Adam, resnet18, SGD, type Optimizer, type ParamGroup } from '@nodegrad/nn';

const device = process.argv[2] ?? 'cpu';
const params: Tensor[] = noGrad(() => resnet18().to(device).parameters());
for (const p of params) p.grad = randn([...p.shape], { device, dtype: p.dtype });
const count = params.reduce((n, p) => n + p.size, 0);

function medianMs(opt: Optimizer<ParamGroup>, runs = 10): number {
  for (let i = 0; i < 2; i++) tidy(() => opt.step());
  const ts: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    tidy(() => opt.step());
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return (ts[4]! + ts[5]!) / 2;
}

console.log(`resnet18: ${params.length} tensors, ${count} parameters, ${device}`);
console.log(`SGD (momentum 0.9, wd 1e-4): ${medianMs(new SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 })).toFixed(1)} ms`);
console.log(`Adam: ${medianMs(new Adam(params, { lr: 1e-3 })).toFixed(1)} ms`);
