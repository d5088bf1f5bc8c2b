/**
 * Where a nodegrad 'cpu' step spends its time: every kernel call of the backend timed by name,
 * the rest of the step counted as "outside kernels" (JS op layer, tape, allocation bookkeeping).
 *
 *   npx tsx bench/profile.ts [A|B|C18|C50] [--steps 5] [--bf16] [--shapes]
 *
 * --bf16 profiles the bfloat16 twin the bench runs: training under autocast, inference with the
 * fused model and input cast to bfloat16. --shapes times each kernel per shape of its tensor
 * arguments (which convolution or batch norm the time goes to).
 */
import { autocast, crossEntropy, noGrad, randn, tensor, tidy, type Tensor } from '@nodegrad/autograd';
import { setNumThreads } from '@nodegrad/native';
import { SGD, fuseForInference, fuseForTraining, resnet18, resnet50 } from '@nodegrad/nn';
import { perStep, timeKernels } from './kernel_timer.js';

const which = (process.argv[2] ?? 'A').toUpperCase();
const si = process.argv.indexOf('--steps');
const steps = si >= 0 ? Number(process.argv[si + 1]) : 5;
const bf16 = process.argv.includes('--bf16');
const byShape = process.argv.includes('--shapes');
setNumThreads(Number(process.env.OMP_NUM_THREADS ?? 2));

const spec = {
  A: { arch: resnet18, batch: 32, size: 32, classes: 10, small: true, train: true },
  B: { arch: resnet50, batch: 8, size: 224, classes: 1000, small: false, train: true },
  C18: { arch: resnet18, batch: 8, size: 224, classes: 1000, small: false, train: false },
  C50: { arch: resnet50, batch: 8, size: 224, classes: 1000, small: false, train: false },
}[which];
if (!spec) throw new Error(`profile: unknown case ${which}; use A, B, C18 or C50`);

const timer = timeKernels('cpu', { byShape });

const model = spec.arch({ numClasses: spec.classes, smallImageStem: spec.small }).to('cpu');
const x = randn([spec.batch, 3, spec.size, spec.size], { device: 'cpu' });
const y = tensor(Array.from({ length: spec.batch }, (_, i) => i % spec.classes), { dtype: 'int64', device: 'cpu' });
const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
// Inference runs the fused copy, as bench/resnet.ts's C cases do.
const fused = spec.train ? null : fuseForInference(model);
if (fused && bf16) fused.to('bfloat16');
const input = fused && bf16 ? noGrad(() => x.to('bfloat16')) : x;
// Training runs fuseForTraining's twin, as bench/nodegrad_cases.ts does.
const net = spec.train ? fuseForTraining(model).train() : model;
const loss = () => crossEntropy(net.call(x), y);
const step = fused
  ? () => noGrad(() => tidy(() => { fused.call(input); }))
  : () => tidy(() => {
    opt.zeroGrad();
    (bf16 ? autocast({ device: 'cpu', dtype: 'bfloat16' }, () => loss() as Tensor) : loss()).backward();
    opt.step();
  });

for (let i = 0; i < 2; i++) step(); // warm-up: primitives, pool
timer.recording = true;
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const total = (performance.now() - t0) / steps;
timer.recording = false;

const rows = perStep(timer, steps);
const inKernels = rows.reduce((s, r) => s + r.ms, 0);
console.log(`case ${which}${bf16 ? ' bf16' : ''}: ${total.toFixed(1)} ms per step (${steps} steps after 2 warm-up)`);
for (const r of rows) {
  console.log(`${r.name.padEnd(byShape ? 72 : 28)} ${r.ms.toFixed(1).padStart(8)} ms ${(100 * r.ms / total).toFixed(1).padStart(5)}%  ${r.calls} calls`);
}
console.log(`${'outside kernels'.padEnd(28)} ${(total - inKernels).toFixed(1).padStart(8)} ms ${(100 * (total - inKernels) / total).toFixed(1).padStart(5)}%`);
