/**
 * BatchMatMul and Conv2D with its two backprop kernels on every backend against the 'ts' kernels
 * in float64 on the same (float32-rounded) data, within RTOL · Σ|terms| (contract_cases.ts); and
 * how the kernels refuse bad shapes, naming kernel and shapes.
 */
import { describe, expect, it } from 'vitest';
import { getBackend, supports, tsBackend, type Conv2DParams } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { kernelParity, lcg } from './contract_cases.js';

const t = tsBackend.kernels;
const REF = { ts: 'the reference backend' };

describeBackends(describe, 'BatchMatMul vs the ts kernel in float64', (device) => {
  const { kernels: k, operand, expectClose, host } = kernelParity(device);
  const rand = lcg(7);
  const op = (shape: number[]) => operand(shape, rand);
  // [batch, M, K, N]: odd sizes, batch 1 and > 1, sizes past the ts kernel's blocks.
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1], [1, 3, 5, 7], [1, 17, 33, 9], [3, 4, 4, 4], [2, 6, 2, 5],
    [1, 70, 300, 13], [1, 5, 3, 1030], [2, 65, 257, 6],
  ];
  for (const [B, M, K, N] of shapes) {
    it(`[${B}, ${M}, ${K}] x [${B}, ${K}, ${N}] with every transpose`, () => {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = op(ta ? [B, K, M] : [B, M, K]), b = op(tb ? [B, N, K] : [B, K, N]);
          expectClose(k().BatchMatMul(a.dev, b.dev, ta, tb), t.BatchMatMul(a.ref, b.ref, ta, tb),
            t.BatchMatMul(a.abs, b.abs, ta, tb), `transA ${ta}, transB ${tb}`);
        }
      }
    });
  }

  it('handles empty sizes: M = 0, N = 0, and K = 0 (a zero result)', () => {
    expect(k().BatchMatMul(op([2, 0, 3]).dev, op([2, 3, 4]).dev, false, false).shape).toEqual([2, 0, 4]);
    expect(k().BatchMatMul(op([1, 3, 5]).dev, op([1, 5, 0]).dev, false, false).shape).toEqual([1, 3, 0]);
    const z = k().BatchMatMul(op([2, 3, 0]).dev, op([2, 0, 4]).dev, false, false);
    expect(z.shape).toEqual([2, 3, 4]);
    expect(host(z)).toEqual(new Array(24).fill(0));
  });

  it('rejects mismatched sizes, an undeclared float64 and a wrong rank, naming the kernel and shapes', () => {
    expect(() => k().BatchMatMul(op([1, 2, 3]).dev, op([1, 4, 5]).dev, false, false))
      .toThrow(/BatchMatMul.*\[1, 2, 3\].*\[1, 4, 5\]/);
    expect(() => k().BatchMatMul(op([2, 2, 3]).dev, op([3, 3, 5]).dev, false, false)).toThrow(/batch 2 vs 3/);
    expect(() => k().BatchMatMul(op([2, 3]).dev, op([3, 5]).dev, false, false)).toThrow(/BatchMatMul: expected rank-3/);
    const backend = getBackend(device);
    if (!supports(backend, 'BatchMatMul', 'float64')) { // 'cuda:N' computes it
      const f64 = backend.fromArray(new Float64Array(6), [1, 2, 3], 'float64');
      expect(() => k().BatchMatMul(f64, op([1, 3, 2]).dev, false, false))
        .toThrow(new RegExp(`BatchMatMul: the '${device}' backend does not compute matmul kernels in float64`));
    }
  });
}, { skip: REF, needs: [['BatchMatMul', 'float32']] });

// The kernels read both operands as one element type; one of another dtype would be read at the
// wrong element size, past the end of its buffer.
describeBackends(describe, 'matmul and convolution refuse operands of two dtypes', (device) => {
  it('BatchMatMul, Conv2D and both convolution gradients name the two operands, their dtypes and shapes', () => {
    const b = getBackend(device);
    const f32 = (shape: number[]) => b.fromArray(new Float32Array(shape.reduce((x, y) => x * y, 1)), shape, 'float32');
    const bf16 = (shape: number[]) => b.fromArray(new Float32Array(shape.reduce((x, y) => x * y, 1)), shape, 'bfloat16');
    const k = b.kernels;
    const p = P([1, 1], [0, 0], [1, 1], 1);
    expect(() => k.BatchMatMul(bf16([1, 2, 3]), f32([1, 3, 2]), false, false))
      .toThrow("BatchMatMul: 'a' is bfloat16 [1, 2, 3] but 'b' is float32 [1, 3, 2]; both operands must have one dtype");
    expect(() => k.Conv2D(bf16([1, 2, 3, 3]), f32([4, 2, 1, 1]), p))
      .toThrow("Conv2D: 'x' is bfloat16 [1, 2, 3, 3] but 'w' is float32 [4, 2, 1, 1]; both operands must have one dtype");
    expect(() => k.Conv2DBackpropInput(bf16([1, 4, 3, 3]), f32([4, 2, 1, 1]), [1, 2, 3, 3], p))
      .toThrow("Conv2DBackpropInput: 'dy' is bfloat16 [1, 4, 3, 3] but 'w' is float32 [4, 2, 1, 1]; both operands must have one dtype");
    expect(() => k.Conv2DBackpropFilter(bf16([1, 2, 3, 3]), f32([1, 4, 3, 3]), [4, 2, 1, 1], p))
      .toThrow("Conv2DBackpropFilter: 'x' is bfloat16 [1, 2, 3, 3] but 'dy' is float32 [1, 4, 3, 3]; both operands must have one dtype");
  });
}, { skip: REF, needs: [['BatchMatMul', 'bfloat16'], ['Conv2D', 'bfloat16'], ['BatchMatMul', 'float32'], ['Conv2D', 'float32']] });

interface Case { name: string; x: [number, number, number, number]; o: number; kh: number; kw: number; p: Conv2DParams }
const P = (stride: [number, number], padding: [number, number], dilation: [number, number], groups: number): Conv2DParams =>
  ({ stride, padding, dilation, groups });

// The ts kernel tests' cases, and a ResNet-sized one where a backend may pick blocked layouts.
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
  { name: '16 -> 32, stride 2, groups 2, dilation 2', x: [2, 16, 10, 9], o: 32, kh: 3, kw: 3,
    p: P([2, 2], [2, 2], [2, 2], 2) },
];

function outSize(c: Case): [number, number] {
  const [, , h, w] = c.x;
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] } = c.p;
  return [Math.max(0, Math.floor((h + 2 * ph - dh * (c.kh - 1) - 1) / sh) + 1),
    Math.max(0, Math.floor((w + 2 * pw - dw * (c.kw - 1) - 1) / sw) + 1)];
}

describeBackends(describe, 'Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter vs the ts kernels in float64', (device) => {
  const { kernels: k, operand, expectClose, host } = kernelParity(device);
  const rand = lcg(7);
  const op = (shape: number[]) => operand(shape, rand);
  for (const c of cases) {
    it(`${c.name}: x [${c.x.join(', ')}], ${c.o} out, ${c.kh}x${c.kw}`, () => {
      const wShape = [c.o, c.x[1] / c.p.groups, c.kh, c.kw], yShape = [c.x[0], c.o, ...outSize(c)];
      const x = op([...c.x]), w = op(wShape), dy = op(yShape);
      expectClose(k().Conv2D(x.dev, w.dev, c.p), t.Conv2D(x.ref, w.ref, c.p), t.Conv2D(x.abs, w.abs, c.p), 'y');
      expectClose(k().Conv2DBackpropInput(dy.dev, w.dev, c.x, c.p), t.Conv2DBackpropInput(dy.ref, w.ref, c.x, c.p),
        t.Conv2DBackpropInput(dy.abs, w.abs, c.x, c.p), 'dx');
      expectClose(k().Conv2DBackpropFilter(x.dev, dy.dev, wShape, c.p), t.Conv2DBackpropFilter(x.ref, dy.ref, wShape, c.p),
        t.Conv2DBackpropFilter(x.abs, dy.abs, wShape, c.p), 'dw');
    });
  }

  it('gives empty output and zero gradients when the kernel is larger than the padded input, or the batch is empty', () => {
    const p = P([1, 1], [0, 0], [1, 1], 1);
    const x = op([2, 3, 2, 2]), w = op([4, 3, 3, 3]), dy = op([2, 4, 0, 0]);
    expect(k().Conv2D(x.dev, w.dev, p).shape).toEqual([2, 4, 0, 0]);
    expect(host(k().Conv2DBackpropInput(dy.dev, w.dev, [2, 3, 2, 2], p))).toEqual(new Array(24).fill(0));
    expect(host(k().Conv2DBackpropFilter(x.dev, dy.dev, [4, 3, 3, 3], p))).toEqual(new Array(108).fill(0));
    expect(k().Conv2D(op([0, 3, 5, 5]).dev, w.dev, p).shape).toEqual([0, 4, 3, 3]);
  });

  it('rejects channels that do not fit groups, a wrongly sized output gradient, bad strides and float64', () => {
    const p = P([1, 1], [0, 0], [1, 1], 2);
    expect(() => k().Conv2D(op([1, 4, 5, 5]).dev, op([4, 3, 3, 3]).dev, p))
      .toThrow(/Conv2D: .*\[1, 4, 5, 5\].*\[4, 3, 3, 3\].*groups=2/);
    expect(() => k().Conv2DBackpropInput(op([1, 4, 2, 3]).dev, op([4, 2, 3, 3]).dev, [1, 4, 5, 5], p))
      .toThrow(/Conv2DBackpropInput: .*\[1, 4, 2, 3\].*\[1, 4, 3, 3\]/);
    const f64 = getBackend(device).fromArray(new Float64Array(16), [1, 1, 4, 4], 'float64');
    expect(() => k().Conv2D(f64, op([1, 1, 3, 3]).dev, P([1, 1], [0, 0], [1, 1], 1)))
      .toThrow(new RegExp(`Conv2D: the '${device}' backend does not compute conv kernels in float64`));
    expect(() => k().Conv2D(op([1, 1, 4, 4]).dev, op([1, 1, 3, 3]).dev, P([0, 1], [0, 0], [1, 1], 1)))
      .toThrow(/Conv2D: stride and dilation must be >= 1/);
  });
}, { skip: REF, needs: [['Conv2D', 'float32'], ['Conv2DBackpropInput', 'float32'], ['Conv2DBackpropFilter', 'float32']] });
