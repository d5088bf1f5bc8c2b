// The 'cpu' backend's oneDNN kernels (BatchMatMul; Conv2D and its two backprop kernels) against
// the 'ts' backend, on the shapes the ts tests use. The cpu kernel runs in float32, the reference
// in float64 on the same (float32-rounded) data; each element must lie within RTOL · Σ|terms| of
// it, the forward-error bound of a float32 dot product, where Σ|terms| is the same kernel
// applied to |inputs| (so cancellation cannot make a correct value fail).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backends, bmm, conv2d, getBackend, manualSeed, randn, tsBackend, type Conv2DParams, type Raw, type Tensor }
  from '@nodegrad/autograd';
import { checkParity } from '@nodegrad/autograd/testing';
import { describeBuild } from '@nodegrad/native'; // importing it registers the 'cpu' backend
import { buildDir, loadAddon } from '../lib/load.js';

const cpu = backends().find((b) => b.name === 'cpu');
const onednn = describeBuild().features.onednn;
const ok = cpu?.available && onednn.enabled;
const suite = ok ? describe : describe.skip;
const why = !cpu?.available ? ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`
  : !onednn.enabled ? ` (skipped: built without oneDNN: ${onednn.reason})` : '';
const RTOL = 1e-5;
const addonFile = join(buildDir(), 'Release', 'nodegrad.node');

let seed = 7;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}

/** The same random data three ways: float32 on 'cpu', float64 on 'ts', and |data| in float64 on 'ts'. */
interface Operand { cpu: Raw; ref: Raw; abs: Raw }
function operand(shape: number[]): Operand {
  const n = shape.reduce((a, b) => a * b, 1);
  const f32 = Float32Array.from({ length: n }, rand);
  return {
    cpu: getBackend('cpu').fromArray(f32, shape, 'float32'),
    ref: { buf: Float64Array.from(f32), shape, dtype: 'float64' },
    abs: { buf: Float64Array.from(f32, Math.abs), shape, dtype: 'float64' },
  };
}

const k = () => getBackend('cpu').kernels;
const free = (x: Raw) => getBackend('cpu').free?.(x.buf);
const t = tsBackend.kernels;

function expectClose(got: Raw, ref: Raw, bound: Raw): void {
  expect(got.shape).toEqual(ref.shape);
  expect(got.dtype).toBe('float32');
  const g = getBackend('cpu').readSync(got), r = ref.buf as Float64Array, b = bound.buf as Float64Array;
  expect(g.length).toBe(r.length);
  for (let i = 0; i < g.length; i++) {
    const err = Math.abs(g[i]! - r[i]!);
    if (!(err <= RTOL * b[i]! + 1e-30)) throw new Error(`element ${i}: got ${g[i]}, expected ${r[i]} (error ${err}, Σ|terms| ${b[i]})`);
  }
  free(got);
}

suite(`cpu backend: BatchMatMul on oneDNN vs ts${why}`, () => {
  // [batch, M, K, N], as in the ts tests: odd sizes, batch 1 and > 1, sizes past the ts blocks.
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1], [1, 3, 5, 7], [1, 17, 33, 9], [3, 4, 4, 4], [2, 6, 2, 5],
    [1, 70, 300, 13], [1, 5, 3, 1030], [2, 65, 257, 6],
  ];
  for (const [B, M, K, N] of shapes) {
    it(`[${B}, ${M}, ${K}] x [${B}, ${K}, ${N}] with every transpose`, () => {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = operand(ta ? [B, K, M] : [B, M, K]), b = operand(tb ? [B, N, K] : [B, K, N]);
          expectClose(k().BatchMatMul(a.cpu, b.cpu, ta, tb), t.BatchMatMul(a.ref, b.ref, ta, tb), t.BatchMatMul(a.abs, b.abs, ta, tb));
        }
      }
    });
  }

  it('handles empty sizes: M = 0, N = 0, and K = 0 (a zero result)', () => {
    expect(k().BatchMatMul(operand([2, 0, 3]).cpu, operand([2, 3, 4]).cpu, false, false).shape).toEqual([2, 0, 4]);
    expect(k().BatchMatMul(operand([1, 3, 5]).cpu, operand([1, 5, 0]).cpu, false, false).shape).toEqual([1, 3, 0]);
    const z = k().BatchMatMul(operand([2, 3, 0]).cpu, operand([2, 0, 4]).cpu, false, false);
    expect(z.shape).toEqual([2, 3, 4]);
    expect(Array.from(getBackend('cpu').readSync(z))).toEqual(new Array(24).fill(0));
  });

  it('rejects mismatched sizes, float64 and a wrong rank, naming the kernel and shapes', () => {
    expect(() => k().BatchMatMul(operand([1, 2, 3]).cpu, operand([1, 4, 5]).cpu, false, false))
      .toThrow(/BatchMatMul.*\[1, 2, 3\].*\[1, 4, 5\]/);
    expect(() => k().BatchMatMul(operand([2, 2, 3]).cpu, operand([3, 3, 5]).cpu, false, false)).toThrow(/batch 2 vs 3/);
    expect(() => k().BatchMatMul(operand([2, 3]).cpu, operand([3, 5]).cpu, false, false)).toThrow(/BatchMatMul: expected rank-3/);
    const f64 = getBackend('cpu').fromArray(new Float64Array(6), [1, 2, 3], 'float64');
    expect(() => k().BatchMatMul(f64, operand([1, 3, 2]).cpu, false, false)).toThrow(/BatchMatMul: the 'cpu' backend does not compute matmul kernels in float64/);
  });
});

interface Case { name: string; x: [number, number, number, number]; o: number; kh: number; kw: number; p: Conv2DParams }
const P = (stride: [number, number], padding: [number, number], dilation: [number, number], groups: number): Conv2DParams =>
  ({ stride, padding, dilation, groups });

// The ts tests' cases, and a ResNet-sized one where oneDNN picks blocked layouts (reorders run).
const cases: Case[] = [
  { name: 'plain 3x3', x: [2, 3, 7, 7], o: 4, kh: 3, kw: 3, p: P([1, 1], [0, 0], [1, 1], 1) },
  { name: 'stride 2, padding 1', x: [2, 3, 9, 8], o: 5, kh: 3, kw: 3, p: P([2, 2], [1, 1], [1, 1], 1) },
  { name: 'dilation 2, padding 2', x: [1, 2, 9, 10], o: 3, kh: 3, kw: 3, p: P([1, 1], [2, 2], [2, 2], 1) },
  { name: 'groups 2', x: [2, 4, 6, 7], o: 6, kh: 3, kw: 3, p: P([1, 1], [1, 1], [1, 1], 2) },
  { name: 'depthwise, stride 2', x: [2, 4, 7, 6], o: 4, kh: 3, kw: 3, p: P([2, 2], [1, 1], [1, 1], 4) },
  { name: 'depthwise, multiplier 2', x: [1, 3, 5, 5], o: 6, kh: 3, kw: 3, p: P([1, 1], [1, 1], [1, 1], 3) },
  { name: '1x1', x: [2, 5, 4, 6], o: 3, kh: 1, kw: 1, p: P([1, 1], [0, 0], [1, 1], 1) },
  { name: '1x1 grouped', x: [2, 6, 3, 5], o: 4, kh: 1, kw: 1, p: P([1, 1], [0, 0], [2, 2], 2) },
  { name: '1x1 padded 0x1', x: [1, 2, 3, 4], o: 3, kh: 1, kw: 1, p: P([1, 1], [0, 1], [1, 1], 1) },
  { name: '1x1 padded 1x0', x: [1, 2, 3, 4], o: 3, kh: 1, kw: 1, p: P([1, 1], [1, 0], [1, 1], 1) },
  { name: '1x1 stride 1x2', x: [1, 3, 5, 6], o: 2, kh: 1, kw: 1, p: P([1, 2], [0, 0], [1, 1], 1) },
  { name: '1x1 stride 2x1', x: [1, 3, 5, 6], o: 2, kh: 1, kw: 1, p: P([2, 1], [0, 0], [1, 1], 1) },
  { name: 'non-square everything', x: [1, 3, 5, 11], o: 2, kh: 2, kw: 4, p: P([1, 3], [1, 0], [2, 1], 1) },
  { name: 'stride 2x1, padding 0x2, 5x2 kernel', x: [2, 2, 9, 4], o: 3, kh: 5, kw: 2, p: P([2, 1], [0, 2], [1, 1], 1) },
  { name: 'padding wider than the input', x: [1, 2, 2, 3], o: 2, kh: 3, kw: 3, p: P([1, 2], [3, 2], [1, 1], 1) },
  { name: 'stride larger than the kernel', x: [1, 2, 11, 10], o: 2, kh: 2, kw: 2, p: P([3, 4], [1, 1], [1, 1], 1) },
  { name: '32 in, 70 out', x: [1, 32, 6, 7], o: 70, kh: 3, kw: 3, p: P([1, 1], [1, 1], [1, 1], 1) },
  { name: 'blocked layouts: 16 -> 32, stride 2, groups 2, dilation 2', x: [2, 16, 10, 9], o: 32, kh: 3, kw: 3,
    p: P([2, 2], [2, 2], [2, 2], 2) },
];

function outSize(c: Case): [number, number] {
  const [, , h, w] = c.x;
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] } = c.p;
  return [Math.max(0, Math.floor((h + 2 * ph - dh * (c.kh - 1) - 1) / sh) + 1),
    Math.max(0, Math.floor((w + 2 * pw - dw * (c.kw - 1) - 1) / sw) + 1)];
}

suite(`cpu backend: Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter on oneDNN vs ts${why}`, () => {
  for (const c of cases) {
    it(`${c.name}: x [${c.x.join(', ')}], ${c.o} out, ${c.kh}x${c.kw}`, () => {
      const wShape = [c.o, c.x[1] / c.p.groups, c.kh, c.kw], yShape = [c.x[0], c.o, ...outSize(c)];
      const x = operand([...c.x]), w = operand(wShape), dy = operand(yShape);
      expectClose(k().Conv2D(x.cpu, w.cpu, c.p), t.Conv2D(x.ref, w.ref, c.p), t.Conv2D(x.abs, w.abs, c.p));
      expectClose(k().Conv2DBackpropInput(dy.cpu, w.cpu, c.x, c.p), t.Conv2DBackpropInput(dy.ref, w.ref, c.x, c.p),
        t.Conv2DBackpropInput(dy.abs, w.abs, c.x, c.p));
      expectClose(k().Conv2DBackpropFilter(x.cpu, dy.cpu, wShape, c.p), t.Conv2DBackpropFilter(x.ref, dy.ref, wShape, c.p),
        t.Conv2DBackpropFilter(x.abs, dy.abs, wShape, c.p));
    });
  }

  it('gives empty output and zero gradients when the kernel is larger than the padded input, or the batch is empty', () => {
    const p = P([1, 1], [0, 0], [1, 1], 1);
    const x = operand([2, 3, 2, 2]), w = operand([4, 3, 3, 3]), dy = operand([2, 4, 0, 0]);
    expect(k().Conv2D(x.cpu, w.cpu, p).shape).toEqual([2, 4, 0, 0]);
    const dx = k().Conv2DBackpropInput(dy.cpu, w.cpu, [2, 3, 2, 2], p);
    expect(Array.from(getBackend('cpu').readSync(dx))).toEqual(new Array(24).fill(0));
    const dw = k().Conv2DBackpropFilter(x.cpu, dy.cpu, [4, 3, 3, 3], p);
    expect(Array.from(getBackend('cpu').readSync(dw))).toEqual(new Array(108).fill(0));
    expect(k().Conv2D(operand([0, 3, 5, 5]).cpu, w.cpu, p).shape).toEqual([0, 4, 3, 3]);
  });

  it('rejects channels that do not fit groups, a wrongly sized output gradient and float64', () => {
    const p = P([1, 1], [0, 0], [1, 1], 2);
    expect(() => k().Conv2D(operand([1, 4, 5, 5]).cpu, operand([4, 3, 3, 3]).cpu, p))
      .toThrow(/Conv2D: .*\[1, 4, 5, 5\].*\[4, 3, 3, 3\].*groups=2/);
    expect(() => k().Conv2DBackpropInput(operand([1, 4, 2, 3]).cpu, operand([4, 2, 3, 3]).cpu, [1, 4, 5, 5], p))
      .toThrow(/Conv2DBackpropInput: .*\[1, 4, 2, 3\].*\[1, 4, 3, 3\]/);
    const f64 = getBackend('cpu').fromArray(new Float64Array(16), [1, 1, 4, 4], 'float64');
    expect(() => k().Conv2D(f64, operand([1, 1, 3, 3]).cpu, P([1, 1], [0, 0], [1, 1], 1))).toThrow(/Conv2D: the 'cpu' backend does not compute conv kernels in float64/);
    expect(() => k().Conv2D(operand([1, 1, 4, 4]).cpu, operand([1, 1, 3, 3]).cpu, P([0, 1], [0, 0], [1, 1], 1)))
      .toThrow(/Conv2D: stride and dilation must be >= 1/);
  });

  it('through the ops, forward and backward: conv2d and bmm agree with ts (checkParity)', () => {
    manualSeed(11);
    const x = randn([2, 4, 7, 6], { requiresGrad: true }), w = randn([6, 2, 3, 3], { requiresGrad: true });
    const conv = (a: Tensor, b: Tensor) => conv2d(a, b, null, { stride: 2, padding: 1, dilation: [1, 2], groups: 2 });
    expect(checkParity(conv, [x, w], { backends: ['ts', 'cpu'] })).toBe(true);
    const a = randn([3, 5, 4], { requiresGrad: true }), b = randn([3, 4, 6], { requiresGrad: true });
    expect(checkParity((p: Tensor, q: Tensor) => bmm(p, q), [a, b], { backends: ['ts', 'cpu'] })).toBe(true);
  });
});

suite(`cpu backend: oneDNN primitive cache and thread count${why}`, () => {
  it('creates a primitive once per shape: repeating a call adds none', () => {
    const addon = loadAddon().addon!;
    const c = cases[cases.length - 1]!;
    const x = operand([...c.x]), w = operand([c.o, c.x[1] / c.p.groups, c.kh, c.kw]);
    const a = operand([2, 7, 5]), b = operand([2, 5, 3]);
    free(k().Conv2D(x.cpu, w.cpu, c.p));
    free(k().BatchMatMul(a.cpu, b.cpu, false, false));
    const before = addon.primitiveCacheStats();
    for (let i = 0; i < 3; i++) {
      free(k().Conv2D(x.cpu, w.cpu, c.p));
      free(k().BatchMatMul(a.cpu, b.cpu, false, false));
    }
    expect(addon.primitiveCacheStats().created).toBe(before.created);
    expect(before.entries).toBeGreaterThan(0);
  });

  it('refuses a new thread count once primitives exist, naming why', () => {
    const addon = loadAddon().addon!;
    expect(addon.getNumThreads()).toBeGreaterThanOrEqual(1);
    expect(() => addon.setNumThreads(1)).toThrow(/setNumThreads: the thread count must be set before the first/);
    expect(() => addon.setNumThreads(0)).toThrow(/at least 1/);
  });
});

// A fresh process, so that no primitive exists yet: OMP_NUM_THREADS is honoured, setNumThreads
// works before the first primitive and is refused after it.
suite(`cpu backend: thread count in a fresh process${why}`, () => {
  it('honours OMP_NUM_THREADS, then setNumThreads before the first primitive, and refuses it after', () => {
    const script = `
      const a = require(${JSON.stringify(addonFile)});
      const out = [a.getNumThreads()];
      a.setNumThreads(1);
      out.push(a.getNumThreads());
      const x = a.cpu.fromArray(new Float32Array(16), [1, 1, 4, 4], 'float32'), w = a.cpu.fromArray(new Float32Array(9), [1, 1, 3, 3], 'float32');
      a.cpu.kernels.Conv2D(x, w, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 });
      try { a.setNumThreads(2); out.push('not refused'); } catch (e) { out.push(e.message); }
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, OMP_NUM_THREADS: '3' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [fromEnv, set, refused] = JSON.parse(r.stdout) as [number, number, string];
    expect(fromEnv).toBe(3);
    expect(set).toBe(1);
    expect(refused).toMatch(/setNumThreads: the thread count must be set before the first matmul or convolution/);
  });
});
