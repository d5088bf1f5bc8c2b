/**
 * The pooling kernels on every backend against the 'ts' kernels in float64 on the same
 * (float32-rounded) data: max pooling exactly (values and indices, on data full of ties), sums
 * within RTOL · the same kernel on |inputs| (contract_cases.ts); and how they refuse bad input.
 */
import { describe, expect, it } from 'vitest';
import { getBackend, tsBackend, type Pool2DParams } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { kernelParity, lcg } from './contract_cases.js';

const t = tsBackend.kernels;

function pc(shape: number[], kk: number[], s: number[], pad: number[], ceilMode: boolean, d = [1, 1]) {
  const p: Pool2DParams = { kernel: [kk[0]!, kk[1]!], stride: [s[0]!, s[1]!], padding: [pad[0]!, pad[1]!],
    dilation: [d[0]!, d[1]!], ceilMode, countIncludePad: false };
  return { shape, p, name: `${JSON.stringify(shape)} k${kk} s${s} p${pad}${ceilMode ? ' ceil' : ''} d${d}` };
}
// The ts tests' edge cases: ceil-mode overhang (the [1, 1, 3, 3] one drops its last window),
// kernel == input, 1x1, N or C of 1, non-square kernels and strides, an unbatched [C, H, W]
// input; plus sizes large enough for a backend's parallel path.
const POOL_CASES = [
  pc([2, 3, 5, 6], [2, 3], [2, 2], [1, 1], true),
  pc([1, 1, 3, 3], [2, 2], [2, 2], [1, 1], true),
  pc([1, 2, 5, 5], [2, 2], [2, 2], [0, 0], true),
  pc([1, 2, 4, 4], [4, 4], [1, 1], [0, 0], false),
  pc([2, 1, 1, 1], [1, 1], [1, 1], [0, 0], false),
  pc([3, 4, 4], [3, 3], [3, 3], [1, 1], true),
  pc([1, 1, 6, 7], [3, 2], [3, 1], [1, 0], true),
  pc([2, 2, 7, 6], [3, 3], [2, 2], [1, 1], false),
  pc([1, 1, 4, 4], [3, 3], [2, 2], [1, 1], true),
  pc([4, 16, 32, 32], [3, 3], [2, 2], [1, 1], false),
  pc([2, 8, 31, 30], [2, 2], [2, 2], [0, 0], true),
];
const DILATED = [
  pc([1, 2, 7, 5], [3, 2], [2, 1], [1, 1], false, [2, 2]),
  pc([1, 1, 6, 6], [2, 3], [2, 2], [1, 1], true, [3, 2]),
  pc([2, 4, 20, 20], [3, 3], [1, 1], [2, 2], false, [2, 2]),
];
// Sizes that do not divide, output bigger than the input, global pooling, N or C of 1, unbatched.
const ADAPTIVE: [number[], [number, number]][] = [
  [[2, 3, 5, 7], [3, 4]], [[1, 1, 4, 4], [1, 1]], [[1, 2, 3, 3], [5, 2]], [[2, 1, 6, 6], [3, 3]], [[3, 5, 2], [2, 2]],
  [[1, 3, 1, 5], [1, 3]], [[2, 2, 3, 2], [7, 5]], [[8, 64, 7, 7], [1, 1]], [[4, 16, 33, 17], [5, 3]],
];

describeBackends(describe, 'pooling kernels vs the ts kernels in float64', (device) => {
  const { kernels: k, operand, expectClose, host } = kernelParity(device);
  const rand = lcg(11);
  const op = (shape: readonly number[], f: (i: number) => number = rand) => operand(shape, f);

  it.each([...POOL_CASES, ...DILATED])('MaxPool2D: values, indices, backward, scatter and gather: $name', ({ shape, p }) => {
    // Few distinct values, so windows hold ties and the first-maximum rule matters.
    const x = op(shape, () => Math.floor(rand() * 2));
    const got = k().MaxPool2DWithIndices(x.dev, p), ref = t.MaxPool2DWithIndices(x.ref, p);
    expectClose(got.y, ref.y, 0, 'y');
    expectClose(k().MaxPool2D(x.dev, p), ref.y, 0, 'y without indices');
    expect(got.indices.dtype).toBe('int64');
    expect(got.indices.shape).toEqual(ref.indices.shape);
    expect(host(got.indices)).toEqual(Array.from(ref.indices.buf as Float64Array));
    expectClose(k().MaxPool2DGather(x.dev, got.indices), t.MaxPool2DGather(x.ref, ref.indices), 0, 'gather');
    const dy = op(ref.y.shape);
    const dxRef = t.MaxPool2DScatter(dy.ref, ref.indices, shape), bound = t.MaxPool2DScatter(dy.abs, ref.indices, shape);
    expectClose(k().MaxPool2DScatter(dy.dev, got.indices, shape), dxRef, bound, 'dx by scatter');
    // cuDNN's form: the same argmax found again from x (and y).
    expectClose(k().MaxPool2DBackward(dy.dev, x.dev, k().MaxPool2D(x.dev, p), p), dxRef, bound, 'dx from (dy, x, y)');
  });

  it('MaxPool2D: ties take the first maximum, NaN wins, an all -inf window points at its first element', () => {
    const p = pc([], [2, 2], [2, 2], [0, 0], false).p;
    expect(host(k().MaxPool2DWithIndices(op([1, 1, 2, 2], (i) => [1, 3, 3, 1][i]!).dev, p).indices)).toEqual([1]);
    for (const v of [[1, NaN, 5, 2], [NaN, 7, NaN, 2], [3, 4, 5, NaN]]) {
      const x = op([1, 1, 2, 2], (i) => v[i]!);
      const got = k().MaxPool2DWithIndices(x.dev, p), ref = t.MaxPool2DWithIndices(x.ref, p);
      const y = host(got.y);
      expect(y[0]).toBeNaN();
      expect(host(got.indices)).toEqual(Array.from(ref.indices.buf as Float64Array));
      const one = getBackend(device).fromArray(Float32Array.from([7]), [1, 1, 1, 1], 'float32');
      expect(host(k().MaxPool2DBackward(one, x.dev, k().MaxPool2D(x.dev, p), p))).toEqual(
        Array.from({ length: 4 }, (_, i) => (i === (ref.indices.buf as Float64Array)[0] ? 7 : 0)));
    }
    const inf = op([1, 1, 2, 2], () => -Infinity);
    const q = pc([], [2, 2], [1, 1], [1, 1], false).p;
    expect(host(k().MaxPool2D(inf.dev, q))).toEqual(new Array(9).fill(-Infinity));
    expect(host(k().MaxPool2DWithIndices(inf.dev, q).indices)).toEqual([0, 0, 1, 0, 0, 1, 2, 2, 3]);
  });

  it('MaxPool2DScatter and MaxPool2DGather take int32 indices too, and reject indices outside the plane', () => {
    const x = op([2, 3, 6, 6]);
    const p = pc([], [2, 2], [2, 2], [0, 0], false).p;
    const { indices } = t.MaxPool2DWithIndices(x.ref, p);
    const i32 = getBackend(device).fromArray(Int32Array.from(indices.buf as Float64Array), indices.shape, 'int32');
    const dy = op(indices.shape);
    expectClose(k().MaxPool2DScatter(dy.dev, i32, x.ref.shape), t.MaxPool2DScatter(dy.ref, indices, x.ref.shape), 0);
    expectClose(k().MaxPool2DGather(x.dev, i32), t.MaxPool2DGather(x.ref, indices), 0);
    const bad = getBackend(device).fromArray(Float64Array.from(indices.buf as Float64Array, (v, i) => (i === 5 ? 36 : v)),
      indices.shape, 'int64');
    expect(() => k().MaxPool2DScatter(dy.dev, bad, x.ref.shape)).toThrow(/MaxPool2DScatter: an index lies outside/);
    expect(() => k().MaxPool2DGather(x.dev, bad)).toThrow(/MaxPool2DGather: an index lies outside/);
  });

  it.each(POOL_CASES)('AvgPool2D and its backward, with and without counted padding: $name', ({ shape, p: p0 }) => {
    for (const countIncludePad of [false, true]) {
      const p = { ...p0, countIncludePad };
      const x = op(shape);
      const y = t.AvgPool2D(x.ref, p);
      expectClose(k().AvgPool2D(x.dev, p), y, t.AvgPool2D(x.abs, p), `y (countIncludePad ${countIncludePad})`);
      const dy = op(y.shape);
      expectClose(k().AvgPool2DBackward(dy.dev, shape, p), t.AvgPool2DBackward(dy.ref, shape, p),
        t.AvgPool2DBackward(dy.abs, shape, p), `dx (countIncludePad ${countIncludePad})`);
    }
  });

  it.each(ADAPTIVE)('AdaptiveAvgPool2D and its backward: %j -> %j', (shape, out) => {
    const x = op(shape);
    const y = t.AdaptiveAvgPool2D(x.ref, out);
    expectClose(k().AdaptiveAvgPool2D(x.dev, out), y, t.AdaptiveAvgPool2D(x.abs, out), 'y');
    const dy = op(y.shape);
    expectClose(k().AdaptiveAvgPool2DBackward(dy.dev, shape), t.AdaptiveAvgPool2DBackward(dy.ref, shape),
      t.AdaptiveAvgPool2DBackward(dy.abs, shape), 'dx');
  });

  it('rejects bad parameters, shapes and dtypes, naming the kernel', () => {
    const x = op([1, 1, 4, 4]).dev;
    expect(() => k().MaxPool2D(x, pc([], [2, 2], [2, 2], [2, 2], false).p)).toThrow(/MaxPool2D.*padding \[2, 2\].*\[1, 1, 4, 4\]/);
    expect(() => k().AvgPool2D(op([4, 4]).dev, pc([], [2, 2], [2, 2], [0, 0], false).p)).toThrow(/AvgPool2D.*\[4, 4\]/);
    expect(() => k().MaxPool2D(x, pc([], [5, 5], [1, 1], [0, 0], false).p)).toThrow(/MaxPool2D: output size/);
    expect(() => k().AvgPool2D(x, pc([], [2, 2], [1, 1], [0, 0], false, [2, 2]).p)).toThrow(/AvgPool2D: dilation must be \[1, 1\]/);
    expect(() => k().AvgPool2DBackward(op([1, 1, 3, 3]).dev, [1, 1, 4, 4], pc([], [2, 2], [2, 2], [0, 0], false).p))
      .toThrow(/AvgPool2DBackward: dy \[1, 1, 3, 3\] should be \[1, 1, 2, 2\]/);
    expect(() => k().AdaptiveAvgPool2D(x, [0, 2])).toThrow(/AdaptiveAvgPool2D: output size \[0, 2\] must be positive/);
    expect(() => k().AdaptiveAvgPool2DBackward(op([1, 2, 2, 2]).dev, [1, 1, 4, 4])).toThrow(/AdaptiveAvgPool2DBackward: dy/);
    const f64 = getBackend(device).fromArray(new Float64Array(16), [1, 1, 4, 4], 'float64');
    expect(() => k().MaxPool2D(f64, pc([], [2, 2], [2, 2], [0, 0], false).p)).toThrow(/MaxPool2D.*float32/);
  });
}, { skip: { ts: 'the reference backend' }, needs: [['MaxPool2D', 'float32'], ['AvgPool2D', 'float32'], ['AdaptiveAvgPool2D', 'float32']] });
