// The fused optimizer kernels (SGDStep, AdamStep) on the 'cpu' backend against the 'ts' backend:
// the same optimizer, from the same float32-rounded parameters and gradients, run for several
// steps on 'cpu' in float32 and on 'ts' in float64; parameters and state must agree within
// float32 rounding (the ts path itself is checked against PyTorch by packages/nn/test/optim.test.ts).
// Also: 'cpu' float64 equals 'ts' float64 to 1e-14, version counters, tidy(), and the errors.
import { describe, expect, it } from 'vitest';
import {
  adamStep_, backends, fromTypedArray, noGrad, sgdStep_, tidy, type FloatDType, type Tensor,
} from '@nodegrad/autograd';
import { Adam, AdamW, SGD, type Optimizer, type ParamGroup } from '@nodegrad/nn';
import '@nodegrad/native'; // registers the 'cpu' backend

const cpu = backends().find((b) => b.name === 'cpu');
const suite = cpu?.available ? describe : describe.skip;
const why = cpu?.available ? '' : ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`;

let seed = 7;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}
/** Values rounded to float32, so both devices start from the same numbers. */
const f32data = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rand() * scale);
const SHAPES = [[7, 5], [3], [4, 2, 3, 3], [300, 300]]; // the last one crosses the OpenMP threshold

function on(data: Float32Array, shape: number[], device: string, dtype: FloatDType, requiresGrad = false): Tensor {
  return fromTypedArray(Float64Array.from(data), shape, { device, dtype, requiresGrad });
}

/** |a - e| <= 2e-5 (|e| + max |e|) per element, as packages/nn/test/optim.test.ts bounds float32. */
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

/** Runs `steps` updates with fresh gradients each step on both devices; returns both sides. */
function runBoth(make: Make, steps: number, dtypeCpu: FloatDType = 'float32') {
  const init = SHAPES.map((s) => f32data(s.reduce((a, b) => a * b, 1)));
  const sides = [['cpu', dtypeCpu], ['ts', 'float64']] as const;
  const [c, r] = sides.map(([device, dtype]) => {
    const params = SHAPES.map((s, i) => on(init[i]!, s, device, dtype, true));
    return { params, opt: make(params), device, dtype };
  });
  for (let k = 0; k < steps; k++) {
    // Gradients of mixed scale, so that amsgrad's maximum changes hands.
    const grads = SHAPES.map((s) => f32data(s.reduce((a, b) => a * b, 1), k % 2 ? 0.2 : 1.5));
    for (const side of [c!, r!]) {
      side.params.forEach((p, i) => { p.grad = on(grads[i]!, SHAPES[i]!, side.device, side.dtype); });
      side.opt.step();
    }
  }
  return { c: c!, r: r!, init };
}

suite(`fused optimizer steps: 'cpu' float32 against 'ts' float64${why}`, () => {
  it.each(CASES)('%s: five steps, parameters and state', (name, make) => {
    const { c, r } = runBoth(make, 5);
    c.params.forEach((p, i) => {
      expect(p.device).toBe('cpu');
      expectClose(p, r.params[i]!, `${name} param ${i}`);
      const sc = c.opt.state.get(p)!, sr = r.opt.state.get(r.params[i]!)!;
      expect(Object.keys(sc).sort()).toEqual(Object.keys(sr).sort());
      for (const [key, v] of Object.entries(sr)) {
        if (v === null || typeof v === 'number') expect(sc[key], key).toBe(v);
        else expectClose(sc[key] as Tensor, v as Tensor, `${name} param ${i} state.${key}`);
      }
    });
  });

  it.each(CASES)('%s: \'cpu\' float64 equals \'ts\' float64 to 1e-14', (name, make) => {
    const { c, r } = runBoth(make, 3, 'float64');
    c.params.forEach((p, i) => expectClose(p, r.params[i]!, `${name} param ${i}`, 1e-14));
  });

  it('each update moves the parameters far beyond the tolerance (the comparison can fail)', () => {
    const { c, init } = runBoth(CASES[4]![1], 1);
    // Adam's first step moves every element by lr = 0.01 (m / sqrt(v) = ±1 at t = 1).
    c.params.forEach((p, i) => {
      const a = p.toTypedArray();
      const moved = Array.from(init[i]!, (x, j) => Math.abs(a[j]! - x));
      expect(Math.min(...moved)).toBeGreaterThan(0.0099);
      expect(Math.max(...moved)).toBeLessThan(0.0101);
    });
  });

  it('state made inside tidy() survives it, and each update bumps the versions it writes', () => {
    const w = on(f32data(6), [2, 3], 'cpu', 'float32', true);
    const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
    w.grad = on(f32data(6), [2, 3], 'cpu', 'float32');
    const v0 = w.version;
    tidy(() => opt.step());
    const buf = opt.state.get(w)!.momentum_buffer as Tensor;
    expect(Array.from(buf.toTypedArray())).toEqual(Array.from(w.grad.toTypedArray())); // first step: buf = g
    const b0 = buf.version;
    tidy(() => opt.step());
    expect(w.version).toBe(v0 + 2);
    expect(buf.version).toBe(b0 + 1);
  });

  it('names the op and the devices when tensors are on different devices', () => {
    const p = on(f32data(3), [3], 'cpu', 'float32');
    const g = on(f32data(3), [3], 'ts', 'float32');
    expect(() => sgdStep_(p, g, null, { lr: 0.1 })).toThrow(/sgdStep_: 'param' is on device cpu but 'grad' is on ts/);
    const m = on(f32data(3), [3], 'ts', 'float32');
    expect(() => adamStep_(p, on(f32data(3), [3], 'cpu', 'float32'), m, m, null, { lr: 0.1, step: 1 }))
      .toThrow(/adamStep_: 'param' is on device cpu but 'expAvg' is on ts/);
  });

  it('the native kernels check shapes and dtypes themselves', () => {
    const p = on(f32data(6), [2, 3], 'cpu', 'float32');
    const g = on(f32data(3), [3], 'cpu', 'float32');
    const k = p.backend.kernels;
    const o = { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, firstStep: false };
    expect(() => k.SGDStep(p, g, null, o)).toThrow(/SGDStep: 'grad' \[3\] \(float32\) must match 'param' \[2, 3\] \(float32\)/);
    const g64 = on(f32data(6), [2, 3], 'cpu', 'float64');
    const ao = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, amsgrad: true, maximize: false, step: 1 };
    expect(() => k.AdamStep(p, g64, p, p, null, ao)).toThrow(/AdamStep: 'grad' \[2, 3\] \(float64\) must match 'param'/);
    expect(() => k.AdamStep(p, p, p, p, null, ao)).toThrow(/AdamStep: amsgrad needs 'maxExpAvgSq'/);
  });
});

describe('sgdStep_ / adamStep_ argument checks', () => {
  const ts = (shape: number[], dtype: FloatDType = 'float64', requiresGrad = false) =>
    on(f32data(shape.reduce((a, b) => a * b, 1)), shape, 'ts', dtype, requiresGrad);

  it('name the op, the argument and the shapes', () => {
    expect(() => sgdStep_(ts([2, 3]), ts([3]), null, { lr: 0.1 })).toThrow(/sgdStep_: 'grad' has shape \[3\] but 'param' has shape \[2, 3\]/);
    expect(() => sgdStep_(ts([2, 3]), ts([2, 3]), ts([6]), { lr: 0.1, momentum: 0.9 }))
      .toThrow(/sgdStep_: 'momentumBuf' has shape \[6\] but 'param' has shape \[2, 3\]/);
    expect(() => adamStep_(ts([4]), ts([4]), ts([4]), ts([2, 2]), null, { lr: 0.1, step: 1 }))
      .toThrow(/adamStep_: 'expAvgSq' has shape \[2, 2\] but 'param' has shape \[4\]/);
    expect(() => adamStep_(ts([4]), ts([4], 'float32'), ts([4]), ts([4]), null, { lr: 0.1, step: 1 }))
      .toThrow(/adamStep_: 'param' has dtype float64 but 'grad' has dtype float32/);
  });

  it('require the state an option needs, a valid step, and distinct state buffers', () => {
    expect(() => sgdStep_(ts([2]), ts([2]), null, { lr: 0.1, momentum: 0.9 })).toThrow(/sgdStep_: momentum 0.9 needs a momentum buffer of shape \[2\]/);
    expect(() => adamStep_(ts([2]), ts([2]), ts([2]), ts([2]), null, { lr: 0.1, step: 1, amsgrad: true }))
      .toThrow(/adamStep_: amsgrad needs a maxExpAvgSq buffer of shape \[2\]/);
    expect(() => adamStep_(ts([2]), ts([2]), ts([2]), ts([2]), null, { lr: 0.1, step: 0 })).toThrow(/adamStep_: step must be an integer >= 1/);
    const m = ts([2]);
    expect(() => adamStep_(ts([2]), ts([2]), m, m, null, { lr: 0.1, step: 1 })).toThrow(/adamStep_: 'expAvg' and 'expAvgSq' share storage/);
  });

  it('refuse to run while recording a parameter that requires grad, and run under noGrad', () => {
    const w = ts([3], 'float64', true);
    const g = ts([3]);
    expect(() => sgdStep_(w, g, null, { lr: 0.1 })).toThrow(/sgdStep_: 'param' \(\[3\]\) requires grad and gradients are being recorded/);
    const before = Array.from(w.toTypedArray());
    noGrad(() => sgdStep_(w, g, null, { lr: 0.5 }));
    const gv = g.toTypedArray();
    Array.from(w.toTypedArray()).forEach((x, i) => expect(x).toBe(before[i]! - 0.5 * gv[i]!));
    expect(w.isLeaf && w.requiresGrad).toBe(true);
  });
});
