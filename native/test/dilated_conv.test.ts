/**
 * A dilated convolution run undilated over a zero-stuffed weight (lib/dilated_conv.ts, what the
 * 'cuda' devices do in deterministic mode), against the backend's own dilated kernels: forward,
 * input gradient and weight gradient, on 'ts' in float64 (the same products, summed in another
 * order: 1e-12) and on 'cpu' in float32 (1e-5) and bfloat16 (a bfloat16 step). The GPU kit runs
 * the contract suites on 'cuda:0' in deterministic mode, through this form, against 'ts'.
 */
import { describe, expect, it } from 'vitest';
import type { Backend, Conv2DParams, DType, Raw } from '@nodegrad/autograd';
import { undilatedConv } from '../lib/dilated_conv.js';
import { cpu, expectClose, normals, put, read, skipReason, ts, type Tol } from './half_util.js';

type Case = { name: string; x: number[]; w: number[]; p: Conv2DParams };
const p = (stride: [number, number], padding: [number, number], dilation: [number, number], groups = 1): Conv2DParams =>
  ({ stride, padding, dilation, groups });
const CASES: Case[] = [
  { name: '3x3, dilation 2, padding 2', x: [2, 3, 9, 8], w: [4, 3, 3, 3], p: p([1, 1], [2, 2], [2, 2]) },
  { name: '3x2, dilation 3x1, stride 2, padding 1x0', x: [1, 2, 11, 7], w: [3, 2, 3, 2], p: p([2, 2], [1, 0], [3, 1]) },
  { name: 'grouped 3x3, dilation 2, stride 2', x: [2, 4, 10, 10], w: [6, 2, 3, 3], p: p([2, 2], [1, 1], [2, 2], 2) },
  { name: '2x3, dilation 1x3 (one axis only)', x: [1, 3, 6, 12], w: [2, 3, 2, 3], p: p([1, 1], [0, 3], [1, 3]) },
];

function outShape(c: Case): number[] {
  const size = (i: 0 | 1) => Math.floor((c.x[2 + i]! + 2 * c.p.padding[i] - c.p.dilation[i] * (c.w[2 + i]! - 1) - 1) / c.p.stride[i]) + 1;
  return [c.x[0]!, c.w[0]!, size(0), size(1)];
}

const numelOf = (s: number[]) => s.reduce((a, b) => a * b, 1);

function check(b: Backend, dtype: DType, tol: Tol): void {
  const k = b.kernels;
  const freed: unknown[] = [];
  const u = undilatedConv(k, (buf) => { freed.push(buf); b.free?.(buf); });
  for (const [i, c] of CASES.entries()) {
    const x = put(b, normals(numelOf(c.x), 10 + i), c.x, dtype), w = put(b, normals(numelOf(c.w), 20 + i, 0.5), c.w, dtype);
    const dy = put(b, normals(numelOf(outShape(c)), 30 + i), outShape(c), dtype);
    const both = (what: string, f: (kk: typeof u) => Raw) => {
      const [got, want] = [f(u), f(k)];
      expect(got.shape, `${c.name}: ${what} shape`).toEqual(want.shape);
      expectClose(read(b, got), read(b, want), tol, `${c.name}: ${what}`);
    };
    both('forward', (kk) => kk.Conv2D(x, w, c.p));
    both('input gradient', (kk) => kk.Conv2DBackpropInput(dy, w, c.x, c.p));
    both('weight gradient', (kk) => kk.Conv2DBackpropFilter(x, dy, c.w, c.p));
  }
  // Per case: the padded and the stuffed weight of the forward and of the input gradient, and the
  // stuffed weight's gradient.
  expect(freed).toHaveLength(5 * CASES.length);
}

describe('a dilated convolution as an undilated one over a zero-stuffed weight', () => {
  it("on 'ts' in float64", () => check(ts(), 'float64', { atol: 1e-12, rtol: 1e-12 }));
  (skipReason ? it.skip : it)(`on 'cpu' in float32 and bfloat16${skipReason}`, () => {
    check(cpu(), 'float32', { atol: 1e-5, rtol: 1e-5 });
    check(cpu(), 'bfloat16', { atol: 2 ** -6, rtol: 2 ** -7 });
  });
});

describe('its temporaries are freed when a step throws (they are no tensors: nothing else would free them)', () => {
  it("on 'ts': a failing convolution after the weight is stuffed, and a failing slice after the weight gradient", () => {
    const b = ts();
    const c = CASES[0]!;
    for (const failing of ['Conv2D', 'Conv2DBackpropInput', 'Slice'] as const) {
      const freed: unknown[] = [];
      let made = 0;
      const k = { ...b.kernels };
      // Count the buffers the kernels make; the failing kernel throws instead of making one.
      for (const name of ['Pad', 'Slice', 'Conv2DBackpropFilter'] as const) {
        const f = k[name] as (...a: unknown[]) => Raw;
        (k as Record<string, unknown>)[name] = (...a: unknown[]) => { made++; return f(...a); };
      }
      (k as Record<string, unknown>)[failing] = () => { throw new Error(`${failing} failed`); };
      const u = undilatedConv(k, (buf) => freed.push(buf));
      const x = put(b, normals(numelOf(c.x), 1), c.x, 'float64'), w = put(b, normals(numelOf(c.w), 2), c.w, 'float64');
      const dy = put(b, normals(numelOf(outShape(c)), 3), outShape(c), 'float64');
      const run = failing === 'Conv2D' ? () => u.Conv2D(x, w, c.p)
        : failing === 'Conv2DBackpropInput' ? () => u.Conv2DBackpropInput(dy, w, c.x, c.p) : () => u.Conv2DBackpropFilter(x, dy, c.w, c.p);
      expect(run).toThrow(`${failing} failed`);
      expect(freed.length, failing).toBe(made);
      expect(made, failing).toBeGreaterThan(0);
    }
  });
});
