// The eval-mode fast path of the ResNets: under noGrad every conv → bn (→ + identity) (→ relu) is one
// Conv2DFused call with BatchNorm folded into its weight and bias. Checked against the unfused
// forward on 'ts' in float64 (the reference), by which kernels run, and by the folded weights
// following every change of the tensors they come from.
import { describe, expect, it } from 'vitest';
import { backends, cachedScalarCount, crossEntropy, manualSeed, noGrad, randn, tensor, tidy, type Tensor } from '@nodegrad/autograd';
import {
  BasicBlock, BatchNormBase, Conv2d, SGD, fuseConvBn, resnet18, resnet50, type ResNet, type ResNetOptions,
} from '@nodegrad/nn';
import { describeBuild, memoryStats } from '@nodegrad/native';
import { countKernels } from './count_kernels.js';
import { maxRelErr, randomizeNorms } from '../../packages/nn/test/norm_utils.js';

const cpu = backends().find((b) => b.name === 'cpu');
const onednn = describeBuild().features.onednn;
const suite = cpu?.available && onednn.enabled ? describe : describe.skip;
const why = !cpu?.available ? ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`
  : !onednn.enabled ? ` (skipped: built without oneDNN: ${onednn.reason})` : '';
// float32 through a few dozen layers, relative to the largest logit.
const F32_TOL = 1e-4;
const NARROW: ResNetOptions = { widths: [8, 16, 16, 32], numClasses: 10 };
const FUSED_KERNELS = ['Conv2DFused', 'Conv2D', 'BatchNormForward', 'Relu', 'Rsqrt'] as const;

/** The same random model twice: float32 on 'cpu', float64 on 'ts'. */
function twins(make: (o: ResNetOptions) => ResNet, opts: ResNetOptions): { model: ResNet; ref: ResNet } {
  manualSeed(5);
  const model = make(opts);
  randomizeNorms(model);
  const ref = make(opts);
  ref.loadStateDict(model.stateDict());
  return { model: model.to('cpu').eval(), ref: ref.to('float64').eval() };
}

const convCount = (m: ResNet) => m.modules().filter((c) => c instanceof Conv2d).length;
const normCount = (m: ResNet) => m.modules().filter((c) => c instanceof BatchNormBase).length;
const fused = (m: ResNet, x: Tensor) => countKernels([...FUSED_KERNELS], () => noGrad(() => m.call(x) as Tensor));
// Grad enabled and parameters requiring grad: the plain path, whatever the mode.
const unfused = (m: ResNet, x: Tensor) => m.call(x) as Tensor;

suite(`ResNet eval forward with conv-bn folding and fused epilogues on 'cpu'${why}`, () => {
  const archs = [['resnet18', resnet18, NARROW], ['resnet50', resnet50, NARROW], ['full-size resnet18', resnet18, {}]] as const;
  for (const [name, make, opts] of archs) {
    it(`${name}: one Conv2DFused per conv and nothing else, equal to the unfused forward in float64`, () => {
      const { model, ref } = twins(make, opts);
      const x = randn([2, 3, 32, 32]);
      const [y, calls] = fused(model, x.to('cpu'));
      expect(calls).toEqual({ Conv2DFused: convCount(model), Conv2D: 0, BatchNormForward: 0, Relu: 0, Rsqrt: normCount(model) });
      const want = unfused(ref, x.to('float64'));
      expect(want.requiresGrad).toBe(true); // the reference really took the plain path
      expect(maxRelErr(y, want)).toBeLessThan(F32_TOL);
      expect(maxRelErr(unfused(model, x.to('cpu')), want)).toBeLessThan(F32_TOL);
      // On 'ts' the fused op is the composite: the folding alone, exact to float64 rounding.
      expect(maxRelErr(noGrad(() => ref.call(x.to('float64')) as Tensor), want)).toBeLessThan(1e-12);
    });
  }

  it('folds once: a repeated forward reuses the folded weights; an in-place change refolds that pair only', () => {
    const { model } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32], { device: 'cpu' });
    expect(fused(model, x)[1].Rsqrt).toBe(normCount(model));
    const [y1, again] = fused(model, x);
    expect(again.Rsqrt).toBe(0);
    noGrad(() => (model.layer2.at(0) as BasicBlock).conv1.weight.mul_(1.5));
    const [y2, after] = fused(model, x);
    expect(after.Rsqrt).toBe(1);
    expect(maxRelErr(y2, y1)).toBeGreaterThan(1e-3);
    expect(maxRelErr(y2, unfused(model, x))).toBeLessThan(F32_TOL);
    noGrad(() => ((model.layer3.at(1) as BasicBlock).bn2 as BatchNormBase).running_var!.add_(0.25));
    expect(fused(model, x)[1].Rsqrt).toBe(1);
    expect(maxRelErr(fused(model, x)[0], unfused(model, x))).toBeLessThan(F32_TOL);
  });

  it('the folded weights outlive tidy scopes, and a training-mode forward frees them', () => {
    const { model } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32], { device: 'cpu' });
    const first = tidy(() => fused(model, x)[0].toTypedArray()); // folds inside the scope
    const [y, calls] = fused(model, x);
    expect(calls.Rsqrt).toBe(0);
    expect(Array.from(y.toTypedArray())).toEqual(Array.from(first));
    // Live handles less the scalar operands cached on the device (made once, on first use).
    const live = () => memoryStats().liveHandles - cachedScalarCount('cpu');
    const before = live();
    tidy(() => { noGrad(() => model.train().call(x)); });
    // A weight and a bias per BatchNorm (finalizers may free more meanwhile, never fewer).
    expect(live()).toBeLessThanOrEqual(before - 2 * normCount(model));
  });

  it('an optimizer step in training mode (weights and running statistics) is seen by the next eval forward', () => {
    const { model } = twins(resnet50, NARROW);
    const x = randn([4, 3, 32, 32], { device: 'cpu' });
    const before = fused(model, x)[0];
    const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    model.train();
    const [logits, trainCalls] = countKernels(['Conv2DFused'], () => model.call(x) as Tensor);
    expect(trainCalls.Conv2DFused).toBe(0);
    crossEntropy(logits, tensor([1, 2, 3, 4], { dtype: 'int64', device: 'cpu' })).backward();
    opt.step();
    model.eval();
    const after = fused(model, x)[0];
    expect(maxRelErr(after, before)).toBeGreaterThan(1e-3);
    expect(maxRelErr(after, unfused(model, x))).toBeLessThan(F32_TOL);
  });

  it('loadStateDict is seen by the next eval forward', () => {
    const { model } = twins(resnet18, NARROW);
    const { ref: other } = twins((o) => { manualSeed(9); return resnet18(o); }, NARROW);
    const x = randn([2, 3, 32, 32]);
    fused(model, x.to('cpu'));
    model.loadStateDict(other.stateDict());
    expect(maxRelErr(fused(model, x.to('cpu'))[0], unfused(other, x.to('float64')))).toBeLessThan(F32_TOL);
  });

  it('training mode and recording eval forwards are unchanged: no fused kernel, the ts float64 result', () => {
    const { model, ref } = twins(resnet18, NARROW);
    const x = randn([4, 3, 32, 32]);
    model.train();
    ref.train();
    const [y, calls] = countKernels(['Conv2DFused'], () => noGrad(() => model.call(x.to('cpu')) as Tensor));
    expect(calls.Conv2DFused).toBe(0);
    expect(maxRelErr(y, noGrad(() => ref.call(x.to('float64')) as Tensor))).toBeLessThan(F32_TOL);
    model.eval();
    const xg = x.to('cpu');
    xg.requiresGrad = true;
    model.requiresGrad_(false);
    const [z, evalCalls] = countKernels(['Conv2DFused'], () => model.call(xg) as Tensor);
    expect(evalCalls.Conv2DFused).toBe(0);
    z.sum().backward();
    expect(xg.grad?.shape).toEqual([4, 3, 32, 32]);
  });

  it('a hook on a layer keeps that block on the plain path, so the hook still runs', () => {
    const { model } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32], { device: 'cpu' });
    let seen = 0;
    (model.layer1.at(1) as BasicBlock).bn1.registerForwardHook(() => { seen++; });
    const [y, calls] = fused(model, x);
    expect(seen).toBe(1);
    expect(calls.Conv2DFused).toBe(convCount(model) - 2);
    expect(maxRelErr(y, unfused(model, x))).toBeLessThan(F32_TOL);
  });

  it('after fuseConvBn (BN replaced by Identity) the convs still run fused, without folding', () => {
    const { model } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32], { device: 'cpu' });
    const want = unfused(model, x);
    fuseConvBn(model);
    const [y, calls] = fused(model, x);
    expect(calls).toMatchObject({ Conv2DFused: convCount(model), Rsqrt: 0, Conv2D: 0 });
    expect(maxRelErr(y, want)).toBeLessThan(F32_TOL);
  });
});
