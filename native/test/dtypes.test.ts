// The 'cpu' backend's elementwise, where, clamp and reduction kernels in float64 and int64 (held
// as double, as on 'ts'): equal to the 'ts' backend's results bit for bit, since both compute in
// double; int32 is refused with a message naming the kernel.
import { describe, expect, it } from 'vitest';
import {
  argmax, backends, clamp, eq, manualSeed, randn, sum, tensor, where, type Tensor,
} from '@nodegrad/autograd';

const cpu = backends().find((b) => b.name === 'cpu');
const suite = cpu?.available ? describe : describe.skip;
const why = cpu?.available ? '' : ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`;
const both = (f: (dev: string) => Tensor) => [Array.from(f('ts').toTypedArray()), Array.from(f('cpu').toTypedArray())];

suite(`cpu backend: float64 and int64 elementwise and reductions vs ts${why}`, () => {
  it('float64 unary, binary with broadcasting, where, clamp and reductions equal ts exactly', () => {
    manualSeed(5);
    const a = randn([3, 4, 5], { dtype: 'float64' }).toTypedArray();
    const b = randn([4, 1], { dtype: 'float64' }).toTypedArray();
    const fn = (dev: string) => {
      const x = tensor(Array.from(a), { dtype: 'float64', device: dev }).reshape([3, 4, 5]);
      const y = tensor(Array.from(b), { dtype: 'float64', device: dev }).reshape([4, 1]);
      const z = x.mul(y).add(y.exp()).tanh().sub(x.abs().add(1).log().sqrt()).div(y.abs().add(0.5));
      return where(x.gt(y), clamp(z, -0.3, 0.4), x.maximum(y)).sum([0, 2]).add(x.max(1).sum());
    };
    const [ts, native] = both(fn);
    expect(native).toEqual(ts);
    expect(fn('cpu').dtype).toBe('float64');
  });

  it('int64: counting correct predictions, sums and argmax', () => {
    const logits = [[0.1, 2, 0.3], [5, 1, 0], [0, 0, 9], [1, 3, 2]];
    const fn = (dev: string) => {
      const pred = argmax(tensor(logits, { device: dev }), 1);
      const target = tensor([1, 0, 1, 1], { dtype: 'int64', device: dev });
      return sum(eq(pred, target)).add(tensor([10], { dtype: 'int64', device: dev }));
    };
    const [ts, native] = both(fn);
    expect(native).toEqual([13]);
    expect(native).toEqual(ts);
  });

  it('int32 arithmetic is refused with the kernel named', () => {
    const x = tensor([1, 2], { dtype: 'int32', device: 'cpu' });
    expect(() => x.add(x)).toThrow(/Add.*int32/);
  });
});
