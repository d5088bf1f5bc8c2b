// fuseForTraining: the training twin (batch norm · ReLU, and the block's last bn · add · ReLU, as
// one batchNormFused pass each) must train the original's own layers to the original's numbers:
// one step's loss, every gradient and the running statistics against an unfused copy of the same
// weights, on 'ts' in float64, on 'cpu' in float32 (the native kernels, blocked layouts) and on
// 'cuda:0' in float32 (cuDNN and the batch-norm kernels, on the GPU kit; skipped elsewhere).
import { describe, expect, it } from 'vitest';
import { autocast, backends, crossEntropy, manualSeed, noGrad, randn, tensor, type Tensor } from '@nodegrad/autograd';
import {
  BasicBlock, BatchNorm2d, Bottleneck, FusedTrainingResNet, ResNet, Sequential, fuseForTraining, resnet18,
} from '@nodegrad/nn';

/** A norm layer with a forward of its own (as SyncBatchNorm has): the twin must call it, not fuse it. */
class CountingNorm extends BatchNorm2d {
  static calls = 0;
  override forward(x: Tensor): Tensor {
    CountingNorm.calls++;
    return super.forward(x);
  }
}

/** Two ResNets with the same weights: one to fuse, one to run plain. */
function pair(block: typeof BasicBlock | typeof Bottleneck, device: string, dtype: 'float32' | 'float64') {
  manualSeed(3);
  const make = () => new ResNet(block, [1, 2, 1, 1], { widths: [8, 16, 16, 24], numClasses: 5, smallImageStem: true })
    .to(device).to(dtype);
  const a = make(), b = make();
  b.loadStateDict(a.stateDict());
  return { plain: a, original: b, fused: fuseForTraining(b) };
}

/** One training step's loss and gradients, parameters by name, then the buffers. */
function step(model: { call(x: Tensor): unknown; namedParameters(): Iterable<[string, Tensor]> }, x: Tensor, y: Tensor) {
  const loss = crossEntropy(model.call(x) as Tensor, y);
  loss.backward();
  return { loss: loss.item(), grads: [...model.namedParameters()].map(([n, p]) => [n, p.grad!] as const) };
}

const gpu = backends().find((b) => b.name === 'cuda:0');
const noGpu = gpu?.available ? '' : ` (skipped: ${gpu?.reason ?? 'cuda backend not registered'})`;

function expectClose(a: Tensor, b: Tensor, tol: number, what: string): void {
  const u = a.toTypedArray(), v = b.toTypedArray();
  let scale = 1e-3;
  for (let i = 0; i < v.length; i++) scale = Math.max(scale, Math.abs(v[i]!));
  for (let i = 0; i < v.length; i++) {
    if (!(Math.abs(u[i]! - v[i]!) <= tol * scale)) throw new Error(`${what}: element ${i} is ${u[i]}, unfused ${v[i]}`);
  }
}

describe('fuseForTraining', () => {
  const cases = [['ts', 'float64', 1e-10, ''], ['cpu', 'float32', 2e-4, ''], ['cuda:0', 'float32', 2e-4, noGpu]] as const;
  for (const [device, dtype, tol, skip] of cases) {
    for (const block of [BasicBlock, Bottleneck]) {
      (skip ? it.skip : it)(`${block.name} ResNet on '${device}' ${dtype}: loss, every gradient and the running statistics as unfused${skip}`, () => {
        const { plain, original, fused } = pair(block, device, dtype);
        const x = randn([4, 3, 12, 12], { device, dtype }), y = tensor([0, 3, 1, 4], { dtype: 'int64', device });
        const want = step(plain, x, y), got = step(fused, x, y);
        expect(Math.abs(got.loss - want.loss)).toBeLessThan(tol * Math.max(1, want.loss));
        expect(got.grads.map(([n]) => n)).toEqual(want.grads.map(([n]) => n));
        got.grads.forEach(([n, g], i) => expectClose(g, want.grads[i]![1], tol, `grad ${n}`));
        const bufs = [...plain.namedBuffers()];
        [...original.namedBuffers()].forEach(([n, t], i) => expectClose(t, bufs[i]![1], tol, `buffer ${n}`));
        // eval: running statistics, through the same fused op.
        fused.eval();
        plain.eval();
        expect(original.bn1.training).toBe(false); // the shared layers switched with the twin
        expectClose(noGrad(() => fused.call(x)), noGrad(() => plain.call(x)), tol, 'eval logits');
      });
    }
  }

  it('shares the original\'s layers and tensors: same state dict keys in order, same parameter objects', () => {
    const model = resnet18({ numClasses: 10, smallImageStem: true });
    const fused = fuseForTraining(model);
    expect(fused).toBeInstanceOf(FusedTrainingResNet);
    expect(Object.keys(fused.stateDict())).toEqual(Object.keys(model.stateDict()));
    const mine = [...fused.parameters()], theirs = [...model.parameters()];
    expect(mine.length).toBe(theirs.length);
    mine.forEach((p, i) => expect(p).toBe(theirs[i]));
    expect((fused.layer1 as Sequential).children()[0]!.constructor.name).toBe('FusedTrainingBlock');
    expect(fused.layer2 === model.layer2).toBe(false);
    expect(fused.fc).toBe(model.fc);
  });

  it('a batch norm with a hook runs as its own layer: the hook sees its output before the ReLU', () => {
    const model = resnet18({ numClasses: 10, smallImageStem: true, widths: [8, 8, 8, 8] }).to('cpu');
    const fused = fuseForTraining(model);
    let seen: Tensor | null = null;
    const bn1 = ((model.layer1 as Sequential).children()[0] as BasicBlock).bn1;
    bn1.registerForwardHook((_m, _in, out) => { seen = out as Tensor; });
    fused.call(randn([2, 3, 8, 8], { device: 'cpu' }));
    expect(seen).not.toBeNull();
    expect(Math.min(...seen!.toTypedArray())).toBeLessThan(0);
  });

  it('a norm layer of another class (a subclass, SyncBatchNorm) runs its own forward', () => {
    const model = resnet18({ numClasses: 3, smallImageStem: true, widths: [4, 4, 4, 4], normLayer: (n) => new CountingNorm(n) });
    const x = randn([2, 3, 8, 8]);
    const fused = fuseForTraining(model);
    CountingNorm.calls = 0;
    expectClose(fused.call(x) as Tensor, model.call(x) as Tensor, 1e-12, 'logits');
    expect(CountingNorm.calls).toBe(2 * 20); // bn1, 8 blocks x 2, 3 downsamples; in each of the two forwards
  });

  const autocasts = [['cpu', 'bfloat16', ''], ['cuda:0', 'bfloat16', noGpu], ['cuda:0', 'float16', noGpu]] as const;
  for (const [device, low, skip] of autocasts) {
    (skip ? it.skip : it)(`${low} autocast on '${device}': the step matches the unfused one within ${low} rounding${skip}`, () => {
      const { plain, fused } = pair(BasicBlock, device, 'float32');
      const x = randn([4, 3, 12, 12], { device }), y = tensor([0, 3, 1, 4], { dtype: 'int64', device });
      const run = (m: typeof plain | typeof fused) => {
        const loss = autocast({ device: device === 'cpu' ? 'cpu' : 'cuda', dtype: low }, () => crossEntropy(m.call(x) as Tensor, y) as Tensor);
        loss.backward();
        return { loss: loss.item(), grads: [...m.parameters()].map((p) => p.grad!) };
      };
      const want = run(plain), got = run(fused);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(0.02 * Math.max(1, want.loss));
      // bfloat16 keeps 8 bits (float16 11); the gradients of the last layers sum few terms and agree closely.
      expectClose(got.grads.at(-2)!, want.grads.at(-2)!, 0.05, 'fc.weight grad');
    });
  }
});
