import { describe, expect, it } from 'vitest';
import {
  add, bmm, cat, chunk, expand, flatten, linear, matmul, mul, narrow, pad, permute, reshape, slice, split,
  squeeze, stack, sum, transpose, unsqueeze, view, where, zeros,
} from '@nodegrad/autograd';

const f64 = (shape: number[]) => zeros(shape, { dtype: 'float64' });
const f32 = (shape: number[]) => zeros(shape, { dtype: 'float32' });

describe('error messages name the op, the argument and the shapes or dtypes', () => {
  it('mismatched broadcast', () => {
    expect(() => add(f64([2, 3]), f64([4]))).toThrow(/add: cannot broadcast input of shape \[2, 3\] with other of shape \[4\]/);
    expect(() => mul(f64([2, 3]), f64([3, 2]))).toThrow(/mul:.*\[2, 3\].*\[3, 2\]/);
    expect(() => where(f64([2]), f64([3]), 0)).toThrow(/where:.*condition.*\[2\].*\[3\]/);
    expect(() => expand(f64([2, 3]), [2, 4])).toThrow(/expand: input of shape \[2, 3\] cannot expand to \[2, 4\]/);
    expect(() => expand(f64([3]), [-1, 3])).toThrow(/expand: invalid size -1 at dim 0/);
  });

  it('matmul and linear dimensions', () => {
    expect(() => matmul(f64([2, 3]), f64([4, 5]))).toThrow(/matmul.*\[2, 3\].*\[4, 5\].*inner dimensions 3 and 4 differ/);
    expect(() => matmul(f64([3]), f64([4]))).toThrow(/matmul.*\[3\].*\[4\].*inner dimensions 3 and 4 differ/);
    expect(() => matmul(f64([2, 2, 3]), f64([3, 3, 1]))).toThrow(/matmul: batch dimensions \[2\] of input \[2, 2, 3\] and \[3\] of other \[3, 3, 1\]/);
    expect(() => matmul(f64([]), f64([3]))).toThrow(/matmul: both arguments need at least 1 dimension.*\[\].*\[3\]/);
    expect(() => bmm(f64([2, 2, 3]), f64([3, 3, 2]))).toThrow(/bmm:.*\[2, 2, 3\].*\[3, 3, 2\]/);
    expect(() => linear(f64([2, 3]), f64([4, 5]))).toThrow(/linear: input of shape \[2, 3\].*weight of shape \[4, 5\].*3 vs in_features 5/);
    expect(() => linear(f64([2, 3]), f64([4, 3]), f64([3]))).toThrow(/linear: bias of shape \[3\].*\[4, 3\]/);
    expect(() => linear(f64([2, 3]), f64([3]))).toThrow(/linear: weight must be 2-D.*\[3\]/);
  });

  it('float32 and float64 mixed', () => {
    expect(() => add(f32([2]), f64([2]))).toThrow(/add: 'input' has dtype float32 but 'other' has dtype float64/);
    expect(() => matmul(f64([2, 2]), f32([2, 2]))).toThrow(/matmul: 'input' has dtype float64 but 'other' has dtype float32/);
    expect(() => linear(f64([2, 3]), f64([4, 3]), f32([4]))).toThrow(/linear:.*'bias' has dtype float32/);
    expect(() => cat([f64([2]), f32([2])])).toThrow(/cat: 'tensors\[0\]' has dtype float64 but 'tensors\[1\]' has dtype float32/);
    expect(() => where(f64([2]), f64([2]), f32([2]))).toThrow(/where:.*float64.*float32/);
  });

  it('cat, stack, split', () => {
    expect(() => cat([f64([2, 3]), f64([3, 4])], 1)).toThrow(/cat: tensors\[1\] of shape \[3, 4\] does not match tensors\[0\] of shape \[2, 3\].*dim 1/);
    expect(() => cat([f64([2, 3]), f64([2, 3, 1])])).toThrow(/cat: tensors\[1\] of shape \[2, 3, 1\]/);
    expect(() => cat([f64([]), f64([])])).toThrow(/cat: zero-dimensional tensor/);
    expect(() => cat([])).toThrow(/cat: expected a non-empty list/);
    expect(() => cat([f64([2, 3])], 2)).toThrow(/cat: dim 2 is out of range for a tensor of rank 2/);
    expect(() => stack([f64([2, 3]), f64([3, 2])])).toThrow(/stack:.*tensors\[0\] is \[2, 3\] and tensors\[1\] is \[3, 2\]/);
    expect(() => stack([f64([]), f64([])], 1)).toThrow(/stack: dim 1 is out of range/);
    expect(() => split(f64([5]), [2, 2])).toThrow(/split: sizes \[2, 2\] must .*sum to 5/);
    expect(() => chunk(f64([5]), 0)).toThrow(/chunk: chunks must be a positive integer/);
  });

  it('reshape, view and layout ops', () => {
    expect(() => reshape(f64([2, 3]), [4, 2])).toThrow(/reshape: shape \[4, 2\] is invalid for input of shape \[2, 3\] \(6 elements\)/);
    expect(() => reshape(f64([2, 3]), [-1, -1])).toThrow(/reshape: only one dimension can be -1/);
    expect(() => reshape(f64([2, 3]), [-1, 4])).toThrow(/reshape: shape \[-1, 4\] is invalid for input of shape \[2, 3\]/);
    expect(() => view(f64([6]), [5])).toThrow(/view: shape \[5\] is invalid for input of shape \[6\]/);
    expect(() => flatten(f64([2, 3, 4]), 2, 1)).toThrow(/flatten: startDim 2 comes after endDim 1/);
    expect(() => permute(f64([2, 3]), [0])).toThrow(/permute: got 1 dims \[0\] for a tensor of shape \[2, 3\]/);
    expect(() => permute(f64([2, 3]), [1, 1])).toThrow(/permute: dims \[1, 1\] repeat a dimension/);
    expect(() => transpose(f64([2, 3]), 0, 2)).toThrow(/transpose: dim 2 is out of range for a tensor of rank 2/);
    expect(() => squeeze(f64([2, 3]), -3)).toThrow(/squeeze: dim -3 is out of range/);
    expect(() => unsqueeze(f64([2, 3]), 3)).toThrow(/unsqueeze: dim 3 is out of range for a tensor of rank 3/);
    expect(() => sum(f64([2, 3]), [0, -2])).toThrow(/sum: dims \[0, -2\] repeat a dimension/);
  });

  it('sliceScatter: a src that is not the slice\'s shape', () => {
    expect(() => f64([2, 5]).sliceScatter(f64([2, 2]), 1, 0, null, 2))
      .toThrow(/sliceScatter: src has shape \[2, 2\] but the slice of the input \[2, 5\] has shape \[2, 3\]/);
  });

  it('narrow, slice and pad bounds', () => {
    expect(() => narrow(f64([2, 5]), 1, 3, 3)).toThrow(/narrow: start 3 and length 3 do not fit dim 1 of size 5 \(input shape \[2, 5\]\)/);
    expect(() => narrow(f64([2, 5]), 1, -6, 1)).toThrow(/narrow: start -6/);
    expect(() => narrow(f64([]), 0, 0, 1)).toThrow(/narrow: cannot narrow a 0-d tensor/);
    expect(() => slice(f64([4]), 0, 0, 4, 0)).toThrow(/slice: step must be a positive integer, got 0/);
    expect(() => slice(f64([4]), 0, 0, 4, -1)).toThrow(/slice: step must be a positive integer, got -1/);
    expect(() => pad(f64([2, 2]), [1])).toThrow(/pad: pads \[1\] must have an even length of at most 2 \* 2 for input of shape \[2, 2\]/);
    expect(() => pad(f64([2, 2]), [1, 1, 1, 1, 1, 1])).toThrow(/pad: pads \[1, 1, 1, 1, 1, 1\] must have an even length/);
    expect(() => pad(f64([2, 2]), [-2, -1])).toThrow(/pad: pads \[-2, -1\] crop dim 1 of input \[2, 2\] below size 0/);
  });
});
