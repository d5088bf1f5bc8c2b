/**
 * Layers on every backend: shapes and values against autograd's functional ops and hand
 * computations, PyTorch's default init bounds, BatchNorm2d's outputs and running statistics
 * over two training steps and an eval step against PyTorch (fixtures/nn_layers.json, written by
 * scripts/fixtures/make_nn_layer_fixtures.py), and toString() against PyTorch's str(module).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, arange, avgPool2d, conv2d, linear, manualSeed, maxPool2d, noGrad, randn, relu, sum,
  tensor, type Tensor,
} from '@nodegrad/autograd';
import { checkParity, describeBackends, gradcheck } from '@nodegrad/autograd/testing';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, Identity, Linear,
  MaxPool2d, ReLU, Sequential, type Module,
} from '@nodegrad/nn';

interface BnStep { output: number[]; running_mean: number[] | null; running_var: number[] | null; num_batches_tracked: number | null }
interface BnCase {
  name: string; options: Record<string, number | boolean | null>; weight: number[] | null; bias: number[] | null;
  x1: number[]; x2: number[]; steps: BnStep[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/nn_layers.json', import.meta.url), 'utf8')) as {
  batchNorm: BnCase[]; reprs: [string, string][];
};
const repr = (k: string) => fixture.reprs.find(([n]) => n === k)![1];

const values = (t: Tensor) => Array.from(t.toTypedArray());

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Math.abs(a - e) > tol * (1 + Math.abs(e))) expect.fail(`element ${i}: ${a} vs ${e} (tol ${tol})`);
  }
}

function stats(v: ArrayLike<number>): { mean: number; std: number; maxAbs: number } {
  let s = 0, q = 0, m = 0;
  for (let i = 0; i < v.length; i++) { s += v[i]!; m = Math.max(m, Math.abs(v[i]!)); }
  const mean = s / v.length;
  for (let i = 0; i < v.length; i++) q += (v[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(q / v.length), maxAbs: m };
}

describeBackends(describe, 'Conv2d', (device) => {
  const opts = { device };

  it('has torch-shaped parameters and equals the functional conv2d with its options', () => {
    const c = new Conv2d(4, 6, [3, 2], { stride: 2, padding: [1, 0], dilation: [1, 2], groups: 2, device });
    expect(c.weight.shape).toEqual([6, 2, 3, 2]);
    expect(c.bias!.shape).toEqual([6]);
    const x = randn([2, 4, 7, 8], opts);
    const y = c.call(x);
    const ref = conv2d(x, c.weight, c.bias, { stride: 2, padding: [1, 0], dilation: [1, 2], groups: 2 });
    expect(y.shape).toEqual(ref.shape);
    expect(y.shape).toEqual([2, 6, 4, 3]);
    expect(values(y)).toEqual(values(ref));
    expect(new Conv2d(3, 5, 1, { bias: false, device }).bias).toBeNull();
  });

  it('computes a hand-checked 2x2 convolution with bias', () => {
    const c = new Conv2d(1, 1, 2, { device });
    noGrad(() => {
      c.weight.copy_(tensor([[[[1, 2], [3, 4]]]], opts));
      c.bias!.copy_(tensor([0.5], opts));
    });
    const x = arange(9, undefined, 1, opts).reshape([1, 1, 3, 3]);
    // [0 1 2; 3 4 5; 6 7 8]: top-left window 0*1 + 1*2 + 3*3 + 4*4 = 27, then +10 per column, +30 per row.
    expect(values(c.call(x))).toEqual([27.5, 37.5, 57.5, 67.5]);
  });

  it("supports padding 'same' and 'valid'", () => {
    const same = new Conv2d(2, 3, 3, { padding: 'same', dilation: 2, device });
    const x = randn([1, 2, 6, 5], opts);
    expect(same.call(x).shape).toEqual([1, 3, 6, 5]);
    // 'same' pads dilation * (k - 1) = 4 in all, 2 on each side.
    expect(values(same.call(x))).toEqual(values(conv2d(x, same.weight, same.bias, { padding: 2, dilation: 2 })));
    const valid = new Conv2d(2, 3, 3, { padding: 'valid', device });
    expect(valid.call(x).shape).toEqual([1, 3, 4, 3]);
    expect(() => new Conv2d(2, 3, 3, { padding: 'same', stride: 2 })).toThrow(/padding='same' is not supported for strided/);
  });

  it('initializes as PyTorch: weight and bias in U(-1/sqrt(fanIn), 1/sqrt(fanIn))', () => {
    manualSeed(11);
    const c = new Conv2d(32, 64, 3, { groups: 2, device });
    const bound = 1 / Math.sqrt(16 * 9);
    const w = stats(c.weight.toTypedArray());
    expect(w.maxAbs).toBeLessThanOrEqual(bound);
    expect(w.maxAbs).toBeGreaterThan(0.99 * bound);
    expect(w.std).toBeCloseTo(bound / Math.sqrt(3), 3);
    expect(Math.abs(w.mean)).toBeLessThan(0.02 * bound);
    const b = stats(c.bias!.toTypedArray());
    expect(b.maxAbs).toBeLessThanOrEqual(bound);
    expect(b.maxAbs).toBeGreaterThan(0.5 * bound);
  });

  it('is reproducible under manualSeed', () => {
    manualSeed(3);
    const a = new Conv2d(3, 4, 3, { device });
    manualSeed(3);
    const b = new Conv2d(3, 4, 3, { device });
    manualSeed(4);
    const c = new Conv2d(3, 4, 3, { device });
    expect(values(a.weight)).toEqual(values(b.weight));
    expect(values(a.bias!)).toEqual(values(b.bias!));
    expect(values(a.weight)).not.toEqual(values(c.weight));
  });

  it('checks its arguments', () => {
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(/inChannels \(3\) must be divisible by groups \(2\)/);
    expect(() => new Conv2d(4, 3, 3, { groups: 2 })).toThrow(/outChannels \(3\) must be divisible by groups \(2\)/);
    expect(() => new Conv2d(4, 4, 0)).toThrow(/kernelSize must be an integer >= 1/);
    expect(() => new Conv2d(4, 4, 3).call(randn([1, 3, 5, 5]))).toThrow(/conv2d/);
  });
}, { needs: [['Conv2D', 'float32']] });

describeBackends(describe, 'Linear, Identity, Flatten', (device) => {
  const opts = { device };

  it('computes x W^T + b by hand and over leading dims', () => {
    const l = new Linear(3, 2, { device });
    noGrad(() => {
      l.weight.copy_(tensor([[1, 0, -1], [2, 1, 0.5]], opts));
      l.bias!.copy_(tensor([0.25, -1], opts));
    });
    expect(values(l.call(tensor([[1, 2, 3]], opts)))).toEqual([1 - 3 + 0.25, 2 + 2 + 1.5 - 1]);
    const x = randn([2, 5, 3], opts);
    expect(l.call(x).shape).toEqual([2, 5, 2]);
    expect(values(l.call(x))).toEqual(values(linear(x, l.weight, l.bias)));
    expect(new Linear(3, 2, { bias: false }).bias).toBeNull();
  });

  it('initializes as PyTorch: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias', () => {
    manualSeed(12);
    const l = new Linear(400, 300, { device });
    const w = stats(l.weight.toTypedArray());
    expect(w.maxAbs).toBeLessThanOrEqual(0.05);
    expect(w.maxAbs).toBeGreaterThan(0.0499);
    expect(w.std).toBeCloseTo(0.05 / Math.sqrt(3), 3);
    const b = stats(l.bias!.toTypedArray());
    expect(b.maxAbs).toBeLessThanOrEqual(0.05);
    expect(b.std).toBeGreaterThan(0.02);
  });

  it('Identity returns its input; Flatten merges the chosen dims', () => {
    const x = randn([2, 3, 4, 5], opts);
    expect(new Identity().call(x)).toBe(x);
    expect(new Flatten().call(x).shape).toEqual([2, 60]);
    expect(new Flatten(0, 1).call(x).shape).toEqual([6, 4, 5]);
    expect(new Flatten(1, 2).call(x).shape).toEqual([2, 12, 5]);
    expect(values(new Flatten().call(x))).toEqual(values(x));
  });
}, { needs: [['BatchMatMul', 'float32']] });

describeBackends(describe, 'ReLU, Dropout, pooling', (device) => {
  const opts = { device };
  const grid = () => arange(16, undefined, 1, opts).reshape([1, 1, 4, 4]);

  it('ReLU clamps negatives', () => {
    const x = tensor([-2, -0.5, 0, 0.5, 3], opts);
    expect(values(new ReLU().call(x))).toEqual([0, 0, 0, 0.5, 3]);
    const y = randn([3, 4], opts);
    expect(values(new ReLU().call(y))).toEqual(values(relu(y)));
  });

  it('MaxPool2d and AvgPool2d default the stride to the kernel size (hand values)', () => {
    expect(values(new MaxPool2d(2).call(grid()))).toEqual([5, 7, 13, 15]);
    expect(values(new AvgPool2d(2).call(grid()))).toEqual([2.5, 4.5, 10.5, 12.5]);
  });

  it('MaxPool2d and AvgPool2d pass their options to the functional ops', () => {
    const x = randn([2, 3, 7, 6], opts);
    const mp = new MaxPool2d(3, { stride: 2, padding: 1, dilation: 1, ceilMode: true });
    expect(values(mp.call(x))).toEqual(values(maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true })));
    const ap = new AvgPool2d([3, 2], { stride: 1, padding: 1, countIncludePad: false });
    expect(values(ap.call(x))).toEqual(values(avgPool2d(x, [3, 2], { stride: 1, padding: 1, countIncludePad: false })));
    // countIncludePad: a corner 2x2 window of a padded 3x3 kernel holds 4 of 9 real cells.
    const ones = tensor([[[[1, 1], [1, 1]]]], opts);
    expect(values(new AvgPool2d(3, { stride: 1, padding: 1 }).call(ones))).toEqual(new Array(4).fill(4 / 9).map((v) => Math.fround(v)));
    expect(values(new AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }).call(ones))).toEqual([1, 1, 1, 1]);
  });

  it('AdaptiveAvgPool2d averages to the requested size', () => {
    expect(values(new AdaptiveAvgPool2d(1).call(grid()))).toEqual([7.5]);
    expect(values(new AdaptiveAvgPool2d([2, 2]).call(grid()))).toEqual([2.5, 4.5, 10.5, 12.5]);
    const x = randn([2, 3, 5, 7], opts);
    const p = new AdaptiveAvgPool2d([3, null]);
    expect(p.call(x).shape).toEqual([2, 3, 3, 7]);
    expect(values(p.call(x))).toEqual(values(adaptiveAvgPool2d(x, [3, null])));
  });

  it('Dropout zeroes about p of the elements in training, scales the rest, and is the identity in eval', () => {
    manualSeed(7);
    const d = new Dropout(0.25);
    const x = randn([100, 100], opts);
    const y = values(d.call(x)), xs = values(x);
    const zeros = y.filter((v) => v === 0).length / y.length;
    expect(zeros).toBeGreaterThan(0.235);
    expect(zeros).toBeLessThan(0.265);
    y.forEach((v, i) => { if (v !== 0) expect(v).toBeCloseTo(xs[i]! / 0.75, 5); });
    manualSeed(7);
    randn([100, 100], opts);
    expect(values(d.call(x))).toEqual(y);
    d.eval();
    expect(d.call(x)).toBe(x);
    expect(() => new Dropout(1.5)).toThrow(/between 0 and 1/);
  });
});

describeBackends(describe, 'BatchNorm2d', (device) => {
  it('has torch names: weight, bias; running_mean, running_var, num_batches_tracked (int64)', () => {
    const bn = new BatchNorm2d(3, { device });
    expect(Object.keys(bn.stateDict())).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(values(bn.weight!)).toEqual([1, 1, 1]);
    expect(values(bn.bias!)).toEqual([0, 0, 0]);
    expect(values(bn.running_mean!)).toEqual([0, 0, 0]);
    expect(values(bn.running_var!)).toEqual([1, 1, 1]);
    expect([bn.num_batches_tracked!.dtype, bn.num_batches_tracked!.shape]).toEqual(['int64', []]);
    expect(Object.keys(new BatchNorm2d(3, { affine: false }).stateDict()))
      .toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
    expect(Object.keys(new BatchNorm2d(3, { trackRunningStats: false }).stateDict())).toEqual(['weight', 'bias']);
  });

  for (const c of fixture.batchNorm) {
    it(`matches PyTorch over two training steps and an eval step: ${c.name}`, () => {
      const bn = new BatchNorm2d(2, { ...c.options, device });
      if (c.weight) {
        noGrad(() => {
          bn.weight!.copy_(tensor(c.weight!, { device }));
          bn.bias!.copy_(tensor(c.bias!, { device }));
        });
      }
      const x1 = tensor(c.x1, { device }).reshape([3, 2, 2, 2]);
      const x2 = tensor(c.x2, { device }).reshape([3, 2, 2, 2]);
      const inputs = [x1, x2, x1];
      c.steps.forEach((step, i) => {
        if (i === 2) bn.eval();
        const y = bn.call(inputs[i]!);
        expectClose(y.toTypedArray(), step.output, 2e-5);
        if (step.running_mean) {
          expectClose(bn.running_mean!.toTypedArray(), step.running_mean, 1e-6);
          expectClose(bn.running_var!.toTypedArray(), step.running_var!, 1e-6);
          expect(bn.num_batches_tracked!.item()).toBe(step.num_batches_tracked);
        } else {
          expect(bn.running_mean).toBeNull();
        }
      });
    });
  }

  it('with momentum null the running mean is the average of the batch means (hand computation)', () => {
    const bn = new BatchNorm2d(1, { momentum: null, device });
    const batches = [[1, 2, 3, 6], [10, 10, 14, 14], [-1, 1, -3, 3]];
    batches.forEach((b) => bn.call(tensor(b, { device }).reshape([4, 1, 1, 1])));
    // Batch means 3, 12, 0; unbiased variances 14/3, 16/3, 20/3.
    expectClose(bn.running_mean!.toTypedArray(), [(3 + 12 + 0) / 3], 1e-6);
    expectClose(bn.running_var!.toTypedArray(), [(14 / 3 + 16 / 3 + 20 / 3) / 3], 1e-6);
    expect(bn.num_batches_tracked!.item()).toBe(3);
  });

  it('eval leaves running statistics and the counter alone; trackRunningStats false always uses batch stats', () => {
    const bn = new BatchNorm2d(2, { device });
    bn.eval();
    const x = randn([4, 2, 3, 3], { device });
    bn.call(x);
    expect(values(bn.running_mean!)).toEqual([0, 0]);
    expect(bn.num_batches_tracked!.item()).toBe(0);
    const free = new BatchNorm2d(2, { trackRunningStats: false, device });
    const trainOut = values(free.call(x));
    free.eval();
    expect(values(free.call(x))).toEqual(trainOut);
    // Batch-normalized: channel 0 (9 values in each of 4 samples) has mean 0 and std ~1.
    const s = stats([0, 1, 2, 3].flatMap((n) => trainOut.slice(n * 18, n * 18 + 9)));
    expect(Math.abs(s.mean)).toBeLessThan(1e-5);
    expect(s.std).toBeCloseTo(1, 3);
  });

  it('checks for a 4-D input', () => {
    expect(() => new BatchNorm2d(3).call(randn([4, 3]))).toThrow(/BatchNorm2d: expected 4D input \(got 2D input/);
  });
});

describeBackends(describe, 'Sequential', (device) => {
  it('chains its children, indexes them and reports its length', () => {
    const a = new Linear(3, 4, { device }), r = new ReLU(), b = new Linear(4, 2, { device });
    const s = new Sequential(a, r, b);
    expect(s.length).toBe(3);
    expect([s.at(0), s.at(1), s.at(-1)]).toEqual([a, r, b]);
    expect([...s]).toEqual([a, r, b]);
    expect(() => s.at(3)).toThrow(/index 3 is out of range for a Sequential of length 3/);
    const x = randn([5, 3], { device });
    expect(values(s.call(x))).toEqual(values(b.call(relu(a.call(x)))));
    s.append(new Flatten(0));
    expect(s.length).toBe(4);
    expect(s.call(x).shape).toEqual([10]);
    expect(new Sequential().call(x)).toBe(x);
  });
}, { needs: [['BatchMatMul', 'float32']] });

describe('layer gradients', () => {
  it('gradcheck through Conv2d, BatchNorm2d, ReLU, pooling, Flatten and Linear in float64', () => {
    manualSeed(21);
    // gradcheck needs float64, which only the 'ts' backend computes: name it, whatever the default device.
    const dt = { dtype: 'float64' as const, device: 'ts' };
    const net = new Sequential(new Conv2d(2, 3, 3, { padding: 1, ...dt }), new BatchNorm2d(3, dt), new ReLU(),
      new MaxPool2d(2), new AvgPool2d(1), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(3, 2, dt));
    const x = randn([3, 2, 4, 4], { ...dt, requiresGrad: true });
    expect(gradcheck((xi: Tensor) => net.call(xi), [x])).toBe(true);
    // With respect to the parameters: gradcheck passes perturbed copies, which are swapped in
    // through the registered names (the same setter `model.fc = ...` uses).
    const slots = [...net.namedModules()].flatMap(([, m]) => m.namedParameters(false).map(([n]) => [m, n] as const));
    const params = net.parameters();
    const withParams = (...ps: Tensor[]) => {
      slots.forEach(([m, n], i) => { (m as unknown as Record<string, Tensor>)[n] = ps[i]!; });
      return net.call(x.detach());
    };
    expect(gradcheck(withParams, params)).toBe(true);
    withParams(...params);
    sum(net.call(x)).backward();
    expect(params.every((p) => p.grad && p.grad.shape.join() === p.shape.join())).toBe(true);
  });

  it('a loss module backpropagates into layer parameters', () => {
    const l = new Linear(4, 3);
    const loss = new CrossEntropyLoss().call(l.call(randn([5, 4])), [0, 1, 2, 1, 0]);
    loss.backward();
    expect(l.weight.grad!.shape).toEqual([3, 4]);
    // Each row of softmax - onehot sums to zero, so the bias gradient sums to zero.
    expect(values(l.bias!.grad!).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 6);
  });
});

/** A small stack of every layer, built on a device in a dtype; `ps` replace its parameters in order. */
function layerStack(opts: { device: string; dtype: 'float32' | 'float64' }, ps?: Tensor[]): Sequential {
  const net = new Sequential(new Conv2d(2, 4, 3, { padding: 1, ...opts }), new BatchNorm2d(4, opts), new ReLU(),
    new MaxPool2d(2, { ceilMode: true }), new Conv2d(4, 6, 2, { stride: 1, groups: 2, ...opts }), new AvgPool2d(2, { padding: 1 }),
    new AdaptiveAvgPool2d([2, 1]), new Dropout(0.5), new Flatten(), new Linear(12, 3, opts));
  net.train();
  net.at(7).eval(); // Dropout's mask is host-random per call; BatchNorm2d stays in training mode.
  if (ps) {
    const slots = [...net.namedModules()].flatMap(([, m]) => m.namedParameters(false).map(([n]) => [m, n] as const));
    slots.forEach(([m, n], i) => { (m as unknown as Record<string, Tensor>)[n] = ps[i]!; });
  }
  return net;
}

describeBackends(describe, 'layers against the ts float64 reference', (device) => {
  it('a Conv2d/BatchNorm2d/pooling/Linear stack: output, running statistics and every gradient (checkParity)', () => {
    manualSeed(31);
    const params = layerStack({ device: 'ts', dtype: 'float32' }).parameters().map((p) => p.detach().requiresGrad_());
    const x = randn([3, 2, 7, 6], { requiresGrad: true });
    const fn = (xi: Tensor, ...ps: Tensor[]) => {
      const net = layerStack({ device: xi.device, dtype: xi.dtype as 'float32' | 'float64' }, ps);
      const bn = net.at(1) as BatchNorm2d;
      return [net.call(xi), bn.running_mean!, bn.running_var!];
    };
    expect(checkParity(fn, [x, ...params], { backends: ['ts', device] })).toBe(true);
  });
}, { skip: { ts: 'the reference backend' }, needs: [['Conv2D', 'float32'], ['BatchMatMul', 'float32']] });

describe('toString matches PyTorch', () => {
  const cases: [string, Module][] = [
    ['conv7', new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false })],
    ['conv_same', new Conv2d(4, 8, 3, { padding: 'same', dilation: 2, groups: 2 })],
    ['conv_valid', new Conv2d(4, 8, [3, 1], { padding: 'valid' })],
    ['conv_plain', new Conv2d(64, 64, 3, { padding: 1 })],
    ['bn', new BatchNorm2d(64)],
    ['bn_options', new BatchNorm2d(8, { eps: 1e-3, momentum: null, affine: false, trackRunningStats: false })],
    ['maxpool', new MaxPool2d(3, { stride: 2, padding: 1 })],
    ['maxpool_pair', new MaxPool2d([2, 3], { stride: [1, 2], ceilMode: true })],
    ['avgpool', new AvgPool2d(2)],
    ['adaptive', new AdaptiveAvgPool2d([1, 1])],
    ['adaptive_int', new AdaptiveAvgPool2d(7)],
    ['linear', new Linear(512, 1000)],
    ['linear_nobias', new Linear(3, 4, { bias: false })],
    ['dropout', new Dropout()],
    ['dropout_p', new Dropout(0.25)],
    ['flatten', new Flatten()],
    ['identity', new Identity()],
    ['relu', new ReLU()],
    ['ce', new CrossEntropyLoss({ labelSmoothing: 0.1 })],
  ];
  for (const [key, m] of cases) it(key, () => expect(m.toString()).toBe(repr(key)));
});
