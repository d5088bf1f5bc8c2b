// fuseConvBn and fuseForInference: folding eval-mode BatchNorm into the conv before it (and, for
// fuseForInference, the ReLU and residual add into its epilogue) must leave outputs unchanged.
import { describe, expect, test } from 'vitest';
import { getRngState, manualSeed, mul, noGrad, randn, sum, tensor, type Tensor } from '@nodegrad/autograd';
import {
  BasicBlock, BatchNorm2d, BatchNormBase, Bottleneck, Conv2d, Flatten, FusedResNet, Identity, Linear, ReLU, ResNet,
  Sequential, fuseConvBn, fuseForInference, resnet18,
} from '@nodegrad/nn';
import { maxRelErr, randomizeNorms } from './norm_utils.js';

describe('fuseConvBn', () => {
  test('folds by w * gamma/sqrt(var+eps) and beta + (b - mean) * gamma/sqrt(var+eps) (hand-computed)', () => {
    const conv = new Conv2d(1, 2, 1);
    const bn = new BatchNorm2d(2, { eps: 0.01 });
    noGrad(() => {
      conv.weight.copy_(tensor([[[[2]]], [[[-1]]]]));
      conv.bias!.copy_(tensor([0.5, 1]));
      bn.running_mean!.copy_(tensor([1, -2]));
      bn.running_var!.copy_(tensor([3.99, 0.24]));
      bn.weight!.copy_(tensor([1.5, 2]));
      bn.bias!.copy_(tensor([0.1, -0.3]));
    });
    const seq = new Sequential(conv, bn, new ReLU());
    const x = randn([2, 1, 3, 3]);
    const before = noGrad(() => seq.eval().call(x));
    expect(fuseConvBn(seq)).toBe(seq);
    // gamma / sqrt(var + eps) = 1.5 / 2 = 0.75 and 2 / 0.5 = 4.
    expect(Array.from(conv.weight.toTypedArray())).toEqual([1.5, -4]);
    // 0.1 + (0.5 - 1) * 0.75 = -0.275; -0.3 + (1 + 2) * 4 = 11.7.
    const b = conv.bias!.toTypedArray();
    expect(b[0]).toBeCloseTo(-0.275, 6);
    expect(b[1]).toBeCloseTo(11.7, 5);
    expect(seq.at(1)).toBeInstanceOf(Identity);
    expect(seq.at(2)).toBeInstanceOf(ReLU);
    expect(maxRelErr(noGrad(() => seq.call(x)), before)).toBeLessThan(1e-6);
  });

  test('resnet18 with random BN statistics: eval outputs unchanged, every BN gone, every conv biased', () => {
    manualSeed(11);
    const model = resnet18({ numClasses: 10 });
    randomizeNorms(model);
    const x = randn([2, 3, 32, 32]);
    const before = noGrad(() => model.eval().call(x));
    const convs = model.modules().filter((m) => m instanceof Conv2d) as Conv2d[];
    const oldWeights = convs.map((c) => c.weight);

    fuseConvBn(model);
    expect(model.training).toBe(false);
    expect(model.modules().filter((m) => m instanceof BatchNormBase)).toEqual([]);
    expect(convs.every((c, i) => c.bias !== null && c.weight !== oldWeights[i])).toBe(true);
    for (const name of ['bn1', 'layer1.0.bn1', 'layer1.1.bn2', 'layer2.0.downsample.1', 'layer4.1.bn2']) {
      expect([...model.namedModules()].find(([n]) => n === name)?.[1], name).toBeInstanceOf(Identity);
    }
    const keys = Object.keys(model.stateDict());
    expect(keys.filter((k) => /bn|downsample\.1/.test(k))).toEqual([]);
    expect(keys).toContain('layer2.0.downsample.0.bias');

    const after = noGrad(() => model.call(x));
    expect(after.shape).toEqual([2, 10]);
    expect(maxRelErr(after, before)).toBeLessThan(1e-4);
  });

  test('float64 Bottleneck ResNeXt-style model, BN stats from train-mode forwards: outputs equal to 1e-10', () => {
    manualSeed(12);
    const model = new ResNet(Bottleneck, [2, 1, 1, 1], {
      widths: [8, 16, 16, 32], groups: 2, widthPerGroup: 32, numClasses: 5, smallImageStem: true,
    }).to('float64');
    // Real running statistics (and num_batches_tracked) from a few training-mode forwards.
    noGrad(() => { for (let i = 0; i < 3; i++) model.call(randn([4, 3, 16, 16], { dtype: 'float64' }).mul(2).add(1)); });
    const bn = model.layer1.at(0) as Bottleneck;
    expect((bn.bn3 as BatchNorm2d).num_batches_tracked!.item()).toBe(3);
    const x = randn([2, 3, 16, 16], { dtype: 'float64' });
    const before = noGrad(() => model.eval().call(x));
    fuseConvBn(model);
    expect(bn.bn3).toBeInstanceOf(Identity);
    expect(bn.conv3.bias!.dtype).toBe('float64');
    expect(maxRelErr(noGrad(() => model.call(x)), before)).toBeLessThan(1e-10);
  });

  test('a BatchNorm without running statistics cannot be folded: the error names it', () => {
    const model = new ResNet(Bottleneck, [1, 1, 1, 1], {
      widths: [8, 8, 8, 8], normLayer: (n) => new BatchNorm2d(n, { trackRunningStats: false }),
    });
    expect(() => fuseConvBn(model)).toThrow(/fuseConvBn: bn1 has no running statistics/);
  });
});

describe('fuseForInference', () => {
  const NARROW = { widths: [8, 16, 16, 32] as [number, number, number, number], numClasses: 5 };
  const values = (t: Tensor) => Array.from(t.toTypedArray());

  /** A float64 model with random BatchNorm statistics, in eval mode, and a float64 input. */
  function evalModel(make: () => ResNet): { model: ResNet; x: Tensor } {
    const model = make().to('float64');
    randomizeNorms(model);
    return { model: model.eval(), x: randn([2, 3, 16, 16], { dtype: 'float64' }) };
  }

  test('resnet18 and a dilated ResNeXt Bottleneck model: outputs equal to the unfused eval forward (float64)', () => {
    manualSeed(21);
    const archs = [
      () => resnet18(NARROW),
      () => new ResNet(Bottleneck, [2, 1, 1, 1], {
        ...NARROW, groups: 2, widthPerGroup: 32, smallImageStem: true, replaceStrideWithDilation: [false, true, true],
      }),
    ];
    for (const make of archs) {
      const { model, x } = evalModel(make);
      const want = noGrad(() => model.call(x) as Tensor);
      const fused = fuseForInference(model);
      expect(fused).toBeInstanceOf(FusedResNet);
      expect(fused.modules().some((m) => m instanceof BatchNormBase || m instanceof ReLU)).toBe(false);
      expect(maxRelErr(noGrad(() => fused.call(x) as Tensor), want)).toBeLessThan(1e-12);
      // The unfused model is untouched: same structure, same output.
      expect(model.modules().filter((m) => m instanceof BatchNormBase).length).toBeGreaterThan(0);
      expect(maxRelErr(noGrad(() => model.call(x) as Tensor), want)).toBe(0);
    }
  });

  test("the state dict is fuseConvBn's: torchvision's conv keys each with a bias, no BatchNorm keys, the same values", () => {
    manualSeed(22);
    const { model } = evalModel(() => resnet18(NARROW));
    const twin = resnet18(NARROW).to('float64');
    twin.loadStateDict(model.stateDict());
    const fused = fuseForInference(model).stateDict();
    const folded = fuseConvBn(twin).stateDict();
    expect(Object.keys(fused)).toEqual(Object.keys(folded));
    expect(Object.keys(fused)).toContain('layer2.0.downsample.0.bias');
    expect(Object.keys(fused).filter((k) => /bn|running|downsample\.1/.test(k))).toEqual([]);
    for (const [k, t] of Object.entries(fused)) expect(values(t), k).toEqual(values(folded[k]!));
  });

  test('a copy: no tensor shared, eval mode, parameters not requiring grad, train() refused by the copy and by a module holding it', () => {
    manualSeed(23);
    const { model, x } = evalModel(() => resnet18(NARROW));
    model.train();
    const fused = fuseForInference(model);
    expect(model.training).toBe(true);
    const own = new Set([...model.parameters(), ...model.buffers()]);
    expect([...fused.parameters(), ...fused.buffers()].filter((t) => own.has(t))).toEqual([]);
    expect(fused.modules().every((m) => !m.training)).toBe(true);
    expect(fused.parameters().every((p) => !p.requiresGrad)).toBe(true);

    expect(() => fused.train()).toThrow(
      'train: FusedResNet is for inference only: fuseForInference made it, with BatchNorm folded into the convolutions; ' +
      'train the original model and call fuseForInference again');
    const holder = new Sequential(new Identity(), fused).eval();
    expect(() => holder.train()).toThrow(/^train: '1' \(FusedResNet\) is for inference only/);
    expect(() => fused.layer1.train()).toThrow(/^train: '0' \(FusedBlock\) is for inference only/);
    expect(holder.modules().every((m) => !m.training)).toBe(true); // refused before anything changed
    expect(() => fused.eval()).not.toThrow();

    // A snapshot: changing the original later does not reach the copy.
    const before = noGrad(() => fused.call(x) as Tensor);
    noGrad(() => model.conv1.weight.mul_(2));
    expect(values(noGrad(() => fused.call(x) as Tensor))).toEqual(values(before));
  });

  test('gradients reach the input through the fused model, equal to the unfused eval model (float64)', () => {
    manualSeed(24);
    const { model, x } = evalModel(() => new ResNet(Bottleneck, [1, 1, 1, 1], { ...NARROW, smallImageStem: true }));
    const fused = fuseForInference(model);
    // A fixed weighting of the logits, so the input gradient is not that of a plain sum.
    const weighting = randn([x.shape[0]!, 5], { dtype: 'float64' });
    const grads = [model, fused].map((m) => {
      const xi = x.detach();
      xi.requiresGrad = true;
      sum(mul(m.call(xi) as Tensor, weighting)).backward();
      return xi.grad!;
    });
    expect(maxRelErr(grads[1]!, grads[0]!)).toBeLessThan(1e-10);
  });

  test('Sequential: conv · bn · relu and conv · relu fuse under the conv names, the rest keep theirs; fuseConvBn output fuses too', () => {
    manualSeed(25);
    const seq = new Sequential(
      new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(),
      new Conv2d(4, 4, 3, { stride: 2, bias: false }), new ReLU(), new Flatten(), new Linear(4 * 7 * 7, 3)).to('float64');
    randomizeNorms(seq);
    seq.eval();
    const x = randn([2, 3, 16, 16], { dtype: 'float64' });
    const want = noGrad(() => seq.call(x) as Tensor);
    const rng = getRngState();
    const fused = fuseForInference(seq) as Sequential;
    expect(getRngState()).toEqual(rng); // copying the Linear draws no random numbers
    expect(fused.children().map((m) => m.constructor.name))
      .toEqual(['FusedConv2d', 'Identity', 'Identity', 'FusedConv2d', 'Identity', 'Flatten', 'Linear']);
    expect(String(fused.at(0))).toBe('FusedConv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), relu=True)');
    expect(Object.keys(fused.stateDict())).toEqual(['0.weight', '0.bias', '3.weight', '6.weight', '6.bias']);
    expect(maxRelErr(noGrad(() => fused.call(x) as Tensor), want)).toBeLessThan(1e-12);
    // After fuseConvBn the BatchNorms are Identity: the convs are copied with their folded bias.
    const again = fuseForInference(fuseConvBn(seq)) as Sequential;
    expect(maxRelErr(noGrad(() => again.call(x) as Tensor), want)).toBeLessThan(1e-12);
  });

  test('what it cannot fuse or copy is an error naming the path', () => {
    class MyNorm extends Identity {}
    class MyResNet extends ResNet {}
    const small = { widths: [8, 8, 8, 8] as [number, number, number, number] };
    expect(() => fuseForInference(new ResNet(Bottleneck, [1, 1, 1, 1], { ...small, normLayer: () => new MyNorm() })))
      .toThrow("fuseForInference: 'bn1' is a MyNorm: only a BatchNorm folds into the convolution before it");
    expect(() => fuseForInference(new ResNet(Bottleneck, [1, 1, 1, 1], {
      ...small, normLayer: (n) => new BatchNorm2d(n, { trackRunningStats: false }),
    }))).toThrow('fuseForInference: bn1 has no running statistics');
    expect(() => fuseForInference(new MyResNet(Bottleneck, [1, 1, 1, 1], small)))
      .toThrow(/^fuseForInference: '\(the model\)' is a MyResNet, which it cannot copy/);
    const model = resnet18(small);
    (model.layer3.at(1) as BasicBlock).registerModule('relu', new Sequential(new ReLU()));
    expect(() => fuseForInference(model)).toThrow("fuseForInference: 'layer3.1.relu' is a Sequential: only a ReLU runs");
    expect(() => fuseForInference(new Sequential(new ReLU(), new BatchNorm2d(3))))
      .toThrow("fuseForInference: '1' is a BatchNorm2d that does not follow a Conv2d");
  });
});

