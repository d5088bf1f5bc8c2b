/**
 * nodegrad's half of the GPU kit's side-by-side timing (bench/gpu_resnet50.py is PyTorch's): a
 * ResNet-50 training step (forward, cross-entropy, backward, SGD with momentum) at batch 64,
 * 224 x 224, float32, on cuda:0. Warm-up steps first, then each timed step ends with a
 * synchronize; prints one JSON line with the median.
 *   node gpu_bench.mjs [--steps N] [--warmup N] [--batch N] [--cudnn-benchmark]
 */
import { fromTypedArray, randn, tidy, type Tensor } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native';
import { CrossEntropyLoss, SGD, resnet50 } from '@nodegrad/nn';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const steps = arg('steps', 20), warmup = arg('warmup', 5), batch = arg('batch', 64);
const benchmark = process.argv.includes('--cudnn-benchmark');
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
const step = () => tidy(() => {
  const loss = criterion.call(model.call(x), y) as Tensor;
  optimizer.zeroGrad();
  loss.backward();
  optimizer.step();
});
for (let i = 0; i < warmup; i++) step();
cuda.synchronize();
const ms: number[] = [];
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  step();
  cuda.synchronize();
  ms.push(performance.now() - t0);
}
ms.sort((a, b) => a - b);
const median = ms[ms.length >> 1]!;
const mem = cuda.memoryStats();
console.log(JSON.stringify({
  impl: 'nodegrad', layout: 'nchw', batch, cudnnBenchmark: benchmark, steps, medianMs: median, minMs: ms[0],
  imgPerS: (batch * 1000) / median, peakAllocatedMiB: mem.peakAllocated / 2 ** 20, reservedMiB: mem.reserved / 2 ** 20,
}));
