// fuseConvBn: folding eval-mode BatchNorm into the conv before it must leave outputs unchanged.
import { describe, expect, test } from 'vitest';
import { manualSeed, noGrad, randn, tensor } from '@nodegrad/autograd';
import {
  BatchNorm2d, BatchNormBase, Bottleneck, Conv2d, Identity, ReLU, ResNet, Sequential, fuseConvBn, resnet18,
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
