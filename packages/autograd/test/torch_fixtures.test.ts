/**
 * nodegrad against values PyTorch computed: conv2d, pooling, batchNorm, logSoftmax, crossEntropy
 * and a double backward through conv + tanh. The fixtures are written by
 * scripts/fixtures/make_autograd_fixtures.py (see scripts/fixtures/README.md); this test needs no
 * Python. Each case runs in float64 (to 1e-10) and in float32 (to 1e-5 relative). The fixture
 * inputs are float32-representable, so the float32 run starts from exactly the same numbers and
 * only its arithmetic differs.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, avgPool2d, batchNorm, conv2d, crossEntropy, fromTypedArray, grad, logSoftmax,
  maxPool2dWithIndices, type FloatDType, type Tensor,
} from '@nodegrad/autograd';

interface J { dtype: 'float64' | 'int64'; shape: number[]; data: number[] }
type Pair = [number, number];
interface Fixture<C> { generator: string; torch: string; cases: C[] }

interface ConvCase {
  name: string; x: J; weight: J; bias: J | null; stride: Pair; padding: Pair; dilation: Pair;
  groups: number; y: J; gradOutput: J; grad: { x: J; weight: J; bias: J | null };
}
interface PoolCase {
  name: string; op: 'maxPool2d' | 'avgPool2d' | 'adaptiveAvgPool2d'; x: J; kernelSize?: Pair;
  stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean; countIncludePad?: boolean;
  outputSize?: Pair; indices?: J; y: J; gradOutput: J; grad: { x: J };
}
interface BnStep {
  training: boolean; x: J; y: J; gradOutput: J; grad: { x: J; weight: J; bias: J };
  runningMean: J; runningVar: J; numBatchesTracked: number;
}
interface BnCase {
  name: string; weight: J; bias: J; momentum: number | null; eps: number; runningMean0: J;
  runningVar0: J; steps: BnStep[];
}
interface XentCase {
  name: string; input: J; target: J; weight: J | null; ignoreIndex: number;
  reduction: 'mean' | 'sum' | 'none'; labelSmoothing: number; y: J; gradOutput: J; grad: { input: J };
}
interface LogSoftmaxCase { name: string; x: J; dim: number; y: J; gradOutput: J; grad: { x: J } }
interface DoubleCase {
  name: string; x: J; weight: J; stride: Pair; padding: Pair; y: J; v: J; u1: J; u2: J;
  grad: { x: J; weight: J }; gradGrad: { x: J; weight: J };
}

function load<C>(file: string): Fixture<C> {
  const url = new URL(`./fixtures/${file}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Fixture<C>;
}

/** A fixture tensor in the dtype under test (int64 stays int64: class indices). */
function t(j: J, dtype: FloatDType, requiresGrad = false): Tensor {
  const d = j.dtype === 'int64' ? 'int64' : dtype;
  return fromTypedArray(Float64Array.from(j.data), j.shape, { dtype: d, requiresGrad });
}

/**
 * The index of the worst element if `actual` is not within tolerance of `expected`, else -1.
 * float64: |a - e| <= 1e-10 + 1e-10 |e|. float32: |a - e| <= 1e-5 (|e| + max |e|), i.e. 1e-5
 * relative to the element or to the tensor's largest magnitude, since sums that cancel lose
 * relative accuracy elementwise in float32 while staying accurate against the tensor's scale.
 */
function worst(actual: ArrayLike<number>, expected: readonly number[], dtype: FloatDType): { i: number; tol: number } {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let i = -1;
  let excess = 0;
  let tol = 0;
  for (let k = 0; k < expected.length; k++) {
    const e = expected[k]!;
    const a = actual[k]!;
    const bound = dtype === 'float64' ? 1e-10 + 1e-10 * Math.abs(e) : 1e-5 * (Math.abs(e) + scale);
    const over = Number.isNaN(a) ? Infinity : Math.abs(a - e) / bound;
    if (over > 1 && over > excess) [i, excess, tol] = [k, over, bound];
  }
  return { i, tol };
}

function expectClose(actual: Tensor | null | undefined, expected: J, dtype: FloatDType, what: string): void {
  if (!actual) throw new Error(`${what}: no tensor (expected shape [${expected.shape.join(', ')}])`);
  expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
  expect(actual.dtype, `${what}: dtype`).toBe(dtype);
  const a = actual.toTypedArray();
  const { i, tol } = worst(a, expected.data, dtype);
  if (i >= 0) {
    throw new Error(`${what} (${dtype}): element ${i} of [${expected.shape.join(', ')}] is ${a[i]}, ` +
      `PyTorch gives ${expected.data[i]} (|diff| ${Math.abs(a[i]! - expected.data[i]!)} > ${tol})`);
  }
}

const dtypes: FloatDType[] = ['float64', 'float32'];
const convF = load<ConvCase>('conv2d');
const poolF = load<PoolCase>('pool');
const bnF = load<BnCase>('batch_norm');
const xentF = load<XentCase>('cross_entropy');
const lsmF = load<LogSoftmaxCase>('log_softmax');
const dblF = load<DoubleCase>('double_backward');

describe('fixture comparison', () => {
  it('the tolerance check catches a small error and passes the exact values', () => {
    const c = convF.cases[0]!;
    const exact = Float64Array.from(c.y.data);
    expect(worst(exact, c.y.data, 'float64').i).toBe(-1);
    const off = Float64Array.from(c.y.data);
    off[5] = off[5]! * (1 + 1e-8);
    expect(worst(off, c.y.data, 'float64').i).toBe(5);
    const off32 = Float32Array.from(c.y.data);
    off32[7] = off32[7]! + 1e-4 * Math.max(...c.y.data.map(Math.abs));
    expect(worst(off32, c.y.data, 'float32').i).toBe(7);
    expect(worst(Float32Array.from(c.y.data), c.y.data, 'float32').i).toBe(-1);
  });
  it('every fixture file records the torch version and holds cases', () => {
    for (const f of [convF, poolF, bnF, xentF, lsmF, dblF]) {
      expect(f.torch).toMatch(/^\d+\.\d+/);
      expect(f.cases.length).toBeGreaterThan(0);
    }
  });
});

describe.each(dtypes)('PyTorch fixtures, %s', (dtype) => {
  it.each(convF.cases.map((c) => [c.name, c] as const))('conv2d: %s', (_, c) => {
    const x = t(c.x, dtype, true);
    const w = t(c.weight, dtype, true);
    const b = c.bias ? t(c.bias, dtype, true) : undefined;
    const y = conv2d(x, w, b, { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });
    expectClose(y, c.y, dtype, `${c.name}: y`);
    const inputs = b ? [x, w, b] : [x, w];
    const g = grad([y], inputs, { gradOutputs: [t(c.gradOutput, dtype)] });
    expectClose(g[0], c.grad.x, dtype, `${c.name}: dx`);
    expectClose(g[1], c.grad.weight, dtype, `${c.name}: dweight`);
    if (c.grad.bias) expectClose(g[2], c.grad.bias, dtype, `${c.name}: dbias`);
  });

  it.each(poolF.cases.map((c) => [`${c.op}: ${c.name}`, c] as const))('%s', (_, c) => {
    const x = t(c.x, dtype, true);
    let y: Tensor;
    if (c.op === 'maxPool2d') {
      let indices: Tensor;
      [y, indices] = maxPool2dWithIndices(x, c.kernelSize!,
        { stride: c.stride!, padding: c.padding!, dilation: c.dilation!, ceilMode: c.ceilMode! });
      expect(indices.dtype).toBe('int64');
      expect(indices.shape).toEqual(c.indices!.shape);
      expect(Array.from(indices.toTypedArray()), `${c.name}: indices`).toEqual(c.indices!.data);
    } else if (c.op === 'avgPool2d') {
      y = avgPool2d(x, c.kernelSize!, {
        stride: c.stride!, padding: c.padding!, ceilMode: c.ceilMode!, countIncludePad: c.countIncludePad!,
      });
    } else {
      y = adaptiveAvgPool2d(x, c.outputSize!);
    }
    expectClose(y, c.y, dtype, `${c.name}: y`);
    const [gx] = grad([y], [x], { gradOutputs: [t(c.gradOutput, dtype)] });
    expectClose(gx, c.grad.x, dtype, `${c.name}: dx`);
  });

  it.each(bnF.cases.map((c) => [c.name, c] as const))('batchNorm, two training steps then eval: %s', (_, c) => {
    const w = t(c.weight, dtype, true);
    const b = t(c.bias, dtype, true);
    const runningMean = t(c.runningMean0, dtype);
    const runningVar = t(c.runningVar0, dtype);
    const numBatchesTracked = fromTypedArray(Float64Array.of(0), [], { dtype: 'int64' });
    c.steps.forEach((s, k) => {
      const what = `${c.name}, step ${k + 1} (${s.training ? 'training' : 'eval'})`;
      const x = t(s.x, dtype, true);
      const y = batchNorm(x, runningMean, runningVar, w, b,
        { training: s.training, momentum: c.momentum, eps: c.eps, numBatchesTracked });
      expect(numBatchesTracked.item(), `${what}: numBatchesTracked`).toBe(s.numBatchesTracked);
      expectClose(y, s.y, dtype, `${what}: y`);
      expectClose(runningMean, s.runningMean, dtype, `${what}: runningMean`);
      expectClose(runningVar, s.runningVar, dtype, `${what}: runningVar`);
      const [gx, gw, gb] = grad([y], [x, w, b], { gradOutputs: [t(s.gradOutput, dtype)] });
      expectClose(gx, s.grad.x, dtype, `${what}: dx`);
      expectClose(gw, s.grad.weight, dtype, `${what}: dweight`);
      expectClose(gb, s.grad.bias, dtype, `${what}: dbias`);
    });
  });

  it.each(xentF.cases.map((c) => [c.name, c] as const))('crossEntropy: %s', (_, c) => {
    const input = t(c.input, dtype, true);
    const y = crossEntropy(input, t(c.target, dtype), {
      weight: c.weight ? t(c.weight, dtype) : undefined,
      ignoreIndex: c.ignoreIndex, reduction: c.reduction, labelSmoothing: c.labelSmoothing,
    });
    expectClose(y, c.y, dtype, `${c.name}: loss`);
    const [gi] = grad([y], [input], { gradOutputs: [t(c.gradOutput, dtype)] });
    expectClose(gi, c.grad.input, dtype, `${c.name}: dinput`);
  });

  it.each(lsmF.cases.map((c) => [c.name, c] as const))('logSoftmax: %s', (_, c) => {
    const x = t(c.x, dtype, true);
    const y = logSoftmax(x, c.dim);
    expectClose(y, c.y, dtype, `${c.name}: y`);
    const [gx] = grad([y], [x], { gradOutputs: [t(c.gradOutput, dtype)] });
    expectClose(gx, c.grad.x, dtype, `${c.name}: dx`);
  });

  it.each(dblF.cases.map((c) => [c.name, c] as const))('double backward: %s', (_, c) => {
    const x = t(c.x, dtype, true);
    const w = t(c.weight, dtype, true);
    const y = conv2d(x, w, undefined, { stride: c.stride, padding: c.padding }).tanh();
    expectClose(y, c.y, dtype, `${c.name}: y`);
    const [gx, gw] = grad([y], [x, w], { gradOutputs: [t(c.v, dtype)], createGraph: true });
    expectClose(gx, c.grad.x, dtype, `${c.name}: dx`);
    expectClose(gw, c.grad.weight, dtype, `${c.name}: dweight`);
    const s = gx!.mul(t(c.u1, dtype)).sum().add(gw!.mul(t(c.u2, dtype)).sum());
    const [ggx, ggw] = grad([s], [x, w]);
    expectClose(ggx, c.gradGrad.x, dtype, `${c.name}: d(sum(dx*u1) + sum(dw*u2))/dx`);
    expectClose(ggw, c.gradGrad.weight, dtype, `${c.name}: d(sum(dx*u1) + sum(dw*u2))/dweight`);
  });
});
