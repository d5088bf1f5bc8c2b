/**
 * Tensors print as PyTorch prints them. Each expected string below is what torch 2.15 printed
 * (repr) for the same values, except the grad_fn name: nodegrad names its op ('mul'), PyTorch its
 * backward class ('MulBackward0'). Run in the 'ts' default device, so a 'cpu' tensor names its device.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { arange, backends, dual, mul, tensor, zeros } from '@nodegrad/autograd';

describe('printing a tensor', () => {
  const cases: [string, () => unknown, string][] = [
    ['float64 leaf', () => tensor([[1, 2]], { dtype: 'float64', requiresGrad: true }), 'tensor([[1., 2.]], dtype=float64, requires_grad=True)'],
    ['4 decimals, padded', () => tensor([0.1, -2.5, 3.14159]), 'tensor([ 0.1000, -2.5000,  3.1416])'],
    ['0-d, integer-valued', () => tensor(3), 'tensor(3.)'],
    ['0-d', () => tensor(0.5), 'tensor(0.5000)'],
    ['scientific over 3 orders of magnitude', () => tensor([1e-5, 1, 12345]), 'tensor([1.0000e-05, 1.0000e+00, 1.2345e+04])'],
    ['nan and inf', () => tensor([NaN, Infinity, -1, 2]), 'tensor([nan, inf, -1.,  2.])'],
    ['int64 (a default dtype)', () => tensor([1, 2, 300], { dtype: 'int64' }), 'tensor([  1,   2, 300])'],
    ['int32', () => tensor([1, -2], { dtype: 'int32' }), 'tensor([ 1, -2], dtype=int32)'],
    ['lines wrap at 80 characters', () => arange(30).div(7),
      'tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n' +
      '        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n' +
      '        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n' +
      '        3.8571, 4.0000, 4.1429])'],
    ['empty', () => zeros([0, 3]), 'tensor([], size=(0, 3))'],
    ['empty int64 names its dtype', () => tensor([], { dtype: 'int64' }), 'tensor([], dtype=int64)'],
    ['a tie rounds to even, as Python', () => tensor([0.03125, 1]), 'tensor([0.0312, 1.0000])'],
    ['a tie rounds to even in scientific notation', () => tensor([1.03125, 1e-5]), 'tensor([1.0312e+00, 1.0000e-05])'],
    ['an odd digit before a tie rounds up', () => tensor([0.09375, 1]), 'tensor([0.0938, 1.0000])'],
    ['negative zero keeps its sign', () => tensor([-0, 1]), 'tensor([-0., 1.])'],
    ['0-d negative zero', () => tensor(-0), 'tensor(-0.)'],
    ['a dual tensor shows its tangent', () => dual(tensor([1, 2]), tensor([0.5, -1])), 'tensor([1., 2.], tangent=tensor([ 0.5000, -1.0000]))'],
    ['3-d', () => arange(8).reshape([2, 2, 2]), 'tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]])'],
    ['with its op', () => mul(tensor([1, 2], { requiresGrad: true }), 2), 'tensor([2., 4.], grad_fn=<mul>)'],
    ['summarised over 1,000 elements', () => arange(2000).reshape([40, 50]), [
      'tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,',
      '         4.9000e+01],',
      '        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,',
      '         9.9000e+01],',
      '        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,',
      '         1.4900e+02],',
      '        ...,',
      '        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,',
      '         1.8990e+03],',
      '        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,',
      '         1.9490e+03],',
      '        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,',
      '         1.9990e+03]])'].join('\n')],
  ];
  it.each(cases)('%s', (_, make, expected) => {
    const t = make();
    expect(String(t)).toBe(expected);
    expect(inspect(t)).toBe(expected);
  });

  const cpu = backends().find((b) => b.name === 'cpu')?.available;
  it.skipIf(!cpu)(`names a device other than the default${cpu ? '' : " (skipped: the native 'cpu' backend is not available)"}`, () => {
    // torch 2.15 on a GPU: tensor([1., 2.], device='cuda:0')
    expect(String(tensor([1, 2], { device: 'cpu' }))).toBe("tensor([1., 2.], device='cpu')");
  });

  it.skipIf(!cpu)(`a freed native tensor still names itself instead of throwing${cpu ? '' : " (skipped: the native 'cpu' backend is not available)"}`, () => {
    const t = tensor([1, 2], { device: 'cpu' });
    t.dispose();
    expect(String(t)).toMatch(/^tensor\(<.+>, shape=\[2\], dtype=float32, device='cpu'\)$/);
  });
});
