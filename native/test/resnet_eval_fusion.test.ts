// fuseForInference on 'cpu': in the inference copy of a ResNet every conv → bn (→ + identity)
// (→ relu) is one Conv2DFused call with BatchNorm folded into its weight and bias. Checked against
// the unfused model on 'ts' in float64 (the reference), by which kernels run, and by the copy
// being a snapshot that a change of the original does not reach until it is fused again.
import { describe, expect, it } from 'vitest';
import { backends, crossEntropy, manualSeed, noGrad, randn, tensor, tidy, type Tensor } from '@nodegrad/autograd';
import {
  BasicBlock, BatchNormBase, Conv2d, FusedBlock, FusedConv2d, SGD, Sequential, fuseConvBn, fuseForInference, resnet18, resnet50,
  type FusedResNet, type Module, type ResNet, type ResNetOptions,
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
const KERNELS = ['Conv2DFused', 'Conv2D', 'BatchNormElemt', 'Relu', 'Add', 'Rsqrt'] as const;

/** The same random model twice: float32 on 'cpu', float64 on 'ts'. */
function twins(make: (o: ResNetOptions) => ResNet, opts: ResNetOptions): { model: ResNet; ref: ResNet } {
  manualSeed(5);
  const model = make(opts);
  randomizeNorms(model);
  const ref = make(opts);
  ref.loadStateDict(model.stateDict());
  return { model: model.to('cpu').eval(), ref: ref.to('float64').eval() };
}

const convCount = (m: Module) => m.modules().filter((c) => c instanceof Conv2d || c instanceof FusedConv2d).length;
const normCount = (m: Module) => m.modules().filter((c) => c instanceof BatchNormBase).length;
/** An inference forward under noGrad, with the kernels it called on 'cpu'. */
const infer = (m: Module, x: Tensor) => countKernels([...KERNELS], () => noGrad(() => m.call(x) as Tensor));
/** The reference: the plain model's eval forward on 'ts' in float64. */
const reference = (ref: ResNet, x: Tensor) => noGrad(() => ref.call(x.to('float64')) as Tensor);

suite(`ResNet inference through fuseForInference on 'cpu'${why}`, () => {
  const archs = [['resnet18', resnet18, NARROW], ['resnet50', resnet50, NARROW], ['full-size resnet18', resnet18, {}]] as const;
  for (const [name, make, opts] of archs) {
    it(`${name}: one Conv2DFused per conv and nothing else, equal to the unfused forward in float64`, () => {
      const { model, ref } = twins(make, opts);
      const x = randn([2, 3, 32, 32]);
      // Folding happens once, in the transform: one rsqrt per BatchNorm there, none in a forward.
      const [fused, folding] = countKernels(['Rsqrt'], () => fuseForInference(model));
      expect(folding.Rsqrt).toBe(normCount(model));
      const [y, calls] = infer(fused, x.to('cpu'));
      // The one Add is fc's bias: every residual add is in a convolution's epilogue.
      expect(calls).toEqual({ Conv2DFused: convCount(model), Conv2D: 0, BatchNormElemt: 0, Relu: 0, Add: 1, Rsqrt: 0 });
      expect(maxRelErr(y, reference(ref, x))).toBeLessThan(F32_TOL);
      // On 'ts' the fused op is the composite: the folding alone, exact to float64 rounding.
      expect(maxRelErr(noGrad(() => fuseForInference(ref).call(x.to('float64')) as Tensor), reference(ref, x))).toBeLessThan(1e-12);
    });
  }

  it('the model itself is plain in every mode: no fused kernel, the ts float64 result', () => {
    const { model, ref } = twins(resnet18, NARROW);
    const x = randn([4, 3, 32, 32]);
    const [y, evalCalls] = infer(model, x.to('cpu'));
    expect(evalCalls).toMatchObject({ Conv2DFused: 0, Conv2D: convCount(model), BatchNormElemt: normCount(model) });
    expect(maxRelErr(y, reference(ref, x))).toBeLessThan(F32_TOL);
    model.train();
    ref.train();
    const [z, trainCalls] = infer(model, x.to('cpu'));
    expect(trainCalls.Conv2DFused).toBe(0);
    expect(maxRelErr(z, noGrad(() => ref.call(x.to('float64')) as Tensor))).toBeLessThan(F32_TOL);
  });

  it('a snapshot: an optimizer step on the original is not seen by the copy, and fusing again sees it', () => {
    const { model } = twins(resnet50, NARROW);
    const x = randn([4, 3, 32, 32], { device: 'cpu' });
    const fused = fuseForInference(model);
    const before = infer(fused, x)[0];
    const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    model.train();
    crossEntropy(model.call(x) as Tensor, tensor([1, 2, 3, 4], { dtype: 'int64', device: 'cpu' })).backward();
    opt.step();
    model.eval();
    expect(Array.from(infer(fused, x)[0].toTypedArray())).toEqual(Array.from(before.toTypedArray()));
    const after = infer(fuseForInference(model), x)[0];
    expect(maxRelErr(after, before)).toBeGreaterThan(1e-3);
    expect(maxRelErr(after, noGrad(() => model.call(x) as Tensor))).toBeLessThan(F32_TOL);
  });

  it("loadStateDict: into the original, then fused; and into a fused copy, fuseConvBn's state dict of another model", () => {
    const { model } = twins(resnet18, NARROW);
    const { model: other, ref: otherRef } = twins((o) => { manualSeed(9); return resnet18(o); }, NARROW);
    const x = randn([2, 3, 32, 32]);
    const fused = fuseForInference(model);
    model.loadStateDict(otherRef.stateDict());
    expect(maxRelErr(infer(fuseForInference(model), x.to('cpu'))[0], reference(otherRef, x))).toBeLessThan(F32_TOL);
    fused.loadStateDict(fuseConvBn(other).stateDict());
    expect(maxRelErr(infer(fused, x.to('cpu'))[0], reference(otherRef, x))).toBeLessThan(F32_TOL);
  });

  it('made inside tidy, the copy keeps its tensors; a forward in tidy leaves only its output behind', () => {
    const { model, ref } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32]);
    const xc = x.to('cpu');
    const fused = tidy(() => fuseForInference(model));
    tidy(() => { infer(fused, xc); }); // warm-up: anything made once on first use
    const before = memoryStats().liveHandles;
    const y = tidy(() => infer(fused, xc)[0]);
    expect(memoryStats().liveHandles).toBe(before + 1);
    expect(maxRelErr(y, reference(ref, x))).toBeLessThan(F32_TOL);
  });

  it('hooks on the copy run, and its convolutions stay fused; hooks on the original are not carried', () => {
    const { model, ref } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32]);
    let onOriginal = 0;
    (model.layer1.at(1) as BasicBlock).conv1.registerForwardHook(() => { onOriginal++; });
    const fused: FusedResNet = fuseForInference(model);
    const seen: number[][] = [];
    const conv = ((fused.layer1 as Sequential).at(1) as FusedBlock).conv1;
    conv.registerForwardHook((_m, _in, out) => { seen.push((out as Tensor).shape as number[]); });
    const [y, calls] = infer(fused, x.to('cpu'));
    expect([seen, onOriginal]).toEqual([[[2, 8, 8, 8]], 0]);
    expect(calls).toMatchObject({ Conv2DFused: convCount(model), Conv2D: 0 });
    expect(maxRelErr(y, reference(ref, x))).toBeLessThan(F32_TOL);
  });

  it('after fuseConvBn (BN replaced by Identity) every conv still runs fused, with nothing left to fold', () => {
    const { model, ref } = twins(resnet18, NARROW);
    const x = randn([2, 3, 32, 32]);
    fuseConvBn(model);
    const [fused, folding] = countKernels(['Rsqrt'], () => fuseForInference(model));
    expect(folding.Rsqrt).toBe(0);
    const [y, calls] = infer(fused, x.to('cpu'));
    expect(calls).toMatchObject({ Conv2DFused: convCount(model), Conv2D: 0, Relu: 0, Add: 1 });
    expect(maxRelErr(y, reference(ref, x))).toBeLessThan(F32_TOL);
  });
});
