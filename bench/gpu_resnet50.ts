/**
 * nodegrad's half of the GPU kit's side-by-side timing (bench/gpu_resnet50.py is PyTorch's): a
 * ResNet-50 training step (forward, cross-entropy, backward, SGD with momentum) at batch 64,
 * 224 x 224, on cuda:0: float32, or with --amp fp16 (autocast to float16 and a GradScaler) or
 * --amp bf16 (autocast to bfloat16), PyTorch's AMP recipe. As the 'cpu' bench (bench/cases.ts), the
 * step runs fuseForTraining's twin: each batch norm with the ReLU (and a block's residual add)
 * after it in one pass. Warm-up steps first, then each timed step ends with a synchronize; prints
 * one JSON line with the median, and the median time the host took to queue forward and backward
 * (forwardBackwardQueuedMs). --profile times 3 steps kernel by kernel instead, each call
 * synchronized (bench/kernel_timer.ts), and prints where a step's time goes.
 *   node gpu_bench.mjs [--steps N] [--warmup N] [--batch N] [--cudnn-benchmark] [--amp fp16|bf16] [--profile]
 */
import { autocast, fromTypedArray, randn, tidy, type Tensor } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native';
import { CrossEntropyLoss, GradScaler, SGD, fuseForTraining, resnet50 } from '@nodegrad/nn';
import { perStep, timeKernels } from './kernel_timer.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const steps = arg('steps', 20), warmup = arg('warmup', 5), batch = arg('batch', 64);
const benchmark = process.argv.includes('--cudnn-benchmark');
const ai = process.argv.indexOf('--amp');
const amp = ai >= 0 ? process.argv[ai + 1] : null;
if (amp !== null && amp !== 'fp16' && amp !== 'bf16') throw new Error(`--amp takes fp16 or bf16, got ${amp}`);
if (!cuda.isAvailable()) {
  console.log(JSON.stringify({ impl: 'nodegrad', error: `cuda unavailable: ${cuda.reason()}` }));
  process.exit(0);
}
cuda.setCudnnBenchmark(benchmark);
const device = 'cuda:0';
const model = resnet50({ numClasses: 1000 }).to(device);
model.train();
const x = randn([batch, 3, 224, 224], { device });
const labels = Float64Array.from({ length: batch }, (_, i) => (i * 37) % 1000);
const y = fromTypedArray(labels, [batch], { dtype: 'int64', device });
const criterion = new CrossEntropyLoss();
const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const scaler = new GradScaler({ enabled: amp === 'fp16' });
const net = fuseForTraining(model).train();
const forward = () => criterion.call(net.call(x), y) as Tensor;
// When backward has been queued: what the host took to queue forward and backward, before the
// scaler's one read waits for the GPU. Near the step's time, the step is bound by the host.
let queuedAt = 0;
const step = () => tidy(() => {
  const loss = amp ? autocast({ device: 'cuda', dtype: amp === 'fp16' ? 'float16' : 'bfloat16' }, forward) : forward();
  optimizer.zeroGrad();
  scaler.scale(loss).backward();
  queuedAt = performance.now();
  scaler.step(optimizer);
  scaler.update();
});
for (let i = 0; i < warmup; i++) step();
cuda.synchronize();
if (process.argv.includes('--profile')) {
  const timer = timeKernels(device, { sync: () => cuda.synchronize() });
  const n = 3;
  timer.recording = true;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) step();
  cuda.synchronize();
  const stepMs = (performance.now() - t0) / n;
  timer.recording = false;
  const kernels = perStep(timer, n);
  const inKernels = kernels.reduce((sum, k) => sum + k.ms, 0);
  console.log(JSON.stringify({
    impl: 'nodegrad', profile: true, layout: 'nchw', precision: amp ?? 'fp32', batch, stepMs, outsideKernelsMs: stepMs - inKernels,
    kernels: kernels.map((k) => ({ name: k.name, ms: Number(k.ms.toFixed(3)), calls: k.calls })),
  }));
  process.exit(0);
}
const ms: number[] = [], queued: number[] = [];
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  step();
  cuda.synchronize();
  ms.push(performance.now() - t0);
  queued.push(queuedAt - t0);
}
const mid = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
ms.sort((a, b) => a - b);
const median = ms[ms.length >> 1]!;
const mem = cuda.memoryStats();
console.log(JSON.stringify({
  impl: 'nodegrad', layout: 'nchw', precision: amp ?? 'fp32', batch, cudnnBenchmark: benchmark, steps, medianMs: median, minMs: ms[0],
  forwardBackwardQueuedMs: mid(queued),
  imgPerS: (batch * 1000) / median, peakAllocatedMiB: mem.peakAllocated / 2 ** 20, reservedMiB: mem.reserved / 2 ** 20,
}));
