// GradScaler's unscale kernel (NonFiniteCheckAndUnscale, torch's
// _amp_foreach_non_finite_check_and_unscale_) on every native backend against 'ts' in the same
// dtype, bit for bit: a float32 (or float64) product rounded once, so nothing may differ. The list
// is longer than the 48 tensors a 'cuda' launch takes and holds empty tensors, so 'cuda-emu' runs
// the GPU kernel's chunking. Also PyTorch's rules: the flag is set by a value that is not finite
// before scaling (a finite value that overflows when scaled does not set it), and never cleared;
// inv_scale is a float32. And: one kernel call per device and dtype from GradScaler, one flag per
// device, the flags' lifetime, update after unscale_ alone, version counters, the errors.
import { describe, expect, it } from 'vitest';
import { add, fromTypedArray, mul, nonFiniteCheckAndUnscale_, sum, tidy, zeros, type FloatDType, type Tensor } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { GradScaler, SGD } from '@nodegrad/nn';
import { memoryStats } from '@nodegrad/native'; // registers the native backends too
import { countKernels } from './count_kernels.js';

let seed = 11;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
// 62 tensors: two 'cuda' launches; [300, 300] crosses the 'cpu' OpenMP threshold.
const SHAPES = [[7, 5], [3], [0], [4, 2, 3, 3], [300, 300],
  ...Array.from({ length: 57 }, (_, i) => (i === 40 ? [0, 4] : [(i % 5) + 1, 3]))];
const DTYPES: FloatDType[] = ['float32', 'float64', 'bfloat16', 'float16'];
/** Values of every magnitude a scaled gradient has, within float16's range. */
const data = (n: number) => Float64Array.from({ length: n }, () => rand() * 10 ** (3 * rand() + 1));
const on = (d: Float64Array, shape: number[], device: string, dtype: FloatDType) => fromTypedArray(d, shape, { device, dtype });
const bits = (t: Tensor) => Array.from(t.toTypedArray());

/** The same gradients on `device` and on 'ts', in dtype, with `poke` values written first. */
function lists(device: string, dtype: FloatDType, poke: [number, number, number][] = []) {
  const values = SHAPES.map((s) => data(numel(s)));
  for (const [t, i, v] of poke) values[t]![i] = v;
  const make = (dev: string) => ({ grads: SHAPES.map((s, i) => on(values[i]!, s, dev, dtype)), found: zeros([1], { device: dev }) });
  return { c: make(device), r: make('ts') };
}

function expectSameBits(c: Tensor[], r: Tensor[], what: string): void {
  c.forEach((g, i) => expect(bits(g), `${what}: gradient ${i}`).toEqual(bits(r[i]!)));
}

describeBackends(describe, "nonFiniteCheckAndUnscale_ against 'ts'", (device) => {
  for (const dtype of DTYPES) describe(dtype, () => {
    // 2^-16 (the default scale), 1/3 (inv_scale rounded to float32 matters), 1 (no multiply), and
    // 1e39, past float32's range: an infinite inv_scale, as PyTorch's float32 one would be.
    it.each([2 ** -16, 1 / 3, 1, 1e39])('clean gradients times %d, bit for bit; the flag stays 0', (inv) => {
      const { c, r } = lists(device, dtype);
      const before = bits(c.grads[0]!);
      nonFiniteCheckAndUnscale_(c.grads, c.found, inv);
      nonFiniteCheckAndUnscale_(r.grads, r.found, inv);
      expectSameBits(c.grads, r.grads, `x ${inv}`);
      expect(c.found.item()).toBe(0);
      if (inv !== 1) expect(bits(c.grads[0]!)).not.toEqual(before); // the comparison can fail
    });

    // Tensor 1 is in the first launch only, 50 in the second, 4's last element at the end of the
    // 'cpu' OpenMP loop; times 1 the values are not multiplied, but still checked.
    const places: [string, number, number][] = [['the first launch', 1, 0], ['the second launch', 50, 2], ['a large tensor', 4, 89999]];
    for (const [name, bad] of [['inf', Infinity], ['-inf', -Infinity], ['NaN', NaN]] as const) {
      for (const [where, t, i] of places) {
        it.each([2 ** -10, 1])(`an ${name} in ${where} sets the flag, times %d; every value is still scaled`, (inv) => {
          const { c, r } = lists(device, dtype, [[t, i, bad]]);
          nonFiniteCheckAndUnscale_(c.grads, c.found, inv);
          nonFiniteCheckAndUnscale_(r.grads, r.found, inv);
          expect(c.found.item()).toBe(1);
          expectSameBits(c.grads, r.grads, `with ${bad}`);
        });
      }
    }

    it('checks values before scaling, as PyTorch: the largest finite value times 4 overflows and sets nothing', () => {
      const largest = { float32: 3.4028234663852886e38, float64: Number.MAX_VALUE, bfloat16: 3.3895313892515355e38, float16: 65504 }[dtype];
      const { c, r } = lists(device, dtype, [[4, 7, largest], [4, 8, -largest]]);
      nonFiniteCheckAndUnscale_(c.grads, c.found, 4);
      nonFiniteCheckAndUnscale_(r.grads, r.found, 4);
      expect(c.found.item()).toBe(0);
      expect(bits(c.grads[4]!).slice(7, 9)).toEqual([Infinity, -Infinity]);
      expectSameBits(c.grads, r.grads, 'overflowing');
    });
  });

  it('never clears the flag, and bumps the versions of what it writes', () => {
    const g = on(Float64Array.from([1, 2, 3]), [3], device, 'float32');
    const found = on(Float64Array.from([1]), [1], device, 'float32');
    const [vg, vf] = [g.version, found.version];
    nonFiniteCheckAndUnscale_([g], found, 0.5);
    expect(found.item()).toBe(1);
    expect(bits(g)).toEqual([0.5, 1, 1.5]);
    expect([g.version, found.version]).toEqual([vg + 1, vf + 1]);
  });

  it("GradScaler.unscale_ is one kernel call per device and dtype, and the step still skips on inf", () => {
    const params = [...SHAPES.map((s) => on(data(numel(s)), s, device, 'float32')), on(data(4), [4], device, 'float64')];
    for (const p of params) p.requiresGrad = true;
    const opt = new SGD(params, { lr: 0.1 });
    const scaler = new GradScaler({ initScale: 1024 });
    // A NaN in parameter 60's gradient (the float32 list) or 62's (float64): one flag per device.
    const run = (bad: number | null) => {
      params.forEach((p, i) => {
        const g = data(p.size);
        if (i === bad) g[0] = NaN;
        p.grad = on(g, [...p.shape], device, p.dtype as FloatDType);
      });
      const before = bits(params[0]!);
      const [, counts] = countKernels(['NonFiniteCheckAndUnscale'], () => scaler.unscale_(opt), device);
      scaler.step(opt);
      scaler.update();
      return { counts, moved: bits(params[0]!).some((v, i) => v !== before[i]) };
    };
    expect(run(null)).toEqual({ counts: { NonFiniteCheckAndUnscale: 2 }, moved: true }); // float32 and float64
    expect(run(60)).toEqual({ counts: { NonFiniteCheckAndUnscale: 2 }, moved: false });
    expect(run(62)).toEqual({ counts: { NonFiniteCheckAndUnscale: 2 }, moved: false });
    expect(scaler.getScale()).toBe(256);
  });

  it('the kernel checks its arguments itself', () => {
    const k = zeros([1], { device }).backend.kernels;
    const g = on(Float64Array.from([1, 2]), [2], device, 'float32');
    const g64 = on(Float64Array.from([1, 2]), [2], device, 'float64');
    expect(() => k.NonFiniteCheckAndUnscale([g], zeros([2], { device }), 1))
      .toThrow(/NonFiniteCheckAndUnscale: 'foundInf' must be a float32 tensor of one element, got float32 \[2\]/);
    expect(() => k.NonFiniteCheckAndUnscale([g], zeros([1], { device, dtype: 'float64' }), 1))
      .toThrow(/NonFiniteCheckAndUnscale: 'foundInf' must be a float32 tensor of one element, got float64 \[1\]/);
    expect(() => k.NonFiniteCheckAndUnscale([g, g64], zeros([1], { device }), 1))
      .toThrow(/NonFiniteCheckAndUnscale: 'grads\[1\]' is float64 but 'grads\[0\]' is float32; a list is of one dtype/);
  });
}, { skip: { ts: 'the reference backend' } });

describe("GradScaler's found-inf flags (on 'cpu')", () => {
  const setup = (shapes: number[][], dtype: FloatDType = 'float32') => {
    const params = shapes.map((s) => on(data(numel(s)), s, 'cpu', dtype));
    for (const p of params) p.requiresGrad = true;
    return { params, opt: new SGD(params, { lr: 0.1 }) };
  };
  const backward = (params: Tensor[], scaler: GradScaler, bad = false) => {
    for (const p of params) { p.grad?.dispose(); p.grad = null; }
    scaler.scale(params.map((p) => sum(mul(p, p))).reduce((a, b) => add(a, b))).backward();
    if (bad) params[0]!.grad = on(Float64Array.from({ length: params[0]!.size }, () => Infinity), [...params[0]!.shape], 'cpu', 'float32');
  };

  it('survive a tidy around backward and unscale_; none is left after step, or after update without a step', () => {
    const { params, opt } = setup([[6], [2, 3]]);
    const scaler = new GradScaler({ initScale: 8 });
    const iterate = (stepToo: boolean) => {
      tidy(() => { backward(params, scaler); scaler.unscale_(opt); });
      if (stepToo) scaler.step(opt);
      scaler.update();
    };
    iterate(true);
    iterate(false);
    const before = memoryStats().liveHandles;
    for (let i = 0; i < 4; i++) { iterate(true); iterate(false); }
    expect(memoryStats().liveHandles - before).toBe(0);
  });

  it("update after unscale_ alone uses its checks, as PyTorch's: an inf backs the scale off", () => {
    const { params, opt } = setup([[3]]);
    const scaler = new GradScaler({ initScale: 8 });
    backward(params, scaler, true);
    scaler.unscale_(opt);
    scaler.update();
    expect(scaler.getScale()).toBe(4);
  });

  it('step without any gradient, and a second unscale_ after one that failed halfway, are errors', () => {
    const { params, opt } = setup([[2]]);
    const scaler = new GradScaler();
    expect(() => scaler.step(opt)).toThrow('GradScaler.step: no inf checks were recorded for this optimizer: none of its parameters has a gradient');
    // The float32 list is unscaled, then the float64 list is refused (two gradients, one storage).
    const mixed = [...setup([[2]]).params, ...setup([[2], [2]], 'float64').params];
    const shared = on(data(2), [2], 'cpu', 'float64');
    mixed[0]!.grad = on(data(2), [2], 'cpu', 'float32');
    mixed[1]!.grad = shared;
    mixed[2]!.grad = shared;
    const mopt = new SGD(mixed, { lr: 0.1 });
    expect(() => scaler.unscale_(mopt)).toThrow(/nonFiniteCheckAndUnscale_: 'grads\[0\]' and 'grads\[1\]' share storage/);
    expect(() => scaler.unscale_(mopt)).toThrow('GradScaler.unscale_: already called on this optimizer since the last update()');
  });
});

describe('nonFiniteCheckAndUnscale_: argument checks', () => {
  const ts = (shape: number[], dtype: FloatDType = 'float32') => on(data(numel(shape)), shape, 'ts', dtype);

  it('name the op, the argument and the shapes', () => {
    const found = zeros([1], { device: 'ts' });
    expect(() => nonFiniteCheckAndUnscale_([ts([2]), ts([3], 'float64')], found, 1))
      .toThrow(/nonFiniteCheckAndUnscale_: 'grads\[0\]' has dtype float32 but 'grads\[1\]' has dtype float64/);
    expect(() => nonFiniteCheckAndUnscale_([ts([2])], zeros([1, 2], { device: 'ts' }), 1))
      .toThrow(/nonFiniteCheckAndUnscale_: 'foundInf' must be a float32 tensor of one element, got float32 \[1, 2\]/);
    expect(() => nonFiniteCheckAndUnscale_([ts([2])], found, NaN)).toThrow(/nonFiniteCheckAndUnscale_: 'invScale' must be a number, got NaN/);
    const g = ts([2]);
    expect(() => nonFiniteCheckAndUnscale_([g, g], found, 1)).toThrow(/nonFiniteCheckAndUnscale_: 'grads\[0\]' and 'grads\[1\]' share storage/);
    expect(() => nonFiniteCheckAndUnscale_([found], found, 1)).toThrow(/nonFiniteCheckAndUnscale_: 'foundInf' shares storage with a gradient/);
    expect(nonFiniteCheckAndUnscale_([], found, 1)).toEqual([]);
  });

  it("refuses a flag on another device than the gradients'", () => {
    const other = zeros([1], { device: 'cpu' });
    expect(() => nonFiniteCheckAndUnscale_([ts([2])], other, 1))
      .toThrow(/nonFiniteCheckAndUnscale_: 'grads\[0\]' is on device ts but 'foundInf' is on cpu/);
  });
});
