/**
 * Edge cases where nodegrad once parted from PyTorch, each against the value PyTorch 2.15 gives
 * (quoted beside it): reductions over dim=[] and over a 0-d tensor's dim, the gradient of a NaN
 * maximum; elementwise gradients at bounds, NaNs and zeros; a mean loss over no targets; integer
 * tensors beside fractional numbers; shape ops on 0-d and empty tensors. On every device that has
 * the kernels.
 */
import { describe, expect, it } from 'vitest';
import {
  add, amax, argmax, chunk, grad, clamp, crossEntropy, cumsum, div, eq, gather, greater, indexSelect, less, maskedFill, pad,
  reshape, scatterAdd, split, transpose, logSumExp, max, maximum, mean, min, minimum, nllLoss, norm, ones, pow, sign, sum, tensor, variance,
  type Tensor,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

const f64 = { dtype: 'float64' } as const;
const vals = (t: Tensor) => Array.from(t.dataSync());

describeBackends(describe, 'reductions at their edges, as PyTorch 2.15', (device) => {
  const o = { ...f64, device };

  it('dim=[] reduces every dim (x.sum([]) has shape [], x.sum([], keepdim=True) [1, 1])', () => {
    const x = ones([2, 3], o);
    for (const [y, v] of [[sum(x, []), 6], [mean(x, []), 1], [amax(x, []), 1], [variance(x, []), 0], [norm(x, 2, []), Math.sqrt(6)]] as const) {
      expect([y.shape, vals(y)]).toEqual([[], [v]]);
    }
    expect(sum(x, [], true).shape).toEqual([1, 1]);
  });

  it("a 0-d tensor's dim 0 or -1 reduces nothing: z = tensor(2.5)", () => {
    const z = tensor(2.5, o);
    // z.sum(0), z.mean(-1), z.amax(0, keepdim=True), logsumexp(z, 0), vector_norm(z, 2, 0): 2.5, 0-d; z.var(0): nan.
    for (const y of [sum(z, 0), mean(z, -1), amax(z, 0, true), logSumExp(z, 0), norm(z, 2, 0)]) expect([y.shape, vals(y)]).toEqual([[], [2.5]]);
    expect(vals(variance(z, 0))).toEqual([NaN]);
    // z.max(0): values 2.5, indices 0, both 0-d; z.argmax(0) 0.
    const m = max(z, 0);
    expect([m.values.shape, vals(m.values), m.indices.shape, vals(m.indices)]).toEqual([[], [2.5], [], [0]]);
    expect([argmax(z, 0).shape, vals(argmax(z, 0))]).toEqual([[], [0]]);
    const zg = tensor(2.5, { ...o, requiresGrad: true });
    max(zg, 0).values.mul(3).backward();
    expect(vals(zg.grad!)).toEqual([3]);
    // "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
    expect(() => sum(z, 1)).toThrow(/^sum: dim 1 is out of range for a tensor of rank 0 \(expected in \[-1, 0\]\)$/);
  });

  it('max() of a tensor holding NaN sends the gradient to the NaNs; amax gives NaN; ties share', () => {
    // x = [1, nan, 3]: x.max().backward() gives [0, 1, 0]; x.amax().backward() [nan, nan, nan].
    const x = tensor([1, NaN, 3], { ...o, requiresGrad: true });
    max(x).backward();
    expect(vals(x.grad!)).toEqual([0, 1, 0]);
    const y = tensor([1, NaN, 3], { ...o, requiresGrad: true });
    amax(y).backward();
    expect(vals(y.grad!)).toEqual([NaN, NaN, NaN]);
    // (-[1, 3, 3]).min().backward(): [0, -0.5, -0.5].
    const t = tensor([1, 3, 3], { ...o, requiresGrad: true });
    min(t.neg()).backward();
    expect(vals(t.grad!)).toEqual([-0, -0.5, -0.5]);
    expect(() => amax(tensor([], o))).toThrow(/^amax: cannot reduce over dim 0 of size 0 \(shape \[0\]\)$/);
  });
}, { needs: [['Sum', 'float64'], ['Max', 'float64'], ['ArgMax', 'float64']] });

describeBackends(describe, 'elementwise gradients at bounds, NaNs and zeros, as PyTorch 2.15', (device) => {
  const o = { ...f64, device };
  const gradOf = (f: (x: Tensor) => Tensor, data: number[]) => {
    const x = tensor(data, { ...o, requiresGrad: true });
    f(x).sum().backward();
    return vals(x.grad!);
  };

  it('clamp: min(max(x, min), max), no gradient at a bound or at NaN', () => {
    // clamp([-2, 0, 2], 1, -1) = [-1, -1, -1]; clamp(x, nan) = [nan, nan, nan] with gradient 0.
    expect(vals(clamp(tensor([-2, 0, 2], o), 1, -1))).toEqual([-1, -1, -1]);
    expect(vals(clamp(tensor([-2, 0, 2], o), NaN))).toEqual([NaN, NaN, NaN]);
    expect(gradOf((x) => clamp(x, NaN), [-2, 0, 2])).toEqual([0, 0, 0]);
    // x = [nan, 0, 1, -1]: clamp(x, -1, 1) gives [0, 1, 0, 0]; clamp(x, min=0) [0, 0, 1, 0].
    expect(gradOf((x) => clamp(x, -1, 1), [NaN, 0, 1, -1])).toEqual([0, 1, 0, 0]);
    expect(gradOf((x) => clamp(x, 0), [NaN, 0, 1, -1])).toEqual([0, 0, 1, 0]);
  });

  it('maximum/minimum give the gradient to both sides of a NaN', () => {
    // (elu's and hardtanh's gradients at a NaN input depend on the tensor's length in PyTorch: its
    // vectorized kernels give NaN and 0, their scalar tails 1. nodegrad gives the vectorized ones.)
    const a = tensor([NaN, 1, 2], { ...o, requiresGrad: true }), b = tensor([1, NaN, 2], { ...o, requiresGrad: true });
    maximum(a, b).sum().backward();
    expect([vals(a.grad!), vals(b.grad!)]).toEqual([[1, 1, 0.5], [1, 1, 0.5]]);
    a.grad = null; b.grad = null;
    minimum(a, b.mul(3)).sum().backward();
    // minimum([nan, 1, 2], [3, nan, 6]): a.grad [1, 1, 1], b.grad [3, 3, 0].
    expect([vals(a.grad!), vals(b.grad!)]).toEqual([[1, 1, 1], [3, 3, 0]]);
  });

  it('sign records a zero gradient', () => {
    // sign(x).mul(3).sum().backward() gives zeros (nodegrad refused: the output required no grad).
    expect(gradOf((x) => sign(x).mul(3), [-2, 0, 5])).toEqual([0, 0, 0]);
  });

  it('pow: 1 ** nan and (-1) ** inf are 1; its gradients at zero and at a negative base', () => {
    expect(vals(pow(tensor([1, 1, -1, -1, 2], o), tensor([NaN, Infinity, Infinity, -Infinity, NaN], o)))).toEqual([1, 1, 1, 1, NaN]);
    const grads = (av: number, bv: number) => {
      const a = tensor([av], { ...o, requiresGrad: true }), b = tensor([bv], { ...o, requiresGrad: true });
      pow(a, b).backward();
      return [...vals(a.grad!), ...vals(b.grad!)];
    };
    // (a, b) = (0, 0): [0, 0]; (-2, 2): [-4, nan]; (0, -1): [-inf, -inf]; (0, 2): [0, 0].
    expect([grads(0, 0), grads(-2, 2), grads(0, -1), grads(0, 2)]).toEqual([[0, 0], [-4, NaN], [-Infinity, -Infinity], [0, 0]]);
  });

  it("pow's second derivative where the exponent is 0: 0, at a zero base too", () => {
    // torch.autograd.functional.hessian(lambda x: x.pow(0).sum(), tensor([0., 1.])): zeros.
    const x = tensor([0, 1], { ...o, requiresGrad: true });
    const [g] = grad(pow(x, 0).sum(), [x], { createGraph: true });
    g!.sum().backward();
    expect(vals(x.grad!)).toEqual([0, 0]);
  });

  it("div's divisor gradient is -(a / b) / b, finite where b * b underflows", () => {
    // a = b = 1e-200: a.grad 1e200, b.grad -1e200 (a / b^2 gave -inf).
    const a = tensor([1e-200], { ...o, requiresGrad: true }), b = tensor([1e-200], { ...o, requiresGrad: true });
    div(a, b).backward();
    expect([vals(a.grad!), vals(b.grad!)]).toEqual([[1e200], [-1e200]]);
  });
}, { needs: [['Mul', 'float64'], ['Activation', 'float64'], ['Pow', 'float64']] });

describeBackends(describe, 'a mean loss over targets that are all ignored, as PyTorch 2.15', (device) => {
  it('is NaN with a zero gradient (crossEntropy with and without smoothing, nllLoss); zero class weights give NaN', () => {
    // F.cross_entropy(x, [-100, -100]) is nan and x.grad zeros, label_smoothing 0.1 too; nll_loss the same;
    // weight [0, 1, 1] with targets [0, 0]: nan, and x.grad nan.
    const target = tensor([-100, -100], { dtype: 'int64', device });
    const losses: ((x: Tensor) => Tensor)[] = [(x) => crossEntropy(x, target), (x) => crossEntropy(x, target, { labelSmoothing: 0.1 }),
      (x) => nllLoss(x, target)];
    for (const f of losses) {
      const x = tensor([[1, 2, 3], [0, 1, 0]], { device, requiresGrad: true });
      const loss = f(x);
      loss.backward();
      // Signed zeros aside (torch writes +0, the gradient through neg here is -0).
      expect([vals(loss), vals(x.grad!).map((v) => v + 0)]).toEqual([[NaN], [0, 0, 0, 0, 0, 0]]);
    }
    const x = tensor([[1, 2, 3], [0, 1, 0]], { device, requiresGrad: true });
    crossEntropy(x, tensor([0, 0], { dtype: 'int64', device }), { weight: tensor([0, 1, 1], { device }) }).backward();
    expect(vals(x.grad!)).toEqual([NaN, NaN, NaN, NaN, NaN, NaN]);
  });
});

describeBackends(describe, 'integer tensors, as PyTorch 2.15', (device) => {
  const i64 = (data: number[]) => tensor(data, { dtype: 'int64', device });

  it('compare with a number they cannot hold in floating point; powers, pads, sums stay integers', () => {
    // x = [1, 2, 3] (int64): x == 2.5 all False, x < 2.5 [T, T, F], x > 2.5 [F, F, T]; x == nan all False.
    const x = i64([1, 2, 3]);
    expect([eq(x, 2.5), less(x, 2.5), greater(x, 2.5), eq(x, NaN), less(x, 2 ** 70)].map(vals))
      .toEqual([[0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 1]]);
    // [3, 2] ** [-2, -1] = [0, 0]; [1, -1] ** [-3, -3] = [1, -1]; pad([1, 2], (1, 1), value=0.5) = [0, 1, 2, 0].
    const p = i64([3, 2]).pow(i64([-2, -1]));
    expect([p.dtype, vals(p).map((v) => v + 0)]).toEqual(['int64', [0, 0]]);
    expect(vals(i64([1, -1]).pow(i64([-3, -3])))).toEqual([1, -1]);
    // [0, 2, 1] ** [-1, -1, -2] = [0, 0, 1]; tensor([2]) ** -1: "Integers to negative integer powers are not allowed."
    expect(vals(i64([0, 2, 1]).pow(i64([-1, -1, -2])))).toEqual([0, 0, 1]);
    expect(() => i64([2]).pow(-1)).toThrow('pow: integers to negative integer powers are not allowed (int64 ** -1)');
    expect(vals(pad(i64([1, 2]), [1, 1], 0.5))).toEqual([0, 1, 2, 0]);
    // int32 sums and cumsums are int64: sum([2^31 - 1, 1]) = 2147483648.
    const big = tensor([2 ** 31 - 1, 1], { dtype: 'int32', device });
    expect([sum(big).dtype, vals(sum(big)), vals(cumsum(big, 0))]).toEqual(['int64', [2 ** 31], [2 ** 31 - 1, 2 ** 31]]);
    expect(() => add(tensor([1], { dtype: 'int32', device }), tensor([1.5], { device })))
      .toThrow("add: 'input' has dtype int32 but 'other' has dtype float32; convert one with .to('float32')");
  });
}, { needs: [['Sum', 'int64'], ['Pow', 'float64'], ['Less', 'float64']] });

describeBackends(describe, 'shape and indexing ops on 0-d and empty tensors, as PyTorch 2.15', (device) => {
  const o = { ...f64, device };
  const i64 = (data: number | number[]) => tensor(data, { dtype: 'int64', device });

  it('0-d: gather, scatterAdd and transpose take dim 0; split, chunk and a second index are refused', () => {
    const z = tensor(5, o);
    // gather(tensor(5.), 0, tensor(0)) = 5; scatter_add(tensor(5.), 0, tensor(0), tensor(1.)) = 6; transpose(z, 0, -1) = z.
    expect([gather(z, 0, i64(0)), scatterAdd(z, 0, i64(0), tensor(1, o)), transpose(z, 0, -1)].map((t) => [t.shape, vals(t)]))
      .toEqual([[[], [5]], [[], [6]], [[], [5]]]);
    // "split expects at least a 1-dimensional tensor"; "Index to scalar can have only 1 value, got 2 value(s)".
    expect(() => split(z, 1)).toThrow('split: expects a tensor of at least 1 dim, got shape []');
    expect(() => chunk(z, 2)).toThrow('chunk: expects a tensor of at least 1 dim, got shape []');
    expect(() => indexSelect(z, 0, i64([0, 0]))).toThrow('indexSelect: a 0-d input takes one index, got 2');
  });

  it('empty: chunk gives `chunks` empty pieces; an ambiguous -1 is refused; maskedFill broadcasts to the mask', () => {
    // chunk(zeros(0, 2), 2, 0): two [0, 2] pieces.
    expect(chunk(tensor([[1, 2]], o).narrow(0, 0, 0), 2, 0).map((t) => t.shape)).toEqual([[0, 2], [0, 2]]);
    // reshape(zeros(2, 0, 3), (0, -1)): "the unspecified dimension size -1 can be any value and is ambiguous".
    expect(() => reshape(tensor([[1, 2]], o).narrow(0, 0, 0), [0, -1])).toThrow(/cannot reshape \[0, 2\] \(0 elements\) into \[0, -1\]/);
    // masked_fill(x [3], mask [2, 3], 9) has shape [2, 3].
    const m = maskedFill(tensor([1, 2, 3], o), tensor([[1, 0, 0], [0, 1, 0]], o), 9);
    expect([m.shape, vals(m)]).toEqual([[2, 3], [9, 2, 3, 1, 9, 3]]);
  });

  it.skipIf(device === 'ts')(`an index on another device is refused${device === 'ts' ? ' (skipped: needs a second device)' : ''}`, () => {
    expect(() => gather(tensor([1, 2], o), 0, tensor([0], { dtype: 'int64', device: 'ts' })))
      .toThrow(`gather: index is on ts but input is on ${device}`);
  });

  it('norm(x, 0.5) has gradient 0 at the zeros', () => {
    // torch.norm(x, 0.5) with x = [0, 1, 4]: x.grad [0, 3, 1.5].
    const x = tensor([0, 1, 4], { ...o, requiresGrad: true });
    norm(x, 0.5).backward();
    expect(vals(x.grad!)).toEqual([0, 3, 1.5]);
  });
}, { needs: [['Norm', 'float64'], ['Where', 'float64']] });
