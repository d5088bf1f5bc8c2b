// The fused optimizer kernels (SGDStep, AdamStep, each over a list of parameters) on every native
// backend against the 'ts' backend: the same optimizer, from the same float32-rounded parameters
// and gradients, run for several steps on the backend in float32 and on 'ts' in float64;
// parameters and state must agree within float32 rounding (the ts path itself is checked against
// PyTorch by packages/nn/test/optim.test.ts). The list is longer than the 48 parameters a 'cuda'
// launch takes and holds empty tensors, so 'cuda-emu' runs the chunking of the GPU kernel.
// Also: float64 equals 'ts' float64 to 1e-14, one kernel call per step, parameters that join
// later, version counters, tidy(), and the errors.
import { describe, expect, it } from 'vitest';
import {
  adamStep_, adamStepList_, fromTypedArray, noGrad, sgdStep_, sgdStepList_, tidy, type FloatDType, type Tensor,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { Adam, AdamW, SGD, type Optimizer, type ParamGroup } from '@nodegrad/nn';
import '@nodegrad/native'; // registers the native backends
import { countKernels } from './count_kernels.js';

let seed = 7;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}
/** Values rounded to float32, so both devices start from the same numbers. */
const f32data = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rand() * scale);
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
// 62 parameters: two 'cuda' launches; [300, 300] crosses the 'cpu' OpenMP threshold.
const SHAPES = [[7, 5], [3], [0], [4, 2, 3, 3], [300, 300],
  ...Array.from({ length: 57 }, (_, i) => (i === 40 ? [0, 4] : [(i % 5) + 1, 3]))];

function on(data: Float32Array, shape: number[], device: string, dtype: FloatDType, requiresGrad = false): Tensor {
  return fromTypedArray(Float64Array.from(data), shape, { device, dtype, requiresGrad });
}

/** |a - e| <= rtol (|e| + max |e|) per element, as packages/nn/test/optim.test.ts bounds float32. */
function expectClose(actual: Tensor, expected: Tensor, what: string, rtol = 2e-5): void {
  expect(actual.shape, what).toEqual(expected.shape);
  const a = actual.toTypedArray(), e = Array.from(expected.toTypedArray());
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  e.forEach((ev, i) => {
    const bound = rtol * (Math.abs(ev) + scale);
    if (!(Math.abs(a[i]! - ev) <= bound)) throw new Error(`${what}: element ${i} is ${a[i]}, 'ts' float64 gives ${ev} (bound ${bound})`);
  });
}

type Make = (params: Tensor[]) => Optimizer<ParamGroup>;
const CASES: [string, Make][] = [
  ['SGD plain', (p) => new SGD(p, { lr: 0.1 })],
  ['SGD momentum + wd', (p) => new SGD(p, { lr: 0.05, momentum: 0.9, weightDecay: 0.01 })],
  ['SGD nesterov + maximize', (p) => new SGD(p, { lr: 0.05, momentum: 0.8, nesterov: true, maximize: true })],
  ['SGD dampening', (p) => new SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.3, weightDecay: 1e-3 })],
  ['Adam', (p) => new Adam(p, { lr: 0.01 })],
  ['Adam wd + amsgrad', (p) => new Adam(p, { lr: 0.01, weightDecay: 0.05, amsgrad: true })],
  ['Adam maximize', (p) => new Adam(p, { lr: 0.02, betas: [0.8, 0.99], eps: 1e-6, maximize: true })],
  ['AdamW', (p) => new AdamW(p, { lr: 0.01, weightDecay: 0.1 })],
  ['AdamW amsgrad', (p) => new AdamW(p, { lr: 0.01, amsgrad: true })],
];

/**
 * Runs `steps` updates with fresh gradients each step on `device` and on 'ts' float64. Parameters
 * listed in `late` get no gradient on the first step: they join with their own step count.
 */
function runBoth(device: string, make: Make, steps: number, dtype: FloatDType = 'float32', late = new Set<number>()) {
  const init = SHAPES.map((s) => f32data(numel(s)));
  const sides = [[device, dtype], ['ts', 'float64']] as const;
  const [c, r] = sides.map(([dev, dt]) => {
    const params = SHAPES.map((s, i) => on(init[i]!, s, dev, dt, true));
    return { params, opt: make(params), device: dev, dtype: dt };
  });
  for (let k = 0; k < steps; k++) {
    // Gradients of mixed scale, so that amsgrad's maximum changes hands.
    const grads = SHAPES.map((s) => f32data(numel(s), k % 2 ? 0.2 : 1.5));
    for (const side of [c!, r!]) {
      side.params.forEach((p, i) => { p.grad = k === 0 && late.has(i) ? null : on(grads[i]!, SHAPES[i]!, side.device, side.dtype); });
      side.opt.step();
    }
  }
  return { c: c!, r: r!, init };
}

function expectSame(name: string, c: ReturnType<typeof runBoth>['c'], r: ReturnType<typeof runBoth>['r'], rtol = 2e-5): void {
  c.params.forEach((p, i) => {
    expectClose(p, r.params[i]!, `${name} param ${i}`, rtol);
    // No entry on either side: SGD without momentum keeps no state (PyTorch 2).
    const sc = c.opt.state.get(p) ?? {}, sr = r.opt.state.get(r.params[i]!) ?? {};
    expect(c.opt.state.has(p)).toBe(r.opt.state.has(r.params[i]!));
    expect(Object.keys(sc).sort()).toEqual(Object.keys(sr).sort());
    for (const [key, v] of Object.entries(sr)) {
      if (v === null || typeof v === 'number') expect(sc[key], key).toBe(v);
      else expectClose(sc[key] as Tensor, v as Tensor, `${name} param ${i} state.${key}`, rtol);
    }
  });
}

describeBackends(describe, 'fused optimizer steps against \'ts\' float64', (device) => {
  it.each(CASES)('%s: five steps, parameters and state', (name, make) => {
    const { c, r } = runBoth(device, make, 5);
    expect(c.params[0]!.device).toBe(device);
    expectSame(name, c, r);
  });

  it.each(CASES)('%s: float64 equals \'ts\' float64 to 1e-14', (name, make) => {
    const { c, r } = runBoth(device, make, 3, 'float64');
    expectSame(name, c, r, 1e-14);
  });

  it.each(CASES)('%s: parameters that join on the second step keep their own step count', (name, make) => {
    const { c, r } = runBoth(device, make, 3, 'float32', new Set([1, 4, 30, 61]));
    expectSame(name, c, r);
  });

  it('each step is one kernel call for the whole group, and two when some parameters joined later', () => {
    const params = SHAPES.map((s) => on(f32data(numel(s)), s, device, 'float32', true));
    const opt = new Adam(params, { lr: 0.01 });
    const step = () => { for (const p of params) p.grad = on(f32data(p.size), [...p.shape], device, 'float32'); opt.step(); };
    expect(countKernels(['AdamStep'], step, device)[1]).toEqual({ AdamStep: 1 });
    params.push(on(f32data(4), [4], device, 'float32', true));
    opt.addParamGroup({ params: params.slice(-1) });
    expect(countKernels(['AdamStep'], step, device)[1]).toEqual({ AdamStep: 2 }); // one per group
    const mixed = [on(f32data(3), [3], device, 'float32', true), on(f32data(3), [3], device, 'float64', true)];
    const sgd = new SGD(mixed, { lr: 0.1, momentum: 0.9 });
    const [, counts] = countKernels(['SGDStep'], () => {
      for (const p of mixed) p.grad = on(f32data(3), [3], device, p.dtype as FloatDType);
      sgd.step();
    }, device);
    expect(counts).toEqual({ SGDStep: 2 }); // one list per dtype
  });

  it('each update moves the parameters far beyond the tolerance (the comparison can fail)', () => {
    const { c, init } = runBoth(device, CASES[4]![1], 1);
    // Adam's first step moves every element by lr = 0.01 (m / sqrt(v) = ±1 at t = 1).
    c.params.forEach((p, i) => {
      if (p.size === 0) return;
      const a = p.toTypedArray();
      const moved = Array.from(init[i]!, (x, j) => Math.abs(a[j]! - x));
      expect(Math.min(...moved)).toBeGreaterThan(0.0099);
      expect(Math.max(...moved)).toBeLessThan(0.0101);
    });
  });

  it('state made inside tidy() survives it, and each update bumps the versions it writes', () => {
    const w = on(f32data(6), [2, 3], device, 'float32', true);
    const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
    w.grad = on(f32data(6), [2, 3], device, 'float32');
    const v0 = w.version;
    tidy(() => opt.step());
    const buf = opt.state.get(w)!.momentum_buffer as Tensor;
    expect(Array.from(buf.toTypedArray())).toEqual(Array.from(w.grad.toTypedArray())); // first step: buf = g
    const b0 = buf.version;
    tidy(() => opt.step());
    expect(w.version).toBe(v0 + 2);
    expect(buf.version).toBe(b0 + 1);
  });

  it('the kernels check list lengths, shapes and dtypes themselves', () => {
    const p = on(f32data(6), [2, 3], device, 'float32');
    const g = on(f32data(3), [3], device, 'float32');
    const k = p.backend.kernels;
    const o = { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, firstStep: false };
    expect(() => k.SGDStep([p, p], [p, g], null, o)).toThrow(/SGDStep: 'grads\[1\]' \[3\] \(float32\) must match 'params\[1\]' \[2, 3\] \(float32\)/);
    expect(() => k.SGDStep([p], [p, p], null, o)).toThrow(/SGDStep: 'grads' has 2 tensors but 'params' has 1/);
    const g64 = on(f32data(6), [2, 3], device, 'float64');
    expect(() => k.SGDStep([p, g64], [p, g64], null, o)).toThrow(/SGDStep: 'params\[1\]' is float64 but 'params\[0\]' is float32/);
    const ao = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, amsgrad: true, maximize: false, step: 1 };
    expect(() => k.AdamStep([p], [g64], [p], [p], null, ao)).toThrow(/AdamStep: 'grads\[0\]' \[2, 3\] \(float64\) must match 'params\[0\]'/);
    expect(() => k.AdamStep([p], [p], [p], [p], null, ao)).toThrow(/AdamStep: amsgrad needs 'maxExpAvgSqs'/);
  });
}, { skip: { ts: 'the reference backend' } });

describe('sgdStep_ / adamStep_ and their list forms: argument checks', () => {
  const ts = (shape: number[], dtype: FloatDType = 'float64', requiresGrad = false) =>
    on(f32data(numel(shape)), shape, 'ts', dtype, requiresGrad);

  it('name the op, the argument and the shapes', () => {
    expect(() => sgdStep_(ts([2, 3]), ts([3]), null, { lr: 0.1 })).toThrow(/sgdStep_: 'grad' has shape \[3\] but 'param' has shape \[2, 3\]/);
    expect(() => sgdStep_(ts([2, 3]), ts([2, 3]), ts([6]), { lr: 0.1, momentum: 0.9 }))
      .toThrow(/sgdStep_: 'momentumBuf' has shape \[6\] but 'param' has shape \[2, 3\]/);
    expect(() => adamStep_(ts([4]), ts([4]), ts([4]), ts([2, 2]), null, { lr: 0.1, step: 1 }))
      .toThrow(/adamStep_: 'expAvgSq' has shape \[2, 2\] but 'param' has shape \[4\]/);
    expect(() => adamStep_(ts([4]), ts([4], 'float32'), ts([4]), ts([4]), null, { lr: 0.1, step: 1 }))
      .toThrow(/adamStep_: 'param' has dtype float64 but 'grad' has dtype float32/);
    expect(() => sgdStepList_([ts([2]), ts([3])], [ts([2]), ts([2])], null, { lr: 0.1 }))
      .toThrow(/sgdStepList_: 'grads\[1\]' has shape \[2\] but 'params\[1\]' has shape \[3\]/);
    expect(() => sgdStepList_([ts([2]), ts([2], 'float32')], [ts([2]), ts([2], 'float32')], null, { lr: 0.1 }))
      .toThrow(/sgdStepList_: 'params\[0\]' has dtype float64 but 'params\[1\]' has dtype float32/);
    expect(() => adamStepList_([ts([2])], [ts([2])], [ts([2])], [], null, { lr: 0.1, step: 1 }))
      .toThrow(/adamStepList_: 'expAvgSqs' has 0 tensors but 'params' has 1/);
  });

  it('require the state an option needs, a valid step, and distinct tensors to write', () => {
    expect(() => sgdStep_(ts([2]), ts([2]), null, { lr: 0.1, momentum: 0.9 })).toThrow(/sgdStep_: momentum 0.9 needs 'momentumBuf' of shape \[2\]/);
    expect(() => adamStep_(ts([2]), ts([2]), ts([2]), ts([2]), null, { lr: 0.1, step: 1, amsgrad: true }))
      .toThrow(/adamStep_: amsgrad needs 'maxExpAvgSq' of shape \[2\]/);
    expect(() => sgdStepList_([ts([2])], [ts([2])], null, { lr: 0.1, momentum: 0.9 }))
      .toThrow(/sgdStepList_: momentum 0.9 needs 'momentumBufs', a buffer per parameter, got null/);
    expect(() => adamStep_(ts([2]), ts([2]), ts([2]), ts([2]), null, { lr: 0.1, step: 0 })).toThrow(/adamStep_: step must be an integer >= 1/);
    const m = ts([2]);
    expect(() => adamStep_(ts([2]), ts([2]), m, m, null, { lr: 0.1, step: 1 })).toThrow(/adamStep_: 'expAvg' and 'expAvgSq' share storage/);
    const w = ts([2]);
    expect(() => sgdStepList_([w, w], [ts([2]), ts([2])], null, { lr: 0.1 })).toThrow(/sgdStepList_: 'params\[0\]' and 'params\[1\]' share storage/);
    // A gradient may be its own parameter's storage, not another's (entries run at once on a GPU).
    const [p0, p1] = [ts([2]), ts([2])];
    expect(() => sgdStepList_([p0, p1], [ts([2]), p0], null, { lr: 0.1 })).toThrow(/sgdStepList_: 'grads\[1\]' shares storage with 'params\[0\]' \(\[2\]\), which the step writes/);
    const before = p0.toTypedArray();
    noGrad(() => sgdStepList_([p0, p1], [p0, p1], null, { lr: 0.5 }));
    expect(p0.toTypedArray()).toEqual(Float64Array.from(before, (v) => v * 0.5));
  });

  it('an empty list is no update', () => {
    expect(noGrad(() => adamStepList_([], [], [], [], null, { lr: 0.1, step: 1 }))).toEqual([]);
  });

  it('refuse to run while recording a parameter that requires grad, and run under noGrad', () => {
    const w = ts([3], 'float64', true);
    const g = ts([3]);
    expect(() => sgdStep_(w, g, null, { lr: 0.1 })).toThrow(/sgdStep_: 'param' \(\[3\]\) requires grad and gradients are being recorded/);
    expect(() => sgdStepList_([ts([3]), w], [g, g], null, { lr: 0.1 })).toThrow(/sgdStepList_: 'params\[1\]' \(\[3\]\) requires grad/);
    const before = Array.from(w.toTypedArray());
    noGrad(() => sgdStep_(w, g, null, { lr: 0.5 }));
    const gv = g.toTypedArray();
    Array.from(w.toTypedArray()).forEach((x, i) => expect(x).toBe(before[i]! - 0.5 * gv[i]!));
    expect(w.isLeaf && w.requiresGrad).toBe(true);
  });
});
