// GradScaler's unscale kernel (NonFiniteCheckAndUnscale, torch's
// _amp_foreach_non_finite_check_and_unscale_) on every native backend against 'ts' in the same
// dtype, bit for bit: a float32 (or float64) product rounded once, so nothing may differ. The list
// is longer than the 48 tensors a 'cuda' launch takes and holds empty tensors, so 'cuda-emu' runs
// the GPU kernel's chunking. Also PyTorch's rules: the flag is set by a value that is not finite
// before scaling (a finite value that overflows when scaled does not set it), and never cleared;
// inv_scale is a float32. And: one kernel call per device and dtype from GradScaler, version
// counters, the errors.
import { describe, expect, it } from 'vitest';
import { fromTypedArray, nonFiniteCheckAndUnscale_, zeros, type FloatDType, type Tensor } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { GradScaler, SGD } from '@nodegrad/nn';
import '@nodegrad/native'; // registers the native backends
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
    // 2^-16 (the default scale), 1/3 (inv_scale rounded to float32 matters), 1 (no multiply).
    it.each([2 ** -16, 1 / 3, 1])('clean gradients times %d, bit for bit; the flag stays 0', (inv) => {
      const { c, r } = lists(device, dtype);
      const before = bits(c.grads[0]!);
      nonFiniteCheckAndUnscale_(c.grads, c.found, inv);
      nonFiniteCheckAndUnscale_(r.grads, r.found, inv);
      expectSameBits(c.grads, r.grads, `x ${inv}`);
      expect(c.found.item()).toBe(0);
      if (inv !== 1) expect(bits(c.grads[0]!)).not.toEqual(before); // the comparison can fail
    });

    it.each([
      ['inf', Infinity], ['-inf', -Infinity], ['NaN', NaN],
    ] as const)('an %s in the second launch sets the flag; every value is still scaled', (_, bad) => {
      const { c, r } = lists(device, dtype, [[50, 2, bad]]);
      nonFiniteCheckAndUnscale_(c.grads, c.found, 2 ** -10);
      nonFiniteCheckAndUnscale_(r.grads, r.found, 2 ** -10);
      expect(c.found.item()).toBe(1);
      expectSameBits(c.grads, r.grads, `with ${bad}`);
    });

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
    const run = (bad: boolean) => {
      params.forEach((p, i) => {
        const g = data(p.size);
        if (bad && i === 60) g[0] = NaN;
        p.grad = on(g, [...p.shape], device, p.dtype as FloatDType);
      });
      const before = bits(params[0]!);
      const [, counts] = countKernels(['NonFiniteCheckAndUnscale'], () => scaler.unscale_(opt), device);
      scaler.step(opt);
      scaler.update();
      return { counts, moved: bits(params[0]!).some((v, i) => v !== before[i]) };
    };
    expect(run(false)).toEqual({ counts: { NonFiniteCheckAndUnscale: 2 }, moved: true }); // float32 and float64
    expect(run(true)).toEqual({ counts: { NonFiniteCheckAndUnscale: 2 }, moved: false });
    expect(scaler.getScale()).toBe(512);
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
