/**
 * The ops of issue 14 §3 against PyTorch (fixtures from scripts/fixtures/make_ops_fixtures.py, on
 * every backend, float64): values and gradients, kinks included. Then gradcheck and gradgradcheck
 * of each in float64 on every backend, and their argument errors.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  argmax, argmin, backends, cos, cumsum, dot, einsum, elu, erf, expm1, fromTypedArray, gather, gelu, getBackend, grad, hardtanh, indexSelect,
  leakyRelu, log1p, logSumExp, manualSeed, maskedFill, norm, outer, randn, scatterAdd, silu, sin, softplus, supports, t,
  tensor, type Tensor,
} from '@nodegrad/autograd';
import { describeBackends, gradcheck, gradgradcheck } from '@nodegrad/autograd/testing';

interface J { dtype: 'float64' | 'int64'; shape: number[]; data: number[] }
interface Case { name: string; inputs: J[]; out: J; gradOutput: J; grads: (J | null)[] }
// JSON has no Infinity or NaN: the script writes them as 'inf', '-inf' and 'nan'.
const fx = JSON.parse(readFileSync(new URL('./fixtures/ops_more.json', import.meta.url), 'utf8'),
  (_k, v: unknown) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v)) as
  { generator: string; torch: string; cases: Case[] };

type F = (...xs: Tensor[]) => Tensor;
const mask = (device: string) => tensor([[1], [0], [1]], { device });
/** The calls of make_ops_fixtures.py, under the same names. */
const CALLS: Record<string, F> = {
  'log1p': log1p, 'expm1': expm1, 'sin': sin, 'cos': cos, 'erf': erf,
  'softplus': (x) => softplus(x),
  'softplus(beta 2, threshold 1)': (x) => softplus(x, 2, 1),
  'softplus at its kinks': (x) => x.softplus(2, 1),
  'gelu': (x) => gelu(x),
  'gelu(tanh)': (x) => gelu(x, 'tanh'),
  'silu': silu,
  'elu': (x) => elu(x),
  'elu(alpha 0.5) at its kinks': (x) => x.elu(0.5),
  'leakyRelu': (x) => leakyRelu(x),
  'leakyRelu(0.2) at its kinks': (x) => x.leakyRelu(0.2),
  'hardtanh': (x) => hardtanh(x),
  'hardtanh(-0.5, 2) at its kinks': (x) => x.hardtanh(-0.5, 2),
  'logSumExp(x, 1)': (x) => logSumExp(x, 1),
  'logSumExp(x, [0, 2], keepdim)': (x) => x.logSumExp([0, 2], true),
  'logSumExp with -inf': (x) => logSumExp(x, 1),
  'norm(x)': (x) => norm(x),
  'norm(x, 1, 1)': (x) => norm(x, 1, 1),
  'norm(x, inf, 0, keepdim)': (x) => norm(x, Infinity, 0, true),
  'norm(x, -inf, 1)': (x) => norm(x, -Infinity, 1),
  'norm(x, 3, [0, 1])': (x) => x.norm(3, [0, 1]),
  'norm(x, fro, 1) with a zero row': (x) => norm(x, 'fro', 1),
  'cumsum(x, 0)': (x) => cumsum(x, 0),
  'cumsum(x, -1)': (x) => x.cumsum(-1),
  'gather(x, 1, index)': (x, i) => gather(x, 1, i!),
  'gather(x, 0, index) with a smaller index': (x, i) => x.gather(0, i!),
  'scatterAdd(x, 0, index, src) with repeats': (x, i, s) => scatterAdd(x, 0, i!, s!),
  'scatterAdd(x, 1, index, src) with a smaller index': (x, i, s) => x.scatterAdd(1, i!, s!),
  'indexSelect(x, 0, index) with repeats': (x, i) => indexSelect(x, 0, i!),
  'indexSelect(x, 1, index)': (x, i) => x.indexSelect(1, i!),
  'maskedFill with a broadcast mask': (x) => maskedFill(x, mask(x.device), -2.5),
  'dot': dot, 'outer': outer, 't': t,
  'einsum ij,jk->ik': (a, b) => einsum('ij,jk->ik', a!, b!),
  'einsum bij,bjk->bik': (a, b) => einsum('bij,bjk->bik', a!, b!),
  'einsum i,i->': (a, b) => einsum('i,i->', a!, b!),
  'einsum ij->ji': (a) => einsum('ij->ji', a!),
  'einsum bhqd,bhkd->bhqk': (a, b) => einsum('bhqd,bhkd->bhqk', a!, b!),
  'einsum ij,ij->i': (a, b) => einsum('ij,ij->i', a!, b!),
  'einsum ij,kj (implicit output)': (a, b) => einsum('ij,kj', a!, b!),
  'einsum ijk->j': (a) => einsum('ijk->j', a!),
  'einsum ij,jk,kl->il': (a, b, c) => einsum('ij,jk,kl->il', a!, b!, c!),
  'einsum bi,bj->bij (outer per batch)': (a, b) => einsum('bi,bj->bij', a!, b!),
};

/** The ops that multiply matrices (einsum) run in float32 where a backend has no float64 matmul. */
const MATMUL = /^einsum/;
// describeBackends lists an unavailable device's tests as skipped too, so this must not throw for one.
const hasMatmul = (device: string, dtype: 'float32' | 'float64') =>
  backends().some((b) => b.name === device && b.available) && supports(getBackend(device), 'BatchMatMul', dtype);
const f64Matmul = (device: string) => hasMatmul(device, 'float64');

function close(a: Tensor, e: J, what: string, rtol: number): void {
  expect(a.shape, what).toEqual(e.shape);
  const scale = Math.max(1, ...e.data.filter(Number.isFinite).map(Math.abs));
  Array.from(a.toTypedArray()).forEach((v, i) => {
    const w = e.data[i]!;
    if (!Number.isFinite(w)) expect(v, `${what}[${i}]`).toBe(w); // toBe: NaN equals NaN, as Object.is
    else expect(Math.abs(v - w), `${what}[${i}]: ${v} vs PyTorch ${w}`).toBeLessThanOrEqual(rtol * scale);
  });
}

describe('the ops fixtures', () => {
  it('name the generator and the torch version, and every case has its call here', () => {
    expect(fx.generator).toBe('scripts/fixtures/make_ops_fixtures.py');
    expect(fx.torch).toMatch(/^\d+\.\d+/);
    expect(fx.cases.map((c) => c.name)).toEqual(Object.keys(CALLS));
  });
});

describeBackends(describe, 'new ops against PyTorch', (device) => {
  for (const c of fx.cases) {
    const f32 = MATMUL.test(c.name) && !f64Matmul(device);
    const none = f32 && !hasMatmul(device, 'float32');
    const note = none ? ` (skipped: '${device}' has no BatchMatMul kernel)` : f32 ? ` (in float32: '${device}' has no float64 matmul)` : '';
    it.skipIf(none)(`${c.name}: values and gradients${note}`, () => {
      const dtype = f32 ? 'float32' : 'float64';
      const rtol = f32 ? 1e-6 : 1e-12;
      const xs = c.inputs.map((j) => fromTypedArray(Float64Array.from(j.data), j.shape,
        { dtype: j.dtype === 'int64' ? 'int64' : dtype, device, requiresGrad: j.dtype === 'float64' }));
      const out = CALLS[c.name]!(...xs);
      close(out, c.out, 'out', rtol);
      const floats = xs.filter((x) => x.dtype === dtype);
      const go = fromTypedArray(Float64Array.from(c.gradOutput.data), c.gradOutput.shape, { dtype, device });
      const gs = grad(out, floats, { gradOutputs: [go], allowUnused: true });
      gs.forEach((g, i) => close(g!, c.grads[i]!, `grad ${i}`, rtol));
    });
  }
});

/** A float64 leaf on the device, kept at least 0.1 from the kinks listed. */
function leaf(device: string, shape: number[], kinks: number[] = [], shift = 0): Tensor {
  const data = Float64Array.from(randn(shape, { dtype: 'float64' }).toTypedArray(), (v) => {
    let u = v + shift;
    for (const k of kinks) if (Math.abs(u - k) < 0.1) u = k + (u < k ? -0.1 : 0.1);
    return u;
  });
  return fromTypedArray(data, shape, { dtype: 'float64', device, requiresGrad: true });
}

describeBackends(describe, 'new ops: gradcheck and gradgradcheck in float64', (device) => {
  const i64 = (data: number[][] | number[]) => tensor(data, { dtype: 'int64', device });
  const unary: [string, F, number[], number][] = [
    ['log1p', log1p, [], 2], ['expm1', expm1, [], 0], ['sin', sin, [], 0], ['cos', cos, [], 0], ['erf', erf, [], 0],
    ['softplus(2, 1)', (x) => softplus(x, 2, 1), [0.5], 0], ['gelu', (x) => gelu(x), [], 0],
    ['gelu(tanh)', (x) => gelu(x, 'tanh'), [], 0], ['silu', silu, [], 0], ['elu', (x) => elu(x, 0.7), [0], 0],
    ['leakyRelu', (x) => leakyRelu(x, 0.1), [0], 0], ['hardtanh', (x) => hardtanh(x, -0.5, 0.8), [-0.5, 0.8], 0],
  ];
  for (const [name, f, kinks, shift] of unary) {
    it(name, () => {
      manualSeed(31);
      const x = leaf(device, [2, 3], kinks, shift);
      expect(gradcheck(f, [x])).toBe(true);
      expect(gradgradcheck(f, [x])).toBe(true);
    });
  }

  it('logSumExp, norm (2, 1, inf, 3), cumsum', () => {
    manualSeed(32);
    const x = leaf(device, [3, 4]);
    for (const f of [(a: Tensor) => logSumExp(a, 1), (a: Tensor) => logSumExp(a, [0, 1], true), (a: Tensor) => norm(a),
      (a: Tensor) => norm(a, 2, 1), (a: Tensor) => norm(a, 1, 0), (a: Tensor) => norm(a, Infinity, 1), (a: Tensor) => norm(a, 3),
      (a: Tensor) => cumsum(a, 1), (a: Tensor) => cumsum(a, 0)] as F[]) {
      expect(gradcheck(f, [x])).toBe(true);
      expect(gradgradcheck(f, [x])).toBe(true);
    }
  });

  it('gather, scatterAdd, indexSelect, maskedFill', () => {
    manualSeed(33);
    const [x, src] = [leaf(device, [3, 4]), leaf(device, [2, 4])];
    const idx = i64([[0, 1, 2, 0], [0, 0, 2, 2]]);
    expect(gradcheck((p) => indexSelect(p, 1, i64([3, 3, 0])), [x])).toBe(true);
    expect(gradgradcheck((p) => indexSelect(p.mul(p), 0, i64([2, 0])), [x])).toBe(true);
    expect(gradcheck((a) => gather(a, 0, idx), [x])).toBe(true);
    expect(gradgradcheck((a) => gather(a.mul(a), 1, i64([[3, 0], [1, 1], [2, 0]])), [x])).toBe(true);
    expect(gradcheck((a, s) => scatterAdd(a, 0, idx, s), [x, src])).toBe(true);
    expect(gradgradcheck((a, s) => scatterAdd(a.mul(a), 0, idx, s.mul(s)), [x, src])).toBe(true);
    expect(gradgradcheck((a) => maskedFill(a.mul(a), tensor([1, 0, 0, 1], { device }), 3), [x])).toBe(true);
  });

  it('dot, outer, t', () => {
    manualSeed(34);
    const [u, v] = [leaf(device, [4]), leaf(device, [4])];
    expect(gradgradcheck((p, q) => dot(p.mul(p), q), [u, v])).toBe(true);
    expect(gradgradcheck((p, q) => outer(p.mul(q), q), [u, v])).toBe(true);
    expect(gradcheck((p) => t(p.reshape([2, 2])), [u])).toBe(true);
  });

  const mm = f64Matmul(device);
  // PyTorch 2.15: gather([[inf, -inf, nan, -0, 1.5, 2]], 1, [[4, 4, 3, 5]]) is [[1.5, 1.5, -0, 2]],
  // index_select(.., 1, [4, 3, 5]) [[1.5, -0, 2]],
  // scatter_add([inf, 1, 2], 0, [1, 1], [2, inf]) [inf, inf, 2]; index_select works in float16.
  it('an inf or NaN elsewhere in a row does not reach the entries picked; float16 indexSelect', () => {
    const x = tensor([[Infinity, -Infinity, NaN, -0, 1.5, 2]], { device });
    expect(gather(x, 1, i64([[4, 4, 3, 5]])).toArray()).toEqual([[1.5, 1.5, -0, 2]]);
    expect(indexSelect(x, 1, i64([4, 3, 5])).toArray()).toEqual([[1.5, -0, 2]]);
    // Runs of consecutive indices are sliced at once; repeats and descending runs one by one.
    const y = tensor([[0, 1, 2, 3, 4]], { device });
    expect(indexSelect(y, 1, i64([1, 2, 3, 3, 0, 4])).toArray()).toEqual([[1, 2, 3, 3, 0, 4]]);
    expect(indexSelect(y, 1, i64([])).shape).toEqual([1, 0]);
    const into = scatterAdd(tensor([Infinity, 1, 2], { device }), 0, i64([1, 1]), tensor([2, Infinity], { device }));
    expect(into.toArray()).toEqual([Infinity, Infinity, 2]);
    // torch: index_select(x [2, 3], 1, [2, 0, 2]) backward with [[inf, 1, 2], [nan, 3, 4]] is [[1, 0, inf], [3, 0, nan]].
    const w = tensor([[1, 2, 3], [4, 5, 6]], { device, requiresGrad: true });
    indexSelect(w, 1, i64([2, 0, 2])).backward(tensor([[Infinity, 1, 2], [NaN, 3, 4]], { device }));
    expect(w.grad!.toArray()).toEqual([[1, 0, Infinity], [3, 0, NaN]]);
    const h = indexSelect(tensor([[1, 2], [3, 4]], { dtype: 'float16', device }), 0, i64([1, 0, 1]));
    expect([h.dtype, h.toArray()]).toEqual(['float16', [[3, 4], [1, 2], [3, 4]]]);
  });

  it.skipIf(!mm)(`einsum${mm ? '' : ` (skipped: '${device}' has no float64 matmul, which gradcheck needs)`}`, () => {
    manualSeed(35);
    const [u, v, a, b] = [leaf(device, [4]), leaf(device, [4]), leaf(device, [2, 3, 4]), leaf(device, [2, 4, 2])];
    expect(gradcheck((p, q) => einsum('bij,bjk->bik', p, q), [a, b])).toBe(true);
    expect(gradgradcheck((p, q) => einsum('bij,bjk->ki', p.mul(p), q), [a, b])).toBe(true);
    expect(gradgradcheck((p, q) => einsum('i,j,j->i', p, q, q), [u, v])).toBe(true);
  });
});

describe('new ops: argument errors name the op, the argument and the shapes', () => {
  const x = randn([3, 4], { dtype: 'float64' });
  const i64 = (data: number[][] | number[]) => tensor(data, { dtype: 'int64' });
  it.each([
    [() => gather(x, 1, i64([[0, 4]])), /^gather: index 4 is out of bounds for dim 1 of size 4$/],
    [() => gather(x, 1, tensor([[0, 1]])), /^gather: index must be an int64 or int32 tensor, got float32 of shape \[1, 2\]$/],
    [() => gather(x, 1, i64([0, 1])), /^gather: index of shape \[2\] must have as many dims as input of shape \[3, 4\]$/],
    [() => gather(x, 1, i64([[0], [0], [0], [0]])), /^gather: index of shape \[4, 1\] is larger than input of shape \[3, 4\] in dim 0$/],
    [() => scatterAdd(x, 0, i64([[0, 1]]), randn([1, 1], { dtype: 'float64' })), /^scatterAdd: index of shape \[1, 2\] is larger than src of shape \[1, 1\] in dim 1$/],
    [() => indexSelect(x, 0, i64([[0]])), /^indexSelect: index must be 0-d or 1-d, got shape \[1, 1\]$/],
    [() => scatterAdd(x, 0, i64([[0, 1]]), randn([1, 2])), /^scatterAdd: 'input' has dtype float64 but 'src' has dtype float32/],
    [() => maskedFill(x, tensor([1, 0]), 0), /where/],
    // torch.masked_fill: "masked_fill_ only supports a 0-dimensional value tensor"; a number is a checked fill.
    [() => maskedFill(x, tensor([1, 0, 0, 1]), tensor([1, 2])), /^maskedFill: value must be a number or a 0-d tensor, got shape \[2\]$/],
    [() => maskedFill(tensor([0, 1], { dtype: 'int32' }), tensor([1, 0]), 2 ** 40), /^maskedFill: value 1099511627776 cannot be converted to int32 without overflow$/],
    [() => maskedFill(tensor([0, 1]), tensor([1, 0]), 1e39), /^maskedFill: value 1e\+39 cannot be converted to float32 without overflow$/],
    [() => dot(x, x), /^dot: expects two 1-d tensors of the same length, got \[3, 4\] and \[3, 4\]$/],
    [() => t(randn([2, 2, 2])), /^t: expects a tensor of at most 2 dims, got shape \[2, 2, 2\]/],
    [() => norm(x, 0), /^norm: ord must be 'fro', Infinity, -Infinity or a positive number, got 0 \(input shape \[3, 4\]\)$/],
    // As PyTorch's vector_norm: a maximum of nothing has no value (a 2-norm of nothing is 0).
    [() => norm(randn([1, 7, 0, 3]), Infinity, 2), /^norm: cannot compute the Infinity norm over dim 2 of size 0 \(shape \[1, 7, 0, 3\]\)$/],
    [() => norm(randn([0]), -Infinity), /^norm: cannot compute the -Infinity norm over dim 0 of size 0 \(shape \[0\]\)$/],
    // As PyTorch's argmax: "Expected reduction dim 1 to have non-zero size".
    [() => argmax(randn([2, 0]), 1), /^argmax: cannot reduce over dim 1 of size 0 \(shape \[2, 0\]\)$/],
    [() => argmin(randn([0])), /^argmin: cannot reduce over dim 0 of size 0 \(shape \[0\]\)$/],
    [() => softplus(x, 0), /^softplus: beta must not be 0$/],
    [() => hardtanh(x, 1, -1), /^hardtanh: minVal 1 is greater than maxVal -1$/],
    [() => gelu(x, 'erf' as 'none'), /^gelu: approximate must be 'none' or 'tanh', got 'erf'$/],
    [() => einsum('ij,jk->ik', x, x), /^einsum: index 'j' has size 4 in one operand and 3 in operand 1 \(broadcasting is not supported\)$/],
    [() => einsum('ii->i', randn([3, 3])), /^einsum: an index repeated within one operand or the output \('ii' in 'ii->i'\) is not supported$/],
    [() => einsum('...ij->ij', x), /^einsum: '...' is not supported/],
    [() => einsum('ij,jk->ik', x), /^einsum: the equation 'ij,jk->ik' names 2 operands, but 1 were given$/],
    [() => einsum('ijk->i', x), /^einsum: operand 0 has shape \[3, 4\] but 'ijk' names 3 dims$/],
    [() => einsum('ij->z', x), /^einsum: output index 'z' appears in no operand of 'ij->z'$/],
  ])('%#', (f, re) => expect(f).toThrow(re));
});

describe('maskedFill converts a 0-d value tensor to the input dtype, as torch.masked_fill', () => {
  it('float64 value into float16, the gradient back to the value; float32 value into int32', () => {
    // torch 2.15: zeros(2, f16).masked_fill([True, False], tensor(2.5, f64)) = [2.5, 0]; value.grad 1, x.grad [0, 1].
    const mask = tensor([1, 0]);
    const v = tensor(2.5, { dtype: 'float64', requiresGrad: true });
    const x = tensor([0, 0], { dtype: 'float16', requiresGrad: true });
    const y = maskedFill(x, mask, v);
    expect([y.dtype, Array.from(y.dataSync())]).toEqual(['float16', [2.5, 0]]);
    y.sum().backward();
    expect(Array.from(v.grad!.dataSync())).toEqual([1]);
    expect([x.grad!.dtype, Array.from(x.grad!.dataSync())]).toEqual(['float16', [0, 1]]);
    // torch: zeros(2, int32).masked_fill([True, False], tensor(2.7)) = [2, 0] in int32.
    const z = maskedFill(tensor([0, 0], { dtype: 'int32' }), mask, tensor(2.7));
    expect([z.dtype, Array.from(z.dataSync())]).toEqual(['int32', [2, 0]]);
  });
});
