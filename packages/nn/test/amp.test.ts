/**
 * Mixed precision on a whole model, on every backend that computes the low type: one ResNet-18
 * training step (small-image stem, batch 4, 32x32) under autocast against the same step in
 * float32 from the same weights. Loss and every parameter's gradient agree within the low type's
 * precision; the model's parameters, gradients and BN running statistics stay float32.
 */
import { describe, expect, it } from 'vitest';
import { crossEntropy, manualSeed, noGrad, randn, tensor, type Tensor } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { autocast, resnet18 } from '@nodegrad/nn';

/** Every gradient as one float64 vector. */
function flat(ts: readonly Tensor[]): Float64Array {
  const out = new Float64Array(ts.reduce((n, t) => n + t.size, 0));
  let o = 0;
  for (const t of ts) { out.set(t.toTypedArray(), o); o += t.size; }
  return out;
}

/** ||a - b|| / ||b|| over all elements. */
function relErr(a: Tensor | Float64Array, b: Tensor | Float64Array): number {
  const x = a instanceof Float64Array ? a : a.toTypedArray(), y = b instanceof Float64Array ? b : b.toTypedArray();
  let d = 0, n = 0;
  for (let i = 0; i < x.length; i++) { d += (x[i]! - y[i]!) ** 2; n += y[i]! ** 2; }
  return Math.sqrt(d / n);
}

for (const low of ['bfloat16', 'float16'] as const) {
  // At initialization with batch statistics, low-precision rounding is amplified on the way back
  // through every batch norm: PyTorch 1.13's own CPU autocast to bfloat16 on this configuration
  // (torchvision resnet18 with the same stem, batch 4) gives loss within 1e-3, the whole gradient
  // within 0.28 and the worst parameter's within 0.44 of its float32 step; the bounds are those
  // with margin, tighter for float16's 3 more bits, and tight on the last layer, which no batch
  // norm follows.
  const tol = low === 'bfloat16' ? { loss: 5e-3, whole: 0.45, fc: 5e-2 } : { loss: 1e-3, whole: 0.2, fc: 1e-2 };
  describeBackends(describe, `a ResNet-18 step under autocast to ${low}`, (device) => {
    it('matches the float32 step in loss and gradients; parameters and statistics stay float32', { timeout: 300_000 }, () => {
      manualSeed(7);
      const model = resnet18({ numClasses: 10, smallImageStem: true }).to(device);
      const x = randn([4, 3, 32, 32], { device });
      const y = tensor([1, 7, 3, 0], { dtype: 'int64', device });
      const seen: string[] = [];
      model.layer1.registerForwardHook((_m, _in, out) => { seen.push((out as Tensor).dtype); });
      const step = (amp: boolean) => {
        model.zeroGrad();
        const kind = device.startsWith('cuda') ? 'cuda' : 'cpu';
        const loss = autocast({ device: kind, dtype: low, enabled: amp }, () => crossEntropy(model.forward(x), y));
        loss.backward();
        return { loss: loss.item(), grads: model.namedParameters().map(([n, p]) => [n, p.grad!.clone()] as const) };
      };
      const state = noGrad(() => model.buffers().map((b) => b.clone()));
      const ref = step(false);
      noGrad(() => model.buffers().forEach((b, i) => b.copy_(state[i]!))); // the same BN statistics again
      const amp = step(true);
      expect(seen).toEqual(['float32', low]); // the blocks ran in the low type under autocast
      const whole = relErr(flat(amp.grads.map(([, g]) => g)), flat(ref.grads.map(([, g]) => g)));
      const fc = amp.grads.filter(([n]) => n.startsWith('fc.')).map(([, g], i) => relErr(g, ref.grads.at(-2 + i)![1]));
      expect(Math.abs(amp.loss - ref.loss) / ref.loss).toBeLessThan(tol.loss);
      expect(whole).toBeLessThan(tol.whole);
      expect(Math.max(...fc)).toBeLessThan(tol.fc);
      expect(amp.grads.every(([, g]) => g.dtype === 'float32')).toBe(true);
      expect(model.buffers().every((b) => b.dtype === 'float32' || b.dtype === 'int64')).toBe(true);
    });
  }, { needs: [['Conv2D', low], ['BatchNormStats', low], ['MaxPool2D', low], ['BatchMatMul', low]] });
}
