// The ResNet family against torchvision: state-dict keys, order, shapes and dtypes from
// fixtures/torchvision_resnet_keys.json (scripts/fixtures/make_resnet_keys.py), parameter counts
// as torchvision publishes them, conv geometry under replaceStrideWithDilation, the options, and
// the initialisation's statistics.
import { readFileSync } from 'node:fs';
import { describe, expect, test, vi } from 'vitest';
import { add, manualSeed, noGrad, randn, relu, type Tensor } from '@nodegrad/autograd';
import {
  BasicBlock, BatchNorm2d, BatchNormBase, Bottleneck, Conv2d, Identity, Linear, MaxPool2d, Module, ResNet, Sequential,
  resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d,
  wide_resnet50_2, wide_resnet101_2, type ResNetOptions,
} from '@nodegrad/nn';

// Filling 470M parameters with random numbers takes minutes on the TS backend, and the keys,
// shapes and counts do not depend on the values: `withoutInit` builds a model with the random
// fills skipped (weights stay at their zero allocation). Everything that checks values builds
// models with the real init.
const skip = vi.hoisted(() => ({ on: false }));
vi.mock('../src/init.js', async (importOriginal) => {
  const init = await importOriginal<typeof import('../src/init.js')>();
  const unlessSkipped = <A extends unknown[]>(f: (t: Tensor, ...a: A) => Tensor) =>
    (t: Tensor, ...a: A): Tensor => (skip.on ? t : f(t, ...a));
  return {
    ...init,
    kaimingNormal_: unlessSkipped(init.kaimingNormal_),
    kaimingUniform_: unlessSkipped(init.kaimingUniform_),
    uniform_: unlessSkipped(init.uniform_),
    normal_: unlessSkipped(init.normal_),
  };
});
function withoutInit<T>(build: () => T): T {
  skip.on = true;
  try {
    return build();
  } finally {
    skip.on = false;
  }
}

interface Fixture {
  torchvision: string;
  models: Record<string, { numParams: number; keys: string[] }>;
  dilatedResnet50: { replaceStrideWithDilation: [boolean, boolean, boolean]; convs: string[]; featureSize64: number[] }[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/torchvision_resnet_keys.json', import.meta.url), 'utf8')) as Fixture;

// Counts as torchvision's model cards publish them (independent of the fixture file).
const models: [string, (o?: ResNetOptions) => ResNet, number][] = [
  ['resnet18', resnet18, 11_689_512],
  ['resnet34', resnet34, 21_797_672],
  ['resnet50', resnet50, 25_557_032],
  ['resnet101', resnet101, 44_549_160],
  ['resnet152', resnet152, 60_192_808],
  ['resnext50_32x4d', resnext50_32x4d, 25_028_904],
  ['resnext101_32x8d', resnext101_32x8d, 88_791_336],
  ['wide_resnet50_2', wide_resnet50_2, 68_883_240],
  ['wide_resnet101_2', wide_resnet101_2, 126_886_696],
];

const numParams = (m: Module) => m.parameters().reduce((s, p) => s + p.size, 0);
const describeKeys = (m: Module) => Object.entries(m.stateDict()).map(([k, t]) => `${k}:${t.shape.join(',')}:${t.dtype}`);
const values = (t: Tensor) => Array.from(t.toTypedArray());
function maxAbs(t: Tensor): number {
  let m = 0;
  for (const v of t.toTypedArray()) m = Math.max(m, Math.abs(v));
  return m;
}
function std(v: ArrayLike<number>): number {
  let s = 0, s2 = 0;
  for (let i = 0; i < v.length; i++) { s += v[i]!; s2 += v[i]! * v[i]!; }
  const m = s / v.length;
  return Math.sqrt(s2 / v.length - m * m);
}
const narrow = { widths: [8, 16, 32, 64] } as const;

describe('torchvision architectures', () => {
  test.each(models)('%s: parameter count, stateDict keys in order, shapes and dtypes; output [N, 1000]', (name, make, count) => {
    const model = withoutInit(() => make());
    expect(numParams(model)).toBe(count);
    expect(fixture.models[name]!.numParams).toBe(count);
    expect(describeKeys(model)).toEqual(fixture.models[name]!.keys);
    expect(noGrad(() => model.eval().call(randn([2, 3, 32, 32]))).shape).toEqual([2, 1000]);
  });

  test('replaceStrideWithDilation: every conv stride/padding/dilation/groups and the output stride as torchvision', () => {
    for (const ref of fixture.dilatedResnet50) {
      // Geometry does not depend on width: a narrow resnet50 keeps the depth table and names.
      const model = new ResNet(Bottleneck, [3, 4, 6, 3], { ...narrow, replaceStrideWithDilation: ref.replaceStrideWithDilation });
      const convs = [...model.namedModules()].filter(([, m]) => m instanceof Conv2d)
        .map(([n, m]) => { const c = m as Conv2d; return `${n}:${c.stride[0]}:${c.padding[0]}:${c.dilation[0]}:${c.groups}`; });
      expect(convs).toEqual(ref.convs);
      const f = model.eval().features(randn([1, 3, 64, 64]));
      expect(f.shape).toEqual([1, 64 * 4, ...ref.featureSize64]);
    }
  });
});

/** Fourth standardised moment: 3 for a normal distribution, 1.8 for a uniform one. */
function kurtosis(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i]!;
  m /= v.length;
  let m2 = 0, m4 = 0;
  for (let i = 0; i < v.length; i++) { const d = (v[i]! - m) ** 2; m2 += d; m4 += d * d; }
  return (m4 / v.length) / (m2 / v.length) ** 2;
}
const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;
/** Block i of a stage, typed (Sequential.at gives a Module). */
const blockAt = <B extends Module = BasicBlock | Bottleneck>(stage: Sequential, i: number) => stage.at(i) as B;

describe('initialisation', () => {
  test('as torchvision: convs kaiming normal (fan_out, relu), BN 1/0 with fresh stats, fc PyTorch default; reproducible under manualSeed', () => {
    manualSeed(0);
    const model = resnet18();
    const convs = [...model.namedModules()].filter(([, m]) => m instanceof Conv2d) as [string, Conv2d][];
    expect(convs.length).toBe(20);
    for (const [name, c] of convs) {
      const w = c.weight.toTypedArray();
      const [out, , kh, kw] = c.weight.shape as number[];
      const expected = Math.sqrt(2 / (out! * kh! * kw!));
      // The smallest conv has 8192 weights: the std estimate's relative error is ~0.8%.
      expect(Math.abs(std(w) / expected - 1), name).toBeLessThan(0.05);
      expect(Math.abs(mean(w)), name).toBeLessThan(0.05 * expected);
      expect(c.bias, name).toBeNull();
    }
    // Normal, not the conv's own default uniform init: kurtosis 3 (uniform: 1.8).
    expect(kurtosis(blockAt(model.layer4, 1).conv2.weight.toTypedArray())).toBeCloseTo(3, 1);
    const bns = model.modules().filter((m) => m instanceof BatchNorm2d) as BatchNorm2d[];
    expect(bns.length).toBe(20);
    for (const bn of bns) {
      expect(new Set(values(bn.weight!))).toEqual(new Set([1]));
      expect(new Set(values(bn.bias!))).toEqual(new Set([0]));
      expect(new Set(values(bn.running_mean!))).toEqual(new Set([0]));
      expect(new Set(values(bn.running_var!))).toEqual(new Set([1]));
    }
    // nn.Linear's default: weight and bias U(-1/sqrt(in), 1/sqrt(in)), std bound/sqrt(3).
    const bound = 1 / Math.sqrt(512);
    const fcW = model.fc.weight.toTypedArray();
    expect(maxAbs(model.fc.weight)).toBeLessThanOrEqual(bound);
    expect(Math.abs(std(fcW) / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.02);
    expect(maxAbs(model.fc.bias!)).toBeLessThanOrEqual(bound);
    expect(std(model.fc.bias!.toTypedArray())).toBeGreaterThan(0.4 * bound);

    // Reproducible: the same seed gives the same parameters, another seed others.
    const build = (seed: number) => { manualSeed(seed); return new ResNet(Bottleneck, [1, 1, 1, 1], narrow).stateDict(); };
    const [same, again, other] = [build(0), build(0), build(1)];
    for (const [k, t] of Object.entries(same)) expect(values(again[k]!), k).toEqual(values(t));
    expect(values(other['layer1.0.conv1.weight']!)).not.toEqual(values(same['layer1.0.conv1.weight']!));
  });

  test('zeroInitResidual zeroes the last norm weight of each branch, so every block starts as relu(identity)', () => {
    manualSeed(2);
    for (const [block, name] of [[BasicBlock, 'bn2'], [Bottleneck, 'bn3']] as const) {
      const model = new ResNet(block, [2, 2, 2, 2], { ...narrow, zeroInitResidual: true });
      const plain = new ResNet(block, [2, 2, 2, 2], narrow);
      let x = randn([2, 3, 32, 32]);
      x = noGrad(() => model.maxpool.call(model.relu.call(model.bn1.call(model.conv1.call(x)))));
      for (const stage of [model.layer1, model.layer2, model.layer3, model.layer4]) {
        for (const b of stage) {
          const blk = b as BasicBlock | Bottleneck;
          const last = (blk as unknown as Record<string, BatchNorm2d>)[name]!;
          expect(new Set(values(last.weight!))).toEqual(new Set([0]));
          const { out, residual, identity } = noGrad(() => ({
            out: blk.call(x), residual: blk.residual(x), identity: blk.downsample ? blk.downsample.call(x) : x,
          }));
          expect(new Set(values(residual))).toEqual(new Set([0]));
          expect(values(out)).toEqual(values(relu(identity)));
          x = out;
        }
      }
      // Without the option the branch is live and the weights are 1.
      const first = plain.layer1.at(0) as BasicBlock | Bottleneck;
      expect(new Set(values((first as unknown as Record<string, BatchNorm2d>)[name]!.weight!))).toEqual(new Set([1]));
      const r = noGrad(() => first.residual(randn([2, 8, 8, 8])));
      expect(maxAbs(r)).toBeGreaterThan(0.1);
    }
  });
});

describe('options', () => {
  test('numClasses and inChannels size fc and conv1', () => {
    const model = withoutInit(() => resnet18({ numClasses: 10, inChannels: 1 }));
    expect(model.conv1.weight.shape).toEqual([64, 1, 7, 7]);
    expect(model.fc.weight.shape).toEqual([10, 512]);
    expect(model.fc.bias!.shape).toEqual([10]);
    expect(noGrad(() => model.eval().call(randn([3, 1, 32, 32]))).shape).toEqual([3, 10]);
    expect(numParams(model)).toBe(11_689_512 - 64 * 2 * 49 - 990 * 513);
  });

  test('smallImageStem: 3x3 stride-1 conv1, maxpool an Identity, same keys otherwise; 32x32 keeps 4x4 at layer4', () => {
    const small = withoutInit(() => resnet18({ smallImageStem: true }));
    const std18 = withoutInit(() => resnet18());
    expect(small.conv1.weight.shape).toEqual([64, 3, 3, 3]);
    expect(small.conv1.stride).toEqual([1, 1]);
    expect(small.conv1.padding).toEqual([1, 1]);
    expect(small.maxpool).toBeInstanceOf(Identity);
    expect(std18.maxpool).toBeInstanceOf(MaxPool2d);
    expect([...small.namedModules()].map(([n]) => n)).toEqual([...std18.namedModules()].map(([n]) => n));
    const keys = fixture.models.resnet18!.keys.map((k) => (k.startsWith('conv1.weight:') ? 'conv1.weight:64,3,3,3:float32' : k));
    expect(describeKeys(small)).toEqual(keys);
    const x = randn([1, 3, 32, 32]);
    expect(noGrad(() => small.eval().features(x)).shape).toEqual([1, 512, 4, 4]);
    expect(noGrad(() => std18.eval().features(x)).shape).toEqual([1, 512, 1, 1]);
  });

  test('groups and widthPerGroup set the Bottleneck width floor(planes * wpg / 64) * groups', () => {
    const model = withoutInit(() => new ResNet(Bottleneck, [1, 1, 1, 1], { groups: 4, widthPerGroup: 8, numClasses: 5 }));
    // layer1: planes 64 -> width 32; layer4: planes 512 -> width 256.
    expect(blockAt(model.layer1, 0).conv1.weight.shape).toEqual([32, 64, 1, 1]);
    expect(blockAt(model.layer1, 0).conv2.weight.shape).toEqual([32, 8, 3, 3]);
    expect(blockAt(model.layer1, 0).conv2.groups).toBe(4);
    expect(blockAt(model.layer4, 0).conv2.weight.shape).toEqual([256, 64, 3, 3]);
    expect(blockAt<Bottleneck>(model.layer4, 0).conv3.weight.shape).toEqual([2048, 256, 1, 1]);
    expect(noGrad(() => model.eval().call(randn([1, 3, 32, 32]))).shape).toEqual([1, 5]);
  });

  test('invalid combinations are errors, as torchvision', () => {
    expect(() => new ResNet(BasicBlock, [1, 1, 1, 1], { ...narrow, groups: 2 })).toThrow(/BasicBlock.*groups=2/);
    expect(() => new ResNet(BasicBlock, [1, 1, 1, 1], { ...narrow, widthPerGroup: 32 })).toThrow(/BasicBlock.*baseWidth=32/);
    // The first block of a dilated stage keeps the previous dilation: the second one has 2.
    expect(() => new ResNet(BasicBlock, [1, 1, 1, 2], { ...narrow, replaceStrideWithDilation: [false, false, true] }))
      .toThrow(/BasicBlock: dilation > 1/);
    expect(() => new ResNet(BasicBlock, [1, 1, 1], narrow)).toThrow(/4 stage depths/);
    expect(() => resnext50_32x4d({ groups: 8 })).toThrow(/resnext50_32x4d: groups is fixed at 32 by the architecture, got 8/);
    expect(() => wide_resnet50_2({ widthPerGroup: 64 })).toThrow(/widthPerGroup is fixed at 128/);
  });

  test('normLayer: the factory builds every norm (bn1, bn1..bn3 in blocks, downsample.1), and is what init and zeroInitResidual touch', () => {
    class TaggedNorm extends BatchNorm2d {}
    const sizes: number[] = [];
    const model = new ResNet(Bottleneck, [1, 1, 1, 1], {
      ...narrow, zeroInitResidual: true, normLayer: (n) => { sizes.push(n); return new TaggedNorm(n, { eps: 1e-3 }); },
    });
    const norms = [...model.namedModules()].filter(([, m]) => m instanceof BatchNormBase);
    expect(norms.every(([, m]) => m instanceof TaggedNorm && m.eps === 1e-3)).toBe(true);
    expect(norms.map(([n]) => n)).toEqual([
      'bn1',
      ...[1, 2, 3, 4].flatMap((l) => [`layer${l}.0.bn1`, `layer${l}.0.bn2`, `layer${l}.0.bn3`, `layer${l}.0.downsample.1`]),
    ]);
    // torchvision's order: each stage's downsample norm is built before its first block.
    expect(sizes).toEqual([8, 32, 8, 8, 32, 64, 16, 16, 64, 128, 32, 32, 128, 256, 64, 64, 256]);
    expect(new Set(values((blockAt<Bottleneck>(model.layer2, 0).bn3 as BatchNorm2d).weight!))).toEqual(new Set([0]));

    // A norm that is not a BatchNorm (here none at all): no bn keys, and the model still runs.
    const bare = new ResNet(BasicBlock, [1, 1, 1, 1], { ...narrow, normLayer: () => new Identity() });
    expect(Object.keys(bare.stateDict()).filter((k) => /bn|downsample\.1/.test(k))).toEqual([]);
    expect(blockAt(bare.layer2, 0).bn1).toBeInstanceOf(Identity);
    expect(noGrad(() => bare.call(randn([1, 3, 32, 32]))).shape).toEqual([1, 1000]);
  });

  test('widths (nodegrad extension) narrows the stages and keeps torchvision key names', () => {
    const model = new ResNet(Bottleneck, [3, 4, 6, 3], { ...narrow, numClasses: 7 });
    const names = (keys: string[]) => keys.map((k) => k.split(':')[0]);
    expect(names(describeKeys(model))).toEqual(names(fixture.models.resnet50!.keys));
    expect(model.conv1.weight.shape).toEqual([8, 3, 7, 7]);
    expect(model.fc.weight.shape).toEqual([7, 256]);
  });

  test('forward is differentiable end to end: every parameter gets a gradient', () => {
    manualSeed(4);
    const model = new ResNet(Bottleneck, [1, 1, 1, 1], { ...narrow, numClasses: 3, smallImageStem: true });
    const out = model.call(randn([2, 3, 16, 16]));
    out.sum().backward();
    const missing = model.namedParameters().filter(([, p]) => !p.grad).map(([n]) => n);
    expect(missing).toEqual([]);
    expect(maxAbs(model.conv1.weight.grad!)).toBeGreaterThan(0);
  });
});
