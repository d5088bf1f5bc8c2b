/**
 * Every elementwise op of @nodegrad/autograd on every native backend against the 'ts' float64
 * reference, forward and backward (checkParity): unary ops, binary ops with broadcasting and
 * scalar operands, comparisons, where, clamp, in-place ops, the tape API, creation on a device,
 * casts and dropout. Reductions, views and joins are in ops_backends_shape.test.ts; matmul,
 * conv, pooling, norm, softmax and losses in ops_backends_nn.test.ts.
 */
import {
  abs, add, arange, clamp, clone, detach, div, dropout, eq, exp, full, fullLike, greater, greaterEqual, less,
  lessEqual, log, manualSeed, maximum, minimum, mul, ne, neg, ones, onesLike, pow, relu, rsqrt, sigmoid, sign,
  sqrt, square, sub, tanh, tensor, to, where, zeros, zerosLike, type Tensor,
} from '@nodegrad/autograd';
import { HALF_TYPES, paritySuite, type Case } from './ops_backends_cases.js';

const pos = (...shape: number[]) => ({ shape, pos: true });
const ints = (...shape: number[]) => ({ shape, int: true });

const unary: [string, (t: Tensor) => Tensor, boolean][] = [
  // [name, op, needs a positive input]
  ['exp', exp, false], ['log', log, true], ['sqrt', sqrt, true], ['rsqrt', rsqrt, true], ['abs', abs, false],
  ['relu', relu, false], ['sigmoid', sigmoid, false], ['tanh', tanh, false], ['neg', neg, false],
  ['square', square, false], ['sign', sign, false],
];

const unaryCases: Case[] = unary.flatMap(([name, f, positive]): Case[] => [
  { name, inputs: [positive ? pos(3, 4, 5) : [3, 4, 5]], fn: f },
  { name: `${name} of a 0-d tensor`, inputs: [positive ? pos() : []], fn: f },
  // Method form, chained after a broadcasting op so the gradient arrives non-uniform.
  { name: `${name} as a method after mul`, inputs: [positive ? pos(2, 7) : [2, 7], pos(7)],
    fn: (x, w) => (x.mul(w) as unknown as Record<string, () => Tensor>)[name]!() },
]);

const binary: [string, (a: Tensor | number, b: Tensor | number) => Tensor][] = [
  ['add', add], ['sub', sub], ['mul', mul], ['div', div], ['maximum', maximum], ['minimum', minimum],
];

/** [a, b] shape pairs: same shape, broadcasting either way, both broadcasting, 0-d, a leading 1. */
const broadcastPairs: [number[], number[]][] = [
  [[3, 4], [3, 4]], [[3, 4, 5], [4, 1]], [[5], [3, 1, 5]], [[2, 1, 4], [3, 1]], [[3, 4], []], [[1, 6], [4, 1]],
];

const binaryCases: Case[] = binary.flatMap(([name, f]): Case[] => [
  // div's divisor is kept away from zero; maximum/minimum inputs are continuous (no ties).
  ...broadcastPairs.map(([a, b]): Case => ({ name, inputs: [a, name === 'div' ? pos(...b) : b], fn: (x, y) => f(x, y) })),
  { name: `${name} tensor and scalar`, inputs: [[3, 5]], fn: (x) => f(x, 0.75) },
  { name: `${name} scalar and tensor`, inputs: [name === 'div' ? pos(3, 5) : [3, 5]], fn: (x) => f(-1.5, x) },
]);

const powCases: Case[] = [
  { name: 'pow tensor ^ tensor', inputs: [pos(3, 4), [3, 4]], fn: (a, b) => pow(a, b) },
  { name: 'pow with broadcasting', inputs: [pos(2, 3, 4), [4]], fn: (a, b) => pow(a, b) },
  { name: 'pow ^ 2 (a negative base)', inputs: [[3, 4]], fn: (a) => pow(a, 2) },
  { name: 'pow ^ 0.5', inputs: [pos(3, 4)], fn: (a) => a.pow(0.5) },
  { name: 'pow 2 ^ tensor', inputs: [[3, 4]], fn: (a) => pow(2, a) },
];

const comparisons: [string, (a: Tensor | number, b: Tensor | number) => Tensor][] = [
  ['eq', eq], ['ne', ne], ['lt', less], ['le', lessEqual], ['gt', greater], ['ge', greaterEqual],
];

const compareCases: Case[] = comparisons.flatMap(([name, f]): Case[] => [
  // Small integers, so that equal elements (ties) occur and eq/le/ge are tested on them.
  { name: `${name} with ties`, inputs: [ints(4, 5), ints(4, 5)], fn: (a, b) => f(a, b) },
  { name: `${name} with broadcasting`, inputs: [ints(2, 3, 4), ints(3, 1)], fn: (a, b) => f(a, b) },
  { name: `${name} against a scalar`, inputs: [ints(3, 4)], fn: (a) => f(a, 1) },
  // The 0/1 result used as a mask in a differentiable product.
  { name: `${name} as a mask`, inputs: [[3, 4], [4]], fn: (a, b) => mul(a, f(a, b)) },
]);

const whereClampCases: Case[] = [
  { name: 'where(a > b, a, b)', inputs: [[3, 4], [3, 4]], fn: (a, b) => where(greater(a, b), a, b) },
  { name: 'where with broadcasting of cond, a and b', inputs: [[4, 1], [3], [2, 1, 1]],
    fn: (c, a, b) => where(greater(c, 0), a, b) },
  { name: 'where with scalar branches', inputs: [[3, 4]], fn: (a) => mul(a, where(greater(a, 0), 2, -0.5)) },
  { name: 'where(cond, a, scalar)', inputs: [[3, 4]], fn: (a) => where(less(a, 0.3), a, 0.3) },
  { name: 'clamp(-0.5, 0.5)', inputs: [[4, 5]], fn: (a) => clamp(a, -0.5, 0.5) },
  { name: 'clamp min only', inputs: [[4, 5]], fn: (a) => clamp(a, 0.1) },
  { name: 'clamp max only', inputs: [[4, 5]], fn: (a) => a.clamp(null, -0.2) },
  // Bounds hit exactly: PyTorch passes the gradient where min <= x <= max, bounds included.
  { name: 'clamp with elements on the bounds', inputs: [{ shape: [6], data: [-1, -0.5, 0, 0.5, 1, 2], grad: true }],
    fn: (a) => clamp(a, -0.5, 0.5) },
];

/** Ops chained, so that each backward receives a non-uniform gradient from the next op. */
const chainCases: Case[] = [
  { name: 'unary, binary with broadcasting, clamp, relu and a comparison mask, chained', inputs: [[3, 4, 5], [4, 1]],
    fn: (x, y) => [
      x.mul(y).add(y.exp()).tanh(), x.abs().add(1).log().sqrt(), x.sigmoid().div(y.abs().add(1)),
      x.maximum(y).sub(x.minimum(y)), x.clamp(-0.5, 0.5).relu(), x.gt(y).mul(x),
    ] },
];

/** In-place ops run on a non-leaf (a leaf that requires grad may not be modified in place). */
const inplaceCases: Case[] = [
  { name: 'add_ sub_ mul_ div_ with tensors and scalars', inputs: [[3, 4], [4], pos(3, 1)],
    fn: (x, b, d) => x.mul(1).add_(b).mul_(x).sub_(0.25).div_(d) },
  { name: 'neg_ relu_ sigmoid_ tanh_', inputs: [[3, 4]], fn: (x) => x.mul(2).neg_().relu_().sigmoid_().mul(3).tanh_() },
  { name: 'clamp_', inputs: [[3, 4]], fn: (x) => x.add(0).clamp_(-0.4, 0.6).mul(x) },
  // The old values get a zero gradient, as in PyTorch (so x.exp().zero_() would fail there and
  // here: exp's backward reads its overwritten output).
  { name: 'fill_ and zero_ cut the old history', inputs: [[3, 4], [3, 4]],
    fn: (x, y) => [x.mul(y).fill_(1.5).mul(y), x.mul(2).zero_().add(x)] },
  { name: 'copy_ with broadcasting sends the gradient to the source', inputs: [[3, 4], [4]],
    fn: (x, s) => x.mul(2).copy_(s.exp()).mul(x) },
];

const tapeCases: Case[] = [
  { name: 'clone', inputs: [[3, 4]], fn: (x) => clone(x).mul(x) },
  { name: 'detach stops the gradient', inputs: [[3, 4]], fn: (x) => x.mul(detach(x).exp()) },
  { name: 'a hook rescales the gradient', inputs: [[3, 4]],
    fn: (x) => {
      const y = x.mul(2);
      y.registerHook((g) => g.mul(-3));
      return y.tanh();
    } },
  // The reference runs in float64: cast back to the run's own float dtype.
  { name: 'to int64 and back to float', inputs: [ints(3, 4), [3, 4]],
    fn: (i, x) => [to(i, 'int64'), x.mul(to(to(i, 'int64'), x.dtype))] },
  { name: 'to int32', inputs: [ints(5)], fn: (i) => to(i, 'int32') },
  { name: 'creation on the device: zeros ones full arange tensor and *Like', inputs: [[2, 3]],
    fn: (x) => {
      const o = { device: x.device, dtype: x.dtype };
      const c = zeros([2, 3], o).add(ones([2, 3], o)).mul(full([3], 0.5, o)).add(arange(3, undefined, 1, o))
        .sub(tensor([[1, 2, 3], [4, 5, 6]], o));
      return x.mul(c).add(zerosLike(x)).mul(onesLike(x)).add(fullLike(x, -0.25));
    } },
];

/** The dropout mask comes from the seeded host generator, so a seed gives the same mask on every backend. */
const dropoutCases: Case[] = [
  { name: 'dropout p=0 is the identity', inputs: [[4, 5]], fn: (x) => dropout(x, 0).mul(x) },
  { name: 'dropout in eval is the identity', inputs: [[4, 5]], fn: (x) => dropout(x, 0.5, false).mul(x) },
  { name: 'dropout p=0.3 with a seeded mask', inputs: [[6, 7]],
    fn: (x) => {
      manualSeed(5);
      return dropout(x, 0.3).mul(x);
    } },
  { name: 'dropout p=1 zeroes everything', inputs: [[3, 4]], fn: (x) => dropout(x, 1).add(x) },
];

paritySuite('ops parity: unary', unaryCases);
paritySuite('ops parity: binary with broadcasting and scalars', [...binaryCases, ...powCases]);
paritySuite('ops parity: comparisons, where, clamp', [...compareCases, ...whereClampCases, ...chainCases]);
paritySuite('ops parity: in-place ops, the tape API, creation, casts, dropout',
  [...inplaceCases, ...tapeCases, ...dropoutCases]);

for (const h of HALF_TYPES) {
  paritySuite(`ops parity [${h}]: unary`, unaryCases, [['Exp', h], ['Tanh', h]], h);
  paritySuite(`ops parity [${h}]: binary with broadcasting and scalars`, [...binaryCases, ...powCases], [['Add', h], ['Pow', h]], h);
  paritySuite(`ops parity [${h}]: comparisons, where, clamp`, [...compareCases, ...whereClampCases, ...chainCases],
    [['Greater', h], ['Where', h], ['Clamp', h]], h);
  paritySuite(`ops parity [${h}]: in-place ops, the tape API, creation, casts, dropout`,
    [...inplaceCases, ...tapeCases, ...dropoutCases], [['Mul', h], ['Copy', h], ['Cast', h], ['Bernoulli', h]], h);
}
