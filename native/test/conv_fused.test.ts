// conv2dFused on 'cpu' (the Conv2DFused kernel: oneDNN forward-inference convolution with bias,
// sum and eltwise-relu post-ops) against the same op on 'ts' in float64, where it is the composite
// relu(conv2d + bias + residual). Each element must lie within RTOL · Σ|terms| of the reference,
// the forward-error bound of a float32 dot product, Σ|terms| being the composite on |operands|.
import { describe, expect, it } from 'vitest';
import {
  add, backends, conv2d, conv2dFused, fromTypedArray, getBackend, relu, zeros, type Conv2dFusedOptions, type Tensor,
} from '@nodegrad/autograd';
import { describeBuild } from '@nodegrad/native';
import { countKernels } from './count_kernels.js';

const cpu = backends().find((b) => b.name === 'cpu');
const onednn = describeBuild().features.onednn;
const suite = cpu?.available && onednn.enabled ? describe : describe.skip;
const why = !cpu?.available ? ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`
  : !onednn.enabled ? ` (skipped: built without oneDNN: ${onednn.reason})` : '';
const RTOL = 1e-5;

let seed = 3;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}

/** The same float32-rounded data on 'cpu' (float32), on 'ts' (float64), and |data| on 'ts'. */
interface Operand { cpu: Tensor; ref: Tensor; abs: Tensor }
function operand(shape: number[], requiresGrad = false): Operand {
  const n = shape.reduce((a, b) => a * b, 1);
  const f32 = Float32Array.from({ length: n }, rand);
  return {
    cpu: fromTypedArray(f32, shape, { device: 'cpu', dtype: 'float32', requiresGrad }),
    ref: fromTypedArray(Float64Array.from(f32), shape, { device: 'ts', dtype: 'float64' }),
    abs: fromTypedArray(Float64Array.from(f32, Math.abs), shape, { device: 'ts', dtype: 'float64' }),
  };
}

function expectWithin(got: Tensor, ref: Tensor, bound: Tensor): void {
  expect(got.shape).toEqual(ref.shape);
  const g = got.toTypedArray(), r = ref.toTypedArray(), b = bound.toTypedArray();
  for (let i = 0; i < g.length; i++) {
    const err = Math.abs(g[i]! - r[i]!);
    if (!(err <= RTOL * b[i]! + 1e-30)) throw new Error(`element ${i}: got ${g[i]}, expected ${r[i]} (error ${err}, Σ|terms| ${b[i]})`);
  }
}

interface Case {
  name: string;
  x: number[];
  w: number[];
  opts: Conv2dFusedOptions;
  bias: boolean;
  residual: boolean;
}

// The output shape of each case, for its residual.
function outShape(c: Case): number[] {
  return [...conv2d(zeros(c.x), zeros(c.w), null, c.opts).shape];
}

const base: Omit<Case, 'name' | 'bias' | 'residual' | 'opts'> = { x: [2, 8, 9, 9], w: [16, 8, 3, 3] };
const cases: Case[] = [
  // Every epilogue on a ResNet-like 3x3.
  ...[false, true].flatMap((bias) => [false, true].flatMap((residual) => [false, true].map((relu) => ({
    ...base, name: `3x3${bias ? ' +bias' : ''}${residual ? ' +residual' : ''}${relu ? ' relu' : ''}`,
    opts: { padding: 1, relu }, bias, residual,
  })))),
  { name: '1x1 stride 2 (downsample)', x: [3, 16, 8, 8], w: [32, 16, 1, 1], opts: { stride: 2 }, bias: true, residual: false },
  { name: '7x7 stride 2 pad 3 (stem)', x: [2, 3, 20, 20], w: [8, 3, 7, 7], opts: { stride: 2, padding: 3, relu: true },
    bias: true, residual: false },
  { name: 'groups 4, stride 2', x: [2, 8, 11, 11], w: [12, 2, 3, 3], opts: { stride: 2, padding: 1, groups: 4, relu: true },
    bias: true, residual: true },
  { name: 'depthwise', x: [1, 6, 7, 7], w: [6, 1, 3, 3], opts: { padding: 1, groups: 6, relu: true }, bias: true, residual: true },
  { name: 'dilation 2, asymmetric geometry', x: [2, 5, 13, 10], w: [7, 5, 3, 2],
    opts: { padding: [2, 1], dilation: [2, 3], stride: [1, 2], relu: true }, bias: true, residual: true },
  { name: "padding 'same' with an even kernel", x: [1, 4, 6, 6], w: [4, 4, 2, 2], opts: { padding: 'same', relu: true },
    bias: true, residual: true },
  { name: 'batch of one, odd channels', x: [1, 3, 5, 5], w: [5, 3, 3, 3], opts: {}, bias: false, residual: true },
];

suite(`cpu backend: Conv2DFused on oneDNN vs the composite on ts float64${why}`, () => {
  for (const c of cases) {
    it(c.name, () => {
      const x = operand(c.x), w = operand(c.w);
      const b = c.bias ? operand([c.w[0]!]) : null;
      const r = c.residual ? operand(outShape(c)) : null;
      const [got, counts] = countKernels(['Conv2DFused', 'Conv2D'], () =>
        conv2dFused(x.cpu, w.cpu, b?.cpu, { ...c.opts, residual: r?.cpu }));
      expect(counts).toEqual({ Conv2DFused: 1, Conv2D: 0 });
      const ref = conv2dFused(x.ref, w.ref, b?.ref, { ...c.opts, residual: r?.ref });
      // The bound drops the relu (1-Lipschitz, so it only shrinks errors).
      const bound = conv2dFused(x.abs, w.abs, b?.abs, { ...c.opts, residual: r?.abs, relu: false });
      expectWithin(got, ref, bound);
      // The composite on 'ts' is relu(conv2d(x, w, b) + residual) itself.
      let direct = conv2d(x.ref, w.ref, b?.ref, c.opts);
      if (r) direct = add(direct, r.ref);
      if (c.opts.relu) direct = relu(direct);
      expect(Array.from(ref.toTypedArray())).toEqual(Array.from(direct.toTypedArray()));
    });
  }

  it('an empty contraction (0 input channels) leaves relu(bias + residual)', () => {
    const x = operand([2, 0, 4, 4]), w = operand([3, 0, 3, 3]), b = operand([3]), r = operand([2, 3, 2, 2]);
    const got = conv2dFused(x.cpu, w.cpu, b.cpu, { residual: r.cpu, relu: true });
    const ref = conv2dFused(x.ref, w.ref, b.ref, { residual: r.ref, relu: true });
    expectWithin(got, ref, add(b.abs.reshape([1, 3, 1, 1]), r.abs));
  });

  it('an unbatched [C, H, W] input with a [O, H, W] residual is a batch of one', () => {
    const x = operand([4, 6, 6]), w = operand([5, 4, 3, 3]), r = operand([5, 6, 6]);
    const got = conv2dFused(x.cpu, w.cpu, null, { padding: 1, residual: r.cpu, relu: true });
    expect(got.shape).toEqual([5, 6, 6]);
    const ref = conv2dFused(x.ref, w.ref, null, { padding: 1, residual: r.ref, relu: true });
    expectWithin(got, ref, conv2dFused(x.abs, w.abs, null, { padding: 1, residual: r.abs }));
  });

  it('errors name the op, the argument and the shapes', () => {
    const x = operand([2, 4, 6, 6]).cpu, w = operand([8, 4, 3, 3]).cpu;
    expect(() => conv2dFused(x, w, null, { residual: operand([2, 8, 6, 6]).cpu }))
      .toThrow("conv2dFused: residual of shape [2, 8, 6, 6] must have the convolution's output shape [2, 8, 4, 4]");
    expect(() => conv2dFused(x, w, operand([4]).cpu)).toThrow('conv2dFused: bias of shape [4] must have shape [8]');
    expect(() => conv2dFused(x, w, null, { residual: operand([2, 8, 4, 4]).ref }))
      .toThrow("conv2dFused: 'input' is on device cpu but 'residual' is on ts");
    // The kernel checks on its own too (the binding is reachable without the op).
    const k = getBackend('cpu').kernels.Conv2DFused!;
    const p = { stride: [1, 1] as [number, number], padding: [0, 0] as [number, number],
      dilation: [1, 1] as [number, number], groups: 1, relu: true };
    expect(() => k(x, w, null, operand([2, 8, 5, 5]).cpu, p))
      .toThrow("Conv2DFused: residual of shape [2, 8, 5, 5] must have the output's shape [2, 8, 4, 4]");
    expect(() => k(x, w, operand([3]).cpu, null, p)).toThrow('Conv2DFused: bias of shape [3] must have shape [8]');
  });

  it('while the tape records it is the differentiable composite: same values and gradients', () => {
    const x = operand([2, 4, 6, 6], true), w = operand([6, 4, 3, 3], true), b = operand([6], true);
    const r = operand([2, 6, 6, 6], true);
    const [y, counts] = countKernels(['Conv2DFused'], () =>
      conv2dFused(x.cpu, w.cpu, b.cpu, { padding: 1, residual: r.cpu, relu: true }));
    expect(counts.Conv2DFused).toBe(0);
    expect(y.requiresGrad).toBe(true);
    y.mul(y).sum().backward();
    const grads = [x, w, b, r].map((o) => Array.from(o.cpu.grad!.toTypedArray()));
    for (const o of [x, w, b, r]) o.cpu.grad = null;
    const z = relu(add(conv2d(x.cpu, w.cpu, b.cpu, { padding: 1 }), r.cpu));
    expect(Array.from(y.toTypedArray())).toEqual(Array.from(z.toTypedArray()));
    z.mul(z).sum().backward();
    expect([x, w, b, r].map((o) => Array.from(o.cpu.grad!.toTypedArray()))).toEqual(grads);
  });
});
