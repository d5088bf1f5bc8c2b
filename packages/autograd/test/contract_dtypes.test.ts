/**
 * float64 and int64 (held as double, as on 'ts') through elementwise ops, where, clamp and
 * reductions on every backend that declares them: equal to the 'ts' reference bit for bit, since
 * both compute in double (on 'cuda:N' within 1e-12: its transcendental functions round
 * differently); and integer results (argmax, argmin, oneHot, counts) exactly.
 */
import { describe, expect, it } from 'vitest';
import {
  argmax, argmin, clamp, eq, fromTypedArray, getBackend, manualSeed, oneHot, randn, sum, tensor, where, type Tensor,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

const REF = { ts: 'the reference backend' };
const host = (t: Tensor) => Array.from(t.toTypedArray());

describeBackends(describe, 'float64 elementwise and reductions equal ts exactly', (device) => {
  it('unary, binary with broadcasting, where, clamp and reductions', () => {
    manualSeed(5);
    const a = randn([3, 4, 5], { dtype: 'float64' }).toTypedArray();
    const b = randn([4, 1], { dtype: 'float64' }).toTypedArray();
    const fn = (dev: string) => {
      const x = tensor(Array.from(a), { dtype: 'float64', device: dev }).reshape([3, 4, 5]);
      const y = tensor(Array.from(b), { dtype: 'float64', device: dev }).reshape([4, 1]);
      const z = x.mul(y).add(y.exp()).tanh().sub(x.abs().add(1).log().sqrt()).div(y.abs().add(0.5));
      return where(x.gt(y), clamp(z, -0.3, 0.4), x.maximum(y)).sum([0, 2]).add(x.amax(1).sum());
    };
    const got = fn(device);
    expect(got.dtype).toBe('float64');
    const want = host(fn('ts'));
    if (!device.startsWith('cuda:')) {
      expect(host(got)).toEqual(want);
    } else {
      // CUDA's double exp, tanh and log are within 1 ulp of the exact value (CUDA C++ Programming
      // Guide, mathematical functions), not V8's bit for bit; a few such roundings, then sums.
      host(got).forEach((v, i) => expect(Math.abs(v - want[i]!), `element ${i}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want[i]!))));
    }
  });
}, {
  skip: REF,
  needs: [['Mul', 'float64'], ['Exp', 'float64'], ['Tanh', 'float64'], ['Log', 'float64'], ['Where', 'float64'],
    ['Clamp', 'float64'], ['Sum', 'float64'], ['Max', 'float64']],
});

describeBackends(describe, 'int64 counts and indices equal ts exactly', (device) => {
  it('counting correct predictions: argmax, eq, sum and add in int64', () => {
    const logits = [[0.1, 2, 0.3], [5, 1, 0], [0, 0, 9], [1, 3, 2]];
    const fn = (dev: string) => {
      const pred = argmax(tensor(logits, { device: dev }), 1);
      const target = tensor([1, 0, 1, 1], { dtype: 'int64', device: dev });
      return sum(eq(pred, target)).add(tensor([10], { dtype: 'int64', device: dev }));
    };
    expect(host(fn(device))).toEqual([13]);
    expect(host(fn(device))).toEqual(host(fn('ts')));
  });

  it('argmax and argmin take the first index on ties; oneHot agrees and names an index out of range', () => {
    const data = Float32Array.from([1, 3, 3, 0, -1, -1, 2, 2, 5, 5, 1, 5]);
    const t = fromTypedArray(data, [3, 4]).to(device);
    expect(host(argmax(t, 1))).toEqual([1, 2, 0]);
    expect(host(argmin(t, 0))).toEqual([1, 1, 2, 0]);
    const idx = fromTypedArray(Float64Array.from([2, 0, 1]), [3], { dtype: 'int64' });
    expect(host(oneHot(idx.to(device), 4))).toEqual(host(oneHot(idx, 4)));
    expect(() => getBackend(device).kernels.OneHot(idx.to(device), 2, 'float32')).toThrow(/OneHot: index 2 .* out of range for 2 classes/);
  });
}, { skip: REF, needs: [['ArgMax', 'float32'], ['Equal', 'int64'], ['Sum', 'int64'], ['Add', 'int64'], ['OneHot', 'int64']] });
