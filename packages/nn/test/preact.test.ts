// Pre-activation ResNets against timm's ResNetV2 (fixtures/timm_resnetv2_keys.json, from
// scripts/fixtures/make_preact_keys.py): state-dict keys in order with shapes, parameter counts,
// strict loading; timm's initialisation; the small-image stem; gradients through a small one.
// The training-step golden against timm's resnetv2_50 is in golden_suite.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { crossEntropy, manualSeed, noGrad, randn, tensor, type Tensor } from '@nodegrad/autograd';
import { formulaInput, formulaStateDict, tensorCrc32 } from './golden_weights.js';
import { gradcheck } from '@nodegrad/autograd/testing';
import {
  BatchNorm2d, Conv2d, Identity, PreActBasicBlock, PreActBottleneck, PreActResNet, preactResnet18, preactResnet34, preactResnet50,
  preactResnet101, preactResnet152, type PreActResNetOptions,
} from '@nodegrad/nn';

interface Fixture {
  timm: string;
  models: Record<string, { numParams: number; keys: string[] }>;
  evalResnetv2_101: { inputKey: number; inputShape: number[]; inputCrc32: number; logits: number[] };
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/timm_resnetv2_keys.json', import.meta.url), 'utf8')) as Fixture;

const keysOf = (m: PreActResNet) =>
  Object.entries(m.stateDict()).map(([k, t]) => `${k}:${t.shape.join(',')}:${t.dtype}`);
const numParams = (m: PreActResNet) => m.parameters().reduce((n, p) => n + p.size, 0);
/** stages.S.blocks, as a list of blocks. */
const blocksOf = <B>(m: PreActResNet, s: number) => m.stages.children()[s]!.children()[0]!.children() as unknown as B[];

describe("pre-activation ResNets as timm's ResNetV2", () => {
  const cases: [string, (o?: PreActResNetOptions) => PreActResNet][] = [
    ['resnetv2_50', preactResnet50], ['resnetv2_101', preactResnet101], ['resnetv2_152', preactResnet152],
  ];
  for (const [name, build] of cases) {
    it(`${name}: the same state-dict keys, in order, with shapes and dtypes, and parameter count`, () => {
      const m = build();
      expect(keysOf(m)).toEqual(fixture.models[name]!.keys);
      expect(numParams(m)).toBe(fixture.models[name]!.numParams);
    });
  }

  it("resnetv2_101: eval logits equal timm's in float64 for the golden formula's weights and input", () => {
    const e = fixture.evalResnetv2_101;
    const entries = fixture.models.resnetv2_101!.keys.map((k) => {
      const [name, shape] = k.split(':') as [string, string];
      return [name, shape ? shape.split(',').map(Number) : []] as const;
    });
    const m = preactResnet101();
    expect(m.loadStateDict(formulaStateDict(entries))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    m.to('float64').eval();
    const x = formulaInput(e.inputKey, e.inputShape);
    expect(tensorCrc32(x)).toBe(e.inputCrc32);
    const logits = noGrad(() => m.call(x.to('float64')) as Tensor).toTypedArray();
    const scale = Math.max(...e.logits.map(Math.abs));
    const worst = e.logits.reduce((w, v, i) => Math.max(w, Math.abs(logits[i]! - v)), 0) / scale;
    expect(worst).toBeLessThan(1e-9);
  }, 120_000);

  it('a state dict of the same layout loads strictly, and a foreign key is named', () => {
    const a = preactResnet50({ numClasses: 10 }), b = preactResnet50({ numClasses: 10 });
    expect(b.loadStateDict(a.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(() => b.loadStateDict({ ...a.stateDict(), 'fc.weight': tensor([1]) }))
      .toThrow(/fc\.weight/);
  });

  it("timm's initialisation: each block's last conv zero (zeroInitLast), head.fc normal(0, 0.01), norms 1 and 0", () => {
    manualSeed(5);
    const m = preactResnet50();
    const stats = (t: Tensor) => { const a = t.toTypedArray(); let s = 0, q = 0; for (const v of a) { s += v; q += v * v; } return { mean: s / a.length, std: Math.sqrt(q / a.length) }; };
    const block = blocksOf<PreActBottleneck>(m, 0)[0]!;
    expect(Math.max(...Array.from(block.conv3.weight.toTypedArray()).map(Math.abs))).toBe(0);
    expect(stats(block.conv1.weight).std).toBeCloseTo(Math.sqrt(2 / 64), 2); // kaiming fan_out: 2 / (64 x 1 x 1)
    const fc = stats(m.head.fc.weight);
    expect(fc.std).toBeCloseTo(0.01, 3);
    expect(Array.from(m.head.fc.bias!.toTypedArray()).every((v) => v === 0)).toBe(true);
    expect(Array.from((block.norm1 as BatchNorm2d).weight!.toTypedArray()).every((v) => v === 1)).toBe(true);
    const kept = blocksOf<PreActBottleneck>(preactResnet50({ zeroInitLast: false }), 0)[0]!;
    expect(stats(kept.conv3.weight).std).toBeGreaterThan(0.01);
  });

  it('18 and 34 use PreActBasicBlock; the first block of every stage projects its shortcut', () => {
    for (const [m, depth] of [[preactResnet18(), [2, 2, 2, 2]], [preactResnet34(), [3, 4, 6, 3]]] as const) {
      const stages = [0, 1, 2, 3].map((s) => blocksOf<PreActBasicBlock>(m, s));
      expect(stages.map((b) => b.length)).toEqual(depth);
      for (const b of stages) {
        expect(b[0]).toBeInstanceOf(PreActBasicBlock);
        expect(b[0]!.downsample).not.toBeNull();
        expect(b[1]!.downsample).toBeNull();
      }
    }
    expect(blocksOf(preactResnet50(), 0)[0]).toBeInstanceOf(PreActBottleneck);
  });

  it('the small-image stem: 3x3 stride 1, no pool; a 32 px input gives a 4x4 map', () => {
    const m = preactResnet18({ smallImageStem: true, numClasses: 10, widths: [8, 8, 16, 16] });
    const [conv, pool] = m.stem.children() as [Conv2d, Identity];
    expect(conv.kernelSize).toEqual([3, 3]);
    expect(pool).toBeInstanceOf(Identity);
    m.eval();
    expect(m.features(randn([1, 3, 32, 32])).shape).toEqual([1, 16, 4, 4]);
    expect((m.call(randn([2, 3, 32, 32])) as Tensor).shape).toEqual([2, 10]);
  });

  it('gradcheck of a tiny pre-activation ResNet in float64 (train mode, batch statistics)', () => {
    manualSeed(9);
    const m = preactResnet18({ smallImageStem: true, numClasses: 3, widths: [2, 2, 2, 2], zeroInitLast: false, inChannels: 1 });
    m.to('float64');
    const x = randn([2, 1, 8, 8], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((t) => crossEntropy(m.call(t) as Tensor, tensor([0, 2], { dtype: 'int64' })), [x], { atol: 1e-6 })).toBe(true);
  });

  it('option errors name the option', () => {
    expect(() => new PreActResNet(PreActBottleneck, [3, 4, 6])).toThrow(/^PreActResNet: layers must list 4 stage depths, got \[3, 4, 6\]$/);
    expect(() => preactResnet50({ widths: [1, 2, 3] as unknown as [number, number, number, number] }))
      .toThrow(/^PreActResNet: widths must have 4 entries, got 3$/);
  });
});
