/**
 * nodegrad's side of `npm run bench`: a child process driven by bench/resnet.ts over JSON lines
 * (one request on stdin, one reply on stdout), so its peak RSS is its own and the model stays warm
 * between the timed blocks that alternate with PyTorch's. The protocol is the one of
 * bench/torch_cases.py:
 *   {"cmd":"setup","case":CaseSpec}  -> {"ok":true,"params":n,"macs":forward MACs per image}
 *                                       (optional "weights" (safetensors) and "input" (float32 NCHW
 *                                       bytes): the exported model the inference peers run)
 *   {"cmd":"output"}                 -> {"ok":true,"output":[logits of the set-up inference case]}
 *   {"cmd":"run","iters":k}          -> {"ok":true,"seconds":[per-iteration seconds]}
 *   {"cmd":"gemm","n":n,"reps":r}    -> {"ok":true,"seconds":[per-matmul seconds]}
 *   {"cmd":"info"}                   -> {"ok":true,"maxRssKB":peak resident set so far}
 *                                       (nodegrad adds "native": memoryStats())
 * On start it sends {"ready":true,...versions} or {"ready":false,"error":...}.
 *   node --import tsx bench/nodegrad_cases.ts <threads>
 */
import { readFileSync } from 'node:fs';
import {
  autocast, backends, defaultDevice, fromTypedArray, matmul, noGrad, randn, setDefaultDevice, tidy, type Tensor,
} from '@nodegrad/autograd';
import { describeBuild, emptyCache, getNumThreads, memoryStats, setNumThreads } from '@nodegrad/native';
import {
  Conv2d, CrossEntropyLoss, FusedConv2d, Linear, SGD, fuseForInference, fuseForTraining, loadSafetensors, resnet18, resnet50, skipInit, type Module,
} from '@nodegrad/nn';
import type { CaseSpec } from './cases.js';
import { serve, timeIterations } from './worker_serve.js';

const maxRssKB = () => process.resourceUsage().maxRSS;

/** A built case: one call runs one iteration. */
let iteration: (() => void) | null = null;
/** The inference case's logits, for the check against the peers' outputs. */
let output: (() => number[]) | null = null;

/** A file of little-endian float32 values. */
function readFloat32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Forward MACs per image of `model` on input `x`, counted by hooks on its Conv2d and Linear layers. */
function countMacs(model: Module, x: Tensor): number {
  let macs = 0;
  const removers = [...model.modules()].map((m) => m.registerForwardHook((mod, _inputs, output) => {
    const y = output as Tensor;
    const w = (mod as Conv2d | FusedConv2d | Linear).weight;
    if (mod instanceof Conv2d || mod instanceof FusedConv2d) {
      const [, cinPerGroup, kh, kw] = w.shape as [number, number, number, number];
      macs += y.shape.reduce((a, b) => a * b, 1) * cinPerGroup * kh * kw;
    } else if (mod instanceof Linear) {
      macs += y.shape.reduce((a, b) => a * b, 1) * w.shape[1]!;
    }
  }));
  noGrad(() => tidy(() => { model.eval().call(x); }));
  removers.forEach((remove) => remove());
  return macs / x.shape[0]!;
}

/** `build()` with 'cpu' as the default device, so its tensors are made there rather than moved. */
function onCpu<T>(build: () => T): T {
  const before = defaultDevice();
  setDefaultDevice('cpu');
  try {
    return build();
  } finally {
    setDefaultDevice(before);
  }
}

async function setup(c: CaseSpec, weights?: string, inputFile?: string): Promise<{ params: number; macs: number }> {
  const build = () => (c.arch === 'resnet18' ? resnet18 : resnet50)({ numClasses: c.numClasses, smallImageStem: c.smallImageStem });
  // With the exported weights, as a deployment loads a checkpoint: the model is made on 'cpu'
  // without a random init that the file overwrites, and the file is read chunk by chunk straight
  // onto 'cpu'. A JavaScript copy of either would stay resident until the garbage collector ran,
  // in this case's peak RSS (PyTorch's and ONNX Runtime's copies are freed as they go).
  const model = weights ? onCpu(() => skipInit(build)) : build().to('cpu');
  if (weights) {
    const { tensors } = await loadSafetensors(weights, { device: 'cpu' });
    model.loadStateDict(tensors);
    for (const t of Object.values(tensors)) t.dispose();
  }
  const shape = [c.batch, 3, c.size, c.size];
  const x = inputFile ? fromTypedArray(readFloat32(inputFile), shape, { device: 'cpu' }) : randn(shape, { device: 'cpu' });
  const labels = Float64Array.from({ length: c.batch }, () => Math.floor(Math.random() * c.numClasses));
  const y = fromTypedArray(labels, [c.batch], { dtype: 'int64', device: 'cpu' });
  const params = model.parameters().reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const bf16 = c.precision === 'bfloat16';
  let macs: number;
  if (c.mode === 'train') {
    // Counted by hooks on the Conv2d and Linear layers, on one image so that this untimed forward
    // does not set the peak RSS.
    macs = countMacs(model, x.narrow(0, 0, 1));
    const criterion = new CrossEntropyLoss();
    const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    // The training twin: each batch norm runs the ReLU (and a block's residual add) after it in
    // its own pass, on the model's own layers.
    const net = fuseForTraining(model).train();
    // bfloat16: forward and loss under autocast (convolutions and the fc layer in bfloat16 on
    // float32 parameters, cast once per step; the loss in float32), backward outside it, as
    // PyTorch's AMP. Parameters, gradients and momentum stay float32.
    const forward = bf16
      ? () => autocast({ device: 'cpu', dtype: 'bfloat16' }, () => criterion.call(net.call(x), y) as Tensor)
      : () => criterion.call(net.call(x), y) as Tensor;
    // tidy frees each step's intermediates on exit, as PyTorch's reference counting does; left to
    // GC finalizers they would pile up and inflate peak RSS. Parameters, .grad and momentum are kept.
    iteration = () => tidy(() => {
      const loss = forward();
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    });
  } else {
    // Inference as a deployment runs it: the fused copy (conv·bn·relu and the residual add in one
    // kernel) alone; nothing uses the original's tensors after fusing (the copy shares none), so
    // they are freed rather than kept until the garbage collector finds them.
    const fused = fuseForInference(model);
    for (const t of [...model.parameters(), ...model.buffers()]) t.dispose();
    let input = x;
    if (bf16) {
      // bfloat16 inference: an explicit, one-time cast of the fused model's weights and of the
      // input, outside the timed iterations (no autocast: every op then runs in bfloat16).
      const f32 = [...fused.parameters(), ...fused.buffers()];
      fused.to('bfloat16');
      for (const t of f32) t.dispose();
      input = noGrad(() => x.to('bfloat16'));
      x.dispose();
    }
    // The unfused weights (and the file's) went to the buffer pool; inference reuses none of them.
    // Counted on the fused copy: the unfused model's one-image forward reordered every weight for
    // oneDNN, 160 MiB more in ResNet-50's peak RSS than inference itself needs.
    macs = countMacs(fused, input.narrow(0, 0, 1));
    emptyCache();
    iteration = () => noGrad(() => tidy(() => { fused.call(input); }));
    output = () => noGrad(() => tidy(() => Array.from((fused.call(input) as Tensor).to('float32').dataSync())));
  }
  return { params, macs };
}

/** Seconds of each of `reps` n x n x n float32 matmuls on 'cpu', after one untimed call. */
function gemm(n: number, reps: number): number[] {
  const a = randn([n, n], { device: 'cpu' }), b = randn([n, n], { device: 'cpu' });
  const seconds: number[] = [];
  noGrad(() => {
    matmul(a, b).dispose();
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      const c = matmul(a, b);
      seconds.push((performance.now() - t0) / 1e3);
      c.dispose();
    }
  });
  a.dispose();
  b.dispose();
  return seconds;
}

function hello(threads: number): object {
  const cpu = backends().find((b) => b.name === 'cpu');
  if (!cpu?.available) return { ready: false, error: `the native 'cpu' backend is unavailable: ${cpu?.reason ?? 'not registered'}` };
  // oneDNN sizes its primitives for the thread count at creation, so this precedes any conv or matmul.
  setNumThreads(threads);
  const pkg = JSON.parse(readFileSync(new URL('../packages/autograd/package.json', import.meta.url), 'utf8')) as { version: string };
  const onednn = describeBuild().features.onednn as { enabled: boolean; version?: string };
  return {
    ready: true, version: pkg.version, node: process.version, threads: getNumThreads(),
    onednn: onednn.enabled ? (onednn.version ?? 'enabled') : 'not built',
    startRssKB: maxRssKB(),
  };
}

async function handle(msg: { cmd: string; case?: CaseSpec; weights?: string; input?: string; iters?: number; n?: number; reps?: number }):
  Promise<object> {
  switch (msg.cmd) {
    case 'setup': return { ok: true, ...(await setup(msg.case!, msg.weights, msg.input)) };
    case 'output': {
      if (!output) throw new Error('output: no inference case is set up');
      return { ok: true, output: output() };
    }
    case 'run': return { ok: true, seconds: timeIterations(iteration, msg.iters!) };
    case 'gemm': return { ok: true, seconds: gemm(msg.n!, msg.reps!) };
    case 'info': return { ok: true, maxRssKB: maxRssKB(), native: memoryStats() };
    default: throw new Error(`unknown command ${JSON.stringify(msg.cmd)}`);
  }
}

serve(hello(Number(process.argv[2] ?? 1)) as { ready: boolean }, handle);
