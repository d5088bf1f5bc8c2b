/** Bad input to the neural-network ops: each error names the op, the argument and the shapes or dtypes. */
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, avgPool2d, batchNorm, conv2d, conv2dBackwardInput, crossEntropy, dropout, logSoftmax,
  maxPool2d, maxPool2dBackward, mseLoss, nllLoss, oneHot, ones, softmax, tensor, zeros,
} from '@nodegrad/autograd';

const z = (shape: number[], dtype: 'float32' | 'float64' = 'float64') => zeros(shape, { dtype });

describe('conv2d errors', () => {
  it('rejects inputs and weights that are not 4-D', () => {
    expect(() => conv2d(z([3, 4]), z([2, 3, 1, 1]))).toThrow(
      'conv2d: expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got input of shape [3, 4]');
    expect(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3]))).toThrow(
      'conv2d: expected a 4-D weight [out channels, in channels / groups, kH, kW], got weight of shape [2, 3, 3]');
  });

  it('checks channels against groups', () => {
    expect(() => conv2d(z([1, 4, 5, 5]), z([4, 3, 3, 3]), null, { groups: 2 })).toThrow(
      'conv2d: expected input with C = weight.shape[1] * groups = 6 channels, got input of shape [1, 4, 5, 5]');
    expect(() => conv2d(z([1, 3, 5, 5]), z([4, 2, 3, 3]))).toThrow(
      'conv2d: expected input with C = weight.shape[1] * groups = 2 channels, got input of shape [1, 3, 5, 5]');
    expect(() => conv2d(z([1, 4, 5, 5]), z([5, 2, 3, 3]), null, { groups: 2 })).toThrow(
      'conv2d: weight.shape[0] = 5 out channels must be divisible by groups = 2 (weight of shape [5, 2, 3, 3])');
    expect(() => conv2d(z([1, 4, 5, 5]), z([4, 2, 3, 3]), null, { groups: 0 })).toThrow(
      'conv2d: groups must be a positive integer, got 0');
  });

  it('rejects an output size that is not positive', () => {
    expect(() => conv2d(z([1, 1, 2, 2]), z([1, 1, 3, 3]))).toThrow(
      'conv2d: output size [0, 0] is not positive: input of shape [1, 1, 2, 2] with padding [0, 0] is smaller than ' +
      'the kernel [3, 3] dilated by [1, 1]');
    expect(() => conv2d(z([1, 1, 4, 4]), z([1, 1, 2, 2]), null, { dilation: 4 })).toThrow(/output size \[0, 0\] is not positive/);
  });

  it('checks bias, option values and dtypes', () => {
    expect(() => conv2d(z([1, 2, 4, 4]), z([3, 2, 3, 3]), z([2]))).toThrow(
      'conv2d: bias of shape [2] must have shape [3] (weight of shape [3, 2, 3, 3])');
    expect(() => conv2d(z([1, 2, 4, 4]), z([3, 2, 3, 3]), null, { stride: 0 })).toThrow(
      'conv2d: stride must be an integer >= 1 or a pair of them, got 0');
    expect(() => conv2d(z([1, 2, 4, 4]), z([3, 2, 3, 3]), null, { padding: [1, -1] })).toThrow(
      'conv2d: padding must be an integer >= 0 or a pair of them, got [1,-1]');
    expect(() => conv2d(z([1, 2, 4, 4]), z([3, 2, 3, 3]), null, { padding: 'same', stride: 2 })).toThrow(
      "conv2d: padding='same' is not supported for strided convolutions (stride [2, 2])");
    expect(() => conv2d(z([1, 2, 4, 4], 'float32'), z([3, 2, 3, 3]))).toThrow(
      "conv2d: 'input' has dtype float32 but 'weight' has dtype float64; convert one with .to('float32')");
  });

  it('checks the gradient shape given to conv2dBackwardInput', () => {
    expect(() => conv2dBackwardInput(z([1, 3, 3, 3]), z([3, 2, 3, 3]), [1, 2, 4, 4])).toThrow(
      "conv2dBackwardInput: gradOutput of shape [1, 3, 3, 3] should have the convolution's output shape [1, 3, 2, 2]");
  });
});

describe('pooling errors', () => {
  it('padding at most half the kernel, as PyTorch', () => {
    expect(() => maxPool2d(z([1, 1, 5, 5]), 3, { padding: 2 })).toThrow(
      'maxPool2d: pad should be smaller than or equal to half of kernel size, but got padding [2, 2] with ' +
      'kernelSize [3, 3] (input of shape [1, 1, 5, 5])');
    expect(() => avgPool2d(z([1, 1, 5, 5]), [2, 4], { padding: [1, 3] })).toThrow(
      /^avgPool2d: pad should be smaller than or equal to half of kernel size, but got padding \[1, 3\]/);
  });

  it('rejects bad ranks, sizes and output sizes', () => {
    expect(() => maxPool2d(z([4, 4]), 2)).toThrow(
      'maxPool2d: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got input of shape [4, 4]');
    expect(() => avgPool2d(z([1, 1, 2, 2]), 3)).toThrow(
      'avgPool2d: output size [0, 0] is too small: input of shape [1, 1, 2, 2] with kernelSize [3, 3], stride [3, 3], ' +
      'padding [0, 0], dilation [1, 1]');
    expect(() => maxPool2d(z([1, 1, 4, 4]), 0)).toThrow('maxPool2d: kernelSize must be an integer >= 1 or a pair of them, got 0');
    expect(() => adaptiveAvgPool2d(z([1, 1, 4, 4]), [0, 2])).toThrow(
      'adaptiveAvgPool2d: outputSize must be positive integers, got [0,2] for input of shape [1, 1, 4, 4]');
    expect(() => avgPool2d(tensor([[[1]]], { dtype: 'int32' }), 1)).toThrow("avgPool2d: 'input' must be a float tensor (float32, float64, bfloat16, float16), got int32");
  });

  it('maxPool2dBackward checks its indices', () => {
    expect(() => maxPool2dBackward(z([1, 1, 2, 2]), z([1, 1, 2, 2]), [1, 1, 4, 4])).toThrow(
      'maxPool2dBackward: indices must be int64 or int32, got float64');
    expect(() => maxPool2dBackward(z([1, 1, 2, 2]), zeros([1, 1, 3, 2], { dtype: 'int64' }), [1, 1, 4, 4])).toThrow(
      /maxPool2dBackward: gradOutput \[1, 1, 2, 2\] and indices \[1, 1, 3, 2\] must have one shape/);
  });
});

describe('batchNorm errors', () => {
  it("needs more than one value per channel in training (PyTorch's message)", () => {
    expect(() => batchNorm(z([1, 3]), null, null, null, null, { training: true })).toThrow(
      'batchNorm: Expected more than 1 value per channel when training, got input of shape [1, 3]');
    expect(() => batchNorm(z([1, 2, 1, 1]), null, null, null, null, { training: true })).toThrow(
      'batchNorm: Expected more than 1 value per channel when training, got input of shape [1, 2, 1, 1]');
    expect(batchNorm(z([1, 3]), z([3]), ones([3], { dtype: 'float64' })).shape).toEqual([1, 3]);
  });

  it('needs a positive eps in training, as PyTorch ("batch_norm eps must be positive during training"); eval takes 0', () => {
    expect(() => batchNorm(z([4, 3]), null, null, null, null, { training: true, eps: 0 })).toThrow(
      'batchNorm: eps must be positive during training, got 0');
    expect(batchNorm(z([4, 3]), z([3]), ones([3], { dtype: 'float64' }), null, null, { eps: 0 }).shape).toEqual([4, 3]);
  });

  it('checks per-channel shapes, dtypes, rank and the eval-mode buffers', () => {
    expect(() => batchNorm(z([4, 3]), z([4]), z([3]), null, null, { training: true })).toThrow(
      'batchNorm: runningMean of shape [4] must have shape [3], one value per channel of input of shape [4, 3]');
    expect(() => batchNorm(z([4, 3, 2]), null, null, z([2, 3]), null, { training: true })).toThrow(
      'batchNorm: weight of shape [2, 3] must have shape [3], one value per channel of input of shape [4, 3, 2]');
    expect(() => batchNorm(z([4, 3]), null, null, z([3], 'float32'), null, { training: true })).toThrow(
      "batchNorm: 'input' has dtype float64 but 'weight' has dtype float32; convert one with .to('float64')");
    expect(() => batchNorm(z([4]), null, null, null, null, { training: true })).toThrow(
      'batchNorm: expected an input of shape [N, C, *] with at least 2 dims, got [4]');
    expect(() => batchNorm(z([4, 3]), null, null)).toThrow(
      'batchNorm: evaluation mode (training: false) needs runningMean and runningVar; pass training: true to normalize with batch statistics');
    expect(() => batchNorm(z([4, 3]), z([3]), z([3]), null, null, { training: true, momentum: null })).toThrow(
      'batchNorm: momentum null (a cumulative moving average) needs the numBatchesTracked counter');
    expect(() => batchNorm(z([4, 3]), z([3]), null, null, null, { training: true })).toThrow(
      'batchNorm: give both runningMean and runningVar, or neither');
  });
});

describe('loss errors', () => {
  it('class index out of range', () => {
    const x = z([3, 5]);
    expect(() => crossEntropy(x, [1, 7, 0])).toThrow(
      /^crossEntropy: a target is out of bounds for 5 classes \(input of shape \[3, 5\], ignoreIndex -100\): OneHot: index 7 /);
    expect(() => crossEntropy(x, [1, -1, 0])).toThrow(/^crossEntropy: a target is out of bounds for 5 classes .*index -1 /);
    expect(() => nllLoss(x, tensor([5, 0, 0], { dtype: 'int32' }))).toThrow(/^nllLoss: a target is out of bounds for 5 classes .*index 5 /);
    expect(() => crossEntropy(x, [1, -1, 0], { ignoreIndex: -1 })).not.toThrow();
  });

  it('target shape and dtype mismatch', () => {
    expect(() => crossEntropy(z([2, 5]), [1, 2, 3])).toThrow(
      'crossEntropy: expected target of shape [2] for input of shape [2, 5], got target of shape [3]');
    expect(() => crossEntropy(z([2, 5, 3]), tensor([[1, 2], [3, 4]], { dtype: 'int64' }))).toThrow(
      'crossEntropy: expected target of shape [2, 3] for input of shape [2, 5, 3], got target of shape [2, 2]');
    expect(() => crossEntropy(z([2, 5]), z([2, 4]))).toThrow(
      "crossEntropy: class-probability target of shape [2, 4] must have the input's shape [2, 5] (class indices must be int32 or int64)");
    expect(() => nllLoss(z([2, 5]), z([2]))).toThrow(/^nllLoss: class-index target must be int32 or int64, got float64 of shape \[2\]/);
    expect(() => crossEntropy(z([2, 5]), z([2, 5], 'float32'))).toThrow(
      "crossEntropy: 'input' has dtype float64 but 'target' has dtype float32");
  });

  it('weight, reduction, label smoothing and input dtype', () => {
    expect(() => crossEntropy(z([2, 5]), [1, 2], { weight: z([4]) })).toThrow(
      'crossEntropy: weight of shape [4] must have shape [5], one value per channel of input of shape [2, 5]');
    expect(() => nllLoss(z([2, 5]), [1, 2], { reduction: 'avg' as never })).toThrow(
      "nllLoss: reduction must be 'none', 'mean' or 'sum', got 'avg'");
    expect(() => crossEntropy(z([2, 5]), [1, 2], { labelSmoothing: 1.5 })).toThrow(
      'crossEntropy: labelSmoothing must be between 0.0 and 1.0, got 1.5');
    expect(() => crossEntropy(tensor([[1, 2]], { dtype: 'int64' }), [1])).toThrow(
      "crossEntropy: 'input' must be a float tensor (float32, float64, bfloat16, float16), got int64");
  });

  it('mseLoss shapes and dtypes', () => {
    expect(() => mseLoss(z([3, 4]), z([3]))).toThrow(
      'mseLoss: cannot broadcast input of shape [3, 4] with target of shape [3] (size 4 vs 3 at output dimension 1)');
    expect(() => mseLoss(z([3]), z([3], 'float32'))).toThrow("mseLoss: 'input' has dtype float64 but 'target' has dtype float32");
  });

  it('oneHot indices', () => {
    expect(() => oneHot(z([3]), 4)).toThrow('oneHot: indices must be an int32 or int64 tensor, got float64 of shape [3]');
    expect(() => oneHot(tensor([1, 4], { dtype: 'int64' }), 4)).toThrow(
      /^oneHot: class values must be in \[0, numClasses = 4\) \(indices of shape \[2\]\): OneHot: index 4 /);
    expect(() => oneHot(tensor([1, -2], { dtype: 'int64' }), 4)).toThrow(/^oneHot: class values must be in .*index -2 /);
  });
});

describe('softmax and dropout errors', () => {
  it('softmax dims and dtypes', () => {
    expect(() => softmax(z([2, 3]), 2)).toThrow('softmax: dim 2 is out of range for a tensor of rank 2 (expected in [-2, 1])');
    expect(() => logSoftmax(tensor([1, 2], { dtype: 'int32' }), 0)).toThrow("logSoftmax: 'input' must be a float tensor (float32, float64, bfloat16, float16), got int32");
  });

  it('dropout probability outside [0, 1]', () => {
    expect(() => dropout(z([3]), 1.5)).toThrow('dropout: dropout probability has to be between 0 and 1, but got 1.5');
    expect(() => dropout(z([3]), -0.1)).toThrow('dropout: dropout probability has to be between 0 and 1, but got -0.1');
  });
});
