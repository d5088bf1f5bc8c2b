/**
 * The everyday tensor API where nodegrad once parted from PyTorch 2.15, each against what PyTorch
 * gives (quoted): arange with integer dtypes and bad ranges, float -> integer casts of NaN, inf and
 * out-of-range values, creation shapes, argmax with keepdim, var's unbiased, 0-d dims, pad's value,
 * in-place casts, copy_ and noGrad, tensors from typed arrays. On every device that has the kernels.
 */
import { describe, expect, it } from 'vitest';
import {
  argmax, arange, autocast, cumsum, flatten, fromTypedArray, noGrad, ones, pad, randn, tensor, zeros, type Tensor,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

const vals = (t: Tensor) => Array.from(t.toTypedArray());
const I64_MIN = -(2 ** 63), I32_MIN = -(2 ** 31);

describeBackends(describe, 'creation, as PyTorch 2.15', (device) => {
  it('arange with an integer dtype counts from the truncated start by the truncated step; the length is the real range\'s', () => {
    // torch.arange(0.5, 5, 1, dtype=int64) -> [0..4]; (-3, 3, 1.5) -> [-3, -2, -1, 0]; (0, 1, 0.25) -> [0, 0, 0, 0].
    for (const dtype of ['int64', 'int32'] as const) {
      expect(vals(arange(0.5, 5, 1, { dtype, device }))).toEqual([0, 1, 2, 3, 4]);
      expect(vals(arange(-3, 3, 1.5, { dtype, device }))).toEqual([-3, -2, -1, 0]);
      expect(vals(arange(0, 1, 0.25, { dtype, device }))).toEqual([0, 0, 0, 0]);
    }
  });

  it('arange refuses a step pointing away from the end and infinite or NaN bounds', () => {
    // torch: "upper bound and larger bound inconsistent with step sign"; "unsupported range".
    expect(() => arange(3, 1, 1, { device })).toThrow('arange: upper bound and lower bound inconsistent with step sign (3 -> 1 by 1)');
    expect(() => arange(0, 5, -1, { device })).toThrow(/inconsistent with step sign/);
    expect(() => arange(0, Infinity, 1, { device })).toThrow('arange: unsupported range: 0 -> Infinity by 1');
    expect(() => arange(0, NaN, 1, { device })).toThrow(/unsupported range/);
    expect(arange(2, 2, 1, { device }).shape).toEqual([0]);
  });

  it('refuses negative and fractional sizes, naming the function (the native kernels once ran for ever)', () => {
    // torch: "Trying to create tensor with negative dimension -3".
    expect(() => zeros([2, -3], { device })).toThrow('zeros: the shape must be an array of integer sizes >= 0, got [2, -3]');
    expect(() => ones([-1, -1], { device })).toThrow(/ones: the shape must be/);
    expect(() => randn([2.5], { device })).toThrow(/randn: the shape must be/);
    expect(() => fromTypedArray(new Float32Array(0), [0, -1], { device })).toThrow(/fromTypedArray: the shape must be/);
  });
});

describeBackends(describe, 'casts to integers, as PyTorch 2.15 on x86', (device) => {
  it('NaN, the infinities and values out of range become the type\'s minimum; an int64 narrowed to int32 wraps', () => {
    const x = tensor([1.5, NaN, Infinity, -Infinity, 1e30, 3e9, -0.5], { device });
    // x.to(int64): [1, min, min, min, min, 3000000000, 0]; x.to(int32): [1, min, min, min, min, min, 0].
    expect(vals(x.to('int64'))).toEqual([1, I64_MIN, I64_MIN, I64_MIN, I64_MIN, 3e9, 0]);
    expect(vals(x.to('int32'))).toEqual([1, I32_MIN, I32_MIN, I32_MIN, I32_MIN, I32_MIN, 0]);
    // tensor([3e9, -3e9, 2**40 + 5], dtype=int64).to(int32): [-1294967296, 1294967296, 5].
    expect(vals(tensor([3e9, -3e9, 2 ** 40 + 5], { dtype: 'int64', device }).to('int32'))).toEqual([-1294967296, 1294967296, 5]);
  });
}, { needs: [['Cast', 'float32']] });

describeBackends(describe, 'reductions and shapes, as PyTorch 2.15', (device) => {
  it('argmax/argmin over everything with keepdim keep every dim, of size 1', () => {
    const x = tensor([[[1, 5], [2, 0]]], { device });
    expect(argmax(x, undefined, true).shape).toEqual([1, 1, 1]);
    expect(vals(argmax(x, undefined, true))).toEqual([1]);
  });

  it("var takes PyTorch's unbiased, and refuses options it does not know", () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]], { device });
    // x.var(1, unbiased=False) -> [0.6667, 0.6667]
    expect(vals(x.var(1, { unbiased: false }))).toEqual([2 / 3, 2 / 3].map(Math.fround));
    expect(vals(x.var(1, { unbiased: true }))).toEqual([1, 1]);
    expect(() => x.var(1, { biased: true } as never)).toThrow('var: unknown option biased (known: correction, unbiased, keepdim)');
    expect(() => x.var(1, false as never)).toThrow(/var: options must be an object/);
  });

  it("a 0-d tensor's dims are 0 and -1 only (torch: dimension out of range)", () => {
    expect(() => cumsum(tensor(1, { device }), 2)).toThrow('cumsum: dim 2 is out of range for a tensor of rank 0');
    expect(() => flatten(tensor(1, { device }), 0, 1)).toThrow(/flatten: dim 1 is out of range/);
    expect(flatten(tensor(1, { device }), 0, -1).shape).toEqual([1]);
  });

  it('pad refuses a value that is no number (an options object gave NaN padding)', () => {
    expect(() => pad(ones([2], { device }), [1, 1], { mode: 'reflect' } as never)).toThrow(/pad: value must be a number/);
  });
}, { needs: [['ArgMax', 'float32'], ['Sum', 'float32']] });

describeBackends(describe, 'in-place ops, as PyTorch 2.15', (device) => {
  it("copy_ converts the source to the tensor's dtype (torch: int64 zeros copy_ [1.7, -2.5] -> [1, -2])", () => {
    const z = zeros([2], { dtype: 'int64', device });
    z.copy_(tensor([1.7, -2.5], { device }));
    expect(vals(z)).toEqual([1, -2]);
  });

  it("an in-place op's result is cast to the tensor's dtype, except a float result into an integer tensor", () => {
    // torch: bf16 [1.5, 2.25].add_(f32 [0.1, 0.2]) under autocast -> bf16 [1.6016, 2.4531];
    // int64.mul_(2.5): "result type Float can't be cast to the desired output type Long".
    const b = tensor([1.5, 2.25], { dtype: 'bfloat16', device });
    autocast({ device: device.startsWith('cuda') ? 'cuda' : 'cpu', dtype: 'bfloat16' }, () => b.add_(tensor([0.1, 0.2], { device })));
    expect([b.dtype, vals(b)]).toEqual(['bfloat16', [1.6015625, 2.453125]]);
    expect(() => tensor([1, 2], { dtype: 'int64', device }).mul_(2.5)).toThrow("mul_: result type float32 can't be cast to the desired output type int64");
  });

  it('a saved slice whose base changed in place fails the backward (torch: "modified by an inplace operation")', () => {
    const x = tensor([[1, 2], [3, 4]], { device, requiresGrad: true });
    const a = x.mul(1), y = a.narrow(0, 0, 1), l = y.mul(y).sum();
    a.mul_(2); // it once refreshed y silently and gave the gradient of the new values
    expect(() => l.backward()).toThrow(/has been modified by an inplace operation/);
  });

  it('under noGrad an in-place op keeps the history: of a view\'s base, and of a copy_ target (not the source\'s)', () => {
    // torch: b = x * 2; noGrad(b.reshape(6).add_(1)); (b * w).sum().backward() -> x.grad = 2 w
    const x = tensor([1, 2, 3, 4, 5, 6], { device, requiresGrad: true }), w = tensor([1, 2, 3, 4, 5, 6], { device });
    const b = x.mul(2);
    noGrad(() => b.reshape([2, 3]).add_(1));
    b.mul(w).sum().backward();
    expect(vals(x.grad!)).toEqual([2, 4, 6, 8, 10, 12]);
    // torch: t0 = x.clone(); t1 = t0.exp(); noGrad(t0.copy_(t1)); (t0 * 1000 + t1).sum().backward() -> x.grad = 1000 + e^x
    const y = tensor([0, 1], { device, requiresGrad: true });
    const t0 = y.clone(), t1 = t0.exp();
    noGrad(() => t0.copy_(t1));
    t0.mul(1000).add(t1).sum().backward();
    expect(vals(y.grad!).map((v) => Math.fround(v))).toEqual([1001, 1000 + Math.E].map(Math.fround));
  });
}, { needs: [['Slice', 'float32']] });

describe('tensors from typed arrays and what tensor() refuses', () => {
  it('tensor() of a typed array is one dim in its dtype (torch.tensor of a NumPy array); any typed array converts', () => {
    const t = tensor(new Float64Array([1, 2]));
    expect([t.dtype, t.shape, vals(t)]).toEqual(['float64', [2], [1, 2]]);
    expect(vals(fromTypedArray(new Uint8Array([1, 200]), [2]))).toEqual([1, 200]);
    expect(vals(fromTypedArray(new Float64Array([2.7, NaN]), [2], { dtype: 'int64' }))).toEqual([2, I64_MIN]);
  });

  it('names a value that is no number (there is no bool dtype)', () => {
    expect(() => tensor([true, false] as never)).toThrow('tensor: expected numbers in (nested) arrays, got boolean (there is no bool dtype: give 1 and 0)');
  });
});
