/**
 * Loss modules: hand-computed values for the plain cases, equality with autograd's functional
 * ops (whose PyTorch agreement packages/autograd tests) under every option, equal gradients, and
 * the class-weight buffer in stateDict and through to().
 */
import { describe, expect, it } from 'vitest';
import { crossEntropy, grad, manualSeed, mseLoss, nllLoss, randn, tensor, type Tensor } from '@nodegrad/autograd';
import { CrossEntropyLoss, MSELoss, NLLLoss } from '@nodegrad/nn';

const values = (t: Tensor) => Array.from(t.toTypedArray());
const idx = (v: number[]) => tensor(v, { dtype: 'int64' });

describe('CrossEntropyLoss', () => {
  it('is the mean negative log-softmax of the target class (hand computation)', () => {
    const logits = tensor([[1, 2, 3], [0, 0, 0]], { dtype: 'float64' });
    const lse = Math.log(Math.E + Math.E ** 2 + Math.E ** 3);
    const expected = ((lse - 3) + Math.log(3)) / 2;
    expect(new CrossEntropyLoss().call(logits, [2, 1]).item()).toBeCloseTo(expected, 12);
    expect(new CrossEntropyLoss({ reduction: 'sum' }).call(logits, [2, 1]).item()).toBeCloseTo(2 * expected, 12);
    const none = values(new CrossEntropyLoss({ reduction: 'none' }).call(logits, [0, 1]));
    expect(none).toHaveLength(2);
    expect(none[0]).toBeCloseTo(lse - 1, 12);
    expect(none[1]).toBeCloseTo(Math.log(3), 12);
  });

  it('ignores the ignoreIndex targets (hand computation)', () => {
    const logits = tensor([[1, 2, 3], [0, 0, 0]], { dtype: 'float64' });
    const loss = new CrossEntropyLoss({ ignoreIndex: 0 }).call(logits, [0, 1]);
    expect(loss.item()).toBeCloseTo(Math.log(3), 12);
  });

  it('equals the functional crossEntropy under weight, ignoreIndex, labelSmoothing and each reduction', () => {
    manualSeed(1);
    const x = randn([6, 4, 2]);
    const target = idx([0, 3, 1, 2, 2, 0, 1, 3, 3, 0, 1, 1]).reshape([6, 2]);
    const weight = tensor([0.5, 1, 2, 0.25]);
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const opts = { weight, ignoreIndex: 3, reduction, labelSmoothing: 0.2 };
      const m = new CrossEntropyLoss(opts);
      expect(values(m.call(x, target)), reduction).toEqual(values(crossEntropy(x, target, opts)));
    }
    // Class-probability targets too.
    const probs = randn([6, 4, 2]).softmax(1);
    expect(new CrossEntropyLoss({ labelSmoothing: 0.1 }).call(x, probs).item())
      .toBe(crossEntropy(x, probs, { labelSmoothing: 0.1 }).item());
  });

  it('gives the functional op\'s gradient', () => {
    manualSeed(2);
    const x = randn([5, 3], { requiresGrad: true });
    const t = [0, 2, 1, 1, 0];
    const [gm] = grad([new CrossEntropyLoss({ labelSmoothing: 0.1 }).call(x, t)], [x]);
    const [gf] = grad([crossEntropy(x, t, { labelSmoothing: 0.1 })], [x]);
    expect(values(gm!)).toEqual(values(gf!));
  });

  it('keeps the class weight as the buffer `weight` (in stateDict, moved by to())', () => {
    expect(Object.keys(new CrossEntropyLoss().stateDict())).toEqual([]);
    const m = new CrossEntropyLoss({ weight: tensor([1, 2]) });
    expect(Object.keys(m.stateDict())).toEqual(['weight']);
    expect(m.parameters()).toEqual([]);
    m.to('float64');
    expect(m.weight!.dtype).toBe('float64');
    const x = tensor([[0.5, -0.5]], { dtype: 'float64' });
    expect(m.call(x, [1]).dtype).toBe('float64');
  });
});

describe('NLLLoss', () => {
  it('is the mean of -logp at the targets, weighted means divide by the weights (hand computation)', () => {
    const logp = tensor([[-1, -2, -3], [-0.5, -1.5, -2.5]], { dtype: 'float64' });
    expect(new NLLLoss().call(logp, [2, 0]).item()).toBeCloseTo((3 + 0.5) / 2, 12);
    const w = tensor([2, 1, 4], { dtype: 'float64' });
    expect(new NLLLoss({ weight: w }).call(logp, [2, 0]).item()).toBeCloseTo((4 * 3 + 2 * 0.5) / 6, 12);
    expect(new NLLLoss({ ignoreIndex: 2, reduction: 'sum' }).call(logp, [2, 0]).item()).toBeCloseTo(0.5, 12);
  });

  it('equals the functional nllLoss', () => {
    manualSeed(3);
    const logp = randn([7, 5]).logSoftmax(1);
    const target = idx([0, 4, 4, 2, 1, 3, 0]);
    const opts = { weight: tensor([1, 2, 3, 4, 5]), ignoreIndex: 4, reduction: 'mean' as const };
    expect(new NLLLoss(opts).call(logp, target).item()).toBe(nllLoss(logp, target, opts).item());
  });
});

describe('MSELoss', () => {
  it('is the mean (sum, elementwise) squared difference (hand computation) and equals mseLoss', () => {
    const a = tensor([1, 2, 3, 4]), b = tensor([1.5, 2, 1, 8]);
    expect(new MSELoss().call(a, b).item()).toBeCloseTo((0.25 + 0 + 4 + 16) / 4, 6);
    expect(new MSELoss({ reduction: 'sum' }).call(a, b).item()).toBeCloseTo(20.25, 5);
    expect(values(new MSELoss({ reduction: 'none' }).call(a, b))).toEqual([0.25, 0, 4, 16]);
    manualSeed(4);
    const x = randn([3, 4]), y = randn([3, 4]);
    expect(new MSELoss().call(x, y).item()).toBe(mseLoss(x, y).item());
    expect(() => new MSELoss().call(x, randn([2, 4]))).toThrow(/mseLoss/);
  });
});
