/**
 * Reductions, views and layout, cutting and joining on every native backend against the 'ts'
 * float64 reference, forward and backward (checkParity; the table is in ops_backends_cases.ts).
 */
import {
  amax, amin, argmax, argmin, cat, chunk, expand, flatten, max, mean, min, narrow, pad, permute, reshape, slice, split, squeeze,
  stack, sum, sumTo, transpose, unsqueeze, variance, view, type Tensor,
} from '@nodegrad/autograd';
import { paritySuite, type Case, HALF_TYPES } from './ops_backends_cases.js';

/** Small integers with ties, requiring grad: max/min share the gradient among tied elements. */
const tied = (...shape: number[]) => ({ shape, int: true, grad: true });

type Dims = number | number[] | undefined;
/** [dims, keepdim] over a [3, 4, 5] input: all, one, negative, several, all listed, keepdim. */
const dimsCases: [Dims, boolean][] = [
  [undefined, false], [0, false], [-1, true], [[0, 2], false], [[0, 2], true], [1, true], [[2, 1, 0], false],
];
const label = (d: Dims, k: boolean) => `${d === undefined ? 'all dims' : `dim ${JSON.stringify(d)}`}${k ? ', keepdim' : ''}`;

const reductions: [string, (x: Tensor, d: Dims, k: boolean) => Tensor][] = [
  ['sum', (x, d, k) => sum(x, d, k)],
  ['mean', (x, d, k) => mean(x, d, k)],
  ['amax', (x, d, k) => amax(x, d, k)],
  ['amin', (x, d, k) => amin(x, d, k)],
  ['var', (x, d, k) => variance(x, d, { keepdim: k })],
];

const reduceCases: Case[] = [
  ...reductions.flatMap(([name, f]) => dimsCases.map(([d, k]): Case =>
    ({ name: `${name} over ${label(d, k)}`, inputs: [[3, 4, 5]], fn: (x) => f(x, d, k) }))),
  { name: 'amax with ties shares the gradient', inputs: [tied(4, 6)], fn: (x) => [amax(x, 1), max(x)] },
  { name: 'cumsum along each dim (its gradient the reverse cumsum)', inputs: [[3, 4, 5]],
    fn: (x) => [x.cumsum(0), x.cumsum(1), x.cumsum(-1)] },
  { name: 'logSumExp over one, two and all dims', inputs: [[3, 4, 5]],
    fn: (x) => [x.logSumExp(1), x.logSumExp([0, 2], true), x.logSumExp([0, 1, 2])] },
  { name: 'norm of every order over one, two and all dims', inputs: [[3, 4, 5]],
    fn: (x) => [x.norm(), x.norm(1, 1), x.norm(Infinity, [0, 2], true), x.norm(-Infinity, 2), x.norm(3, [0, 1]), x.norm('fro', 1)] },
  { name: 'amin with ties shares the gradient', inputs: [tied(4, 6)], fn: (x) => [amin(x, 0, true), min(x)] },
  { name: 'max and min over a dim with ties: values and indices, the gradient to the first extremum', inputs: [tied(4, 6)],
    fn: (x) => { const a = max(x, 1); const b = min(x, 0, true); return [a.values, a.indices, b.values, b.indices]; } },
  { name: 'var with correction 0', inputs: [[4, 6]], fn: (x) => variance(x, 1, { correction: 0 }) },
  { name: 'var of all elements, correction 2, keepdim', inputs: [[4, 6]],
    fn: (x) => variance(x, undefined, { correction: 2, keepdim: true }) },
  { name: 'sum and mean of a 0-d tensor', inputs: [[]], fn: (x) => [sum(x), mean(x, undefined, true)] },
  { name: 'sum over an empty dim gives zeros', inputs: [[3, 0, 4]], fn: (x) => [sum(x, 1), sum(x)] },
  { name: 'sum of many elements', inputs: [[64, 300]], fn: (x) => [sum(x, 1), mean(x, 0), sum(x)] },
  { name: 'methods: sum mean var max min', inputs: [[3, 4, 5]],
    fn: (x) => [x.sum(1), x.mean([0, 1], true), x.var(2), x.amax(0), x.amin(-1), x.max(1).values, x.min(-1, true).indices] },
  { name: 'sumTo undoes a broadcast', inputs: [[2, 3, 4, 5]], fn: (x) => [sumTo(x, [3, 1, 5]), sumTo(x, [1])] },
  { name: 'sum, mean, max, min and var over different dims in one function', inputs: [[3, 4, 5]],
    fn: (x) => [x.sum(), x.sum([0, 2]), x.mean(1, true), x.amax(2), x.amin([0, 1], true), x.var(1)] },
  { name: 'argmax and argmin over each dim, keepdim and flattened', inputs: [[3, 4, 5]],
    fn: (x) => [argmax(x, 0), argmax(x, -1, true), argmin(x, 1), argmin(x, 2, true), argmax(x), argmin(x)] },
  { name: 'argmax and argmin with ties pick the first', inputs: [{ shape: [4, 6], int: true }],
    fn: (x) => [argmax(x, 1), argmin(x, 0), x.argmax(), x.argmin(1, true)] },
];

const viewCases: Case[] = [
  { name: 'reshape with -1', inputs: [[2, 3, 4]], fn: (x) => reshape(x, [4, -1]).mul(x.reshape([4, 6])) },
  { name: 'view to 1-D and to 0-d', inputs: [[2, 3], []], fn: (x, s) => [view(x, [6]), view(s, [1, 1]), view(s.reshape([1]), [])] },
  { name: 'flatten all, from dim 1, and dims 1..2', inputs: [[2, 3, 4, 5]],
    fn: (x) => [flatten(x), flatten(x, 1), x.flatten(1, 2)] },
  { name: 'permute', inputs: [[2, 3, 4, 5]], fn: (x) => [permute(x, [3, 1, 0, 2]), x.permute([0, 2, 3, 1])] },
  { name: 'permute with negative dims', inputs: [[2, 3, 4]], fn: (x) => permute(x, [-1, 0, -2]) },
  { name: 'transpose', inputs: [[2, 3, 4]], fn: (x) => [transpose(x, 0, 2), x.transpose(-1, -2)] },
  { name: 'transpose of a matrix', inputs: [[5, 7]], fn: (x) => transpose(x, 0, 1) },
  { name: 'expand size-1 dims and new leading dims, -1 keeps', inputs: [[3, 1, 4]],
    fn: (x) => [expand(x, [2, 3, 5, 4]), x.expand([-1, 6, -1])] },
  { name: 'expand a 0-d tensor', inputs: [[]], fn: (x) => expand(x, [3, 2]) },
  { name: 'squeeze all and one dim', inputs: [[1, 3, 1, 4]], fn: (x) => [squeeze(x), squeeze(x, 2), x.squeeze(1)] },
  { name: 'unsqueeze at the front, middle and a negative dim', inputs: [[3, 4]],
    fn: (x) => [unsqueeze(x, 0), unsqueeze(x, 1), x.unsqueeze(-1)] },
];

const joinCases: Case[] = [
  { name: 'narrow, with a negative start', inputs: [[5, 6]], fn: (x) => [narrow(x, 0, 1, 3), x.narrow(1, -4, 2)] },
  { name: 'slice with steps and negative bounds', inputs: [[6, 7, 5]],
    fn: (x) => [slice(x, 0, 1, 5, 2), slice(x, 1, -5, null, 3), x.slice(2, null, -1), slice(x, -1, 0, 100, 4)] },
  { name: 'slice to an empty result', inputs: [[4, 5]], fn: (x) => slice(x, 1, 3, 2).sum(1).add(x.sum(1)) },
  { name: 'pad the last dim', inputs: [[2, 3, 4]], fn: (x) => pad(x, [1, 2]) },
  { name: 'pad the last two dims with a value', inputs: [[2, 3, 4]], fn: (x) => pad(x, [2, 0, 1, 3], -0.5) },
  { name: 'pad every dim', inputs: [[2, 3, 4]], fn: (x) => x.pad([1, 1, 0, 2, 3, 0]) },
  { name: 'pad with negative amounts crops', inputs: [[3, 6]], fn: (x) => pad(x, [-1, 2, 1, -2], 0.25) },
  { name: 'cat along dim 0, 1 and -1', inputs: [[2, 3, 4], [2, 1, 4], [2, 3, 2]],
    fn: (a, b, c) => [cat([a, b], 1), cat([a, a.mul(b)], 0), cat([a, c, a], -1)] },
  { name: 'cat with an empty tensor', inputs: [[2, 3], [2, 0]], fn: (a, e) => cat([a, e, a], 1) },
  { name: 'cat of one tensor', inputs: [[3, 2]], fn: (a) => cat([a], 0) },
  { name: 'stack along dims 0, 1 and -1', inputs: [[3, 4], [3, 4]],
    fn: (a, b) => [stack([a, b]), stack([a, b, a], 1), stack([b, a], -1)] },
  { name: 'permute, expand, stepped slice, pad, cat and stack in one function', inputs: [[2, 3, 4], [2, 1, 4]],
    fn: (a, b) => [a.permute([2, 0, 1]), b.expand([2, 5, 4]), slice(a, 2, 1, 4, 2), pad(a, [1, 2, 0, 1], 0.5),
      cat([a, b, a], 1), stack([a, a.mul(2)], 1)] },
  { name: 'split by size (a shorter last piece)', inputs: [[7, 3]], fn: (x) => split(x, 3) },
  { name: 'split by a list of sizes along dim 1', inputs: [[2, 9]], fn: (x) => x.split([2, 0, 4, 3], 1) },
  { name: 'chunk', inputs: [[3, 10]], fn: (x) => [...chunk(x, 4, 1), ...x.chunk(2, 0)] },
  { name: 'sliceScatter into a strided slice', inputs: [[4, 7], [4, 2]], fn: (x, w) => x.sliceScatter(w, 1, 1, null, 3) },
  { name: 'in-place ops through a slice and a view of it', inputs: [[4, 6], [2, 6]],
    fn: (x, w) => { const y = x.mul(1); y.narrow(0, 1, 2).mul_(w).view([12]).relu_(); return y; } },
  { name: 'split pieces recombined', inputs: [[6, 4]], fn: (x) => { const [a, b] = chunk(x, 2); return a!.mul(b!); } },
];

paritySuite('ops parity: reductions', reduceCases);
paritySuite('ops parity: views and layout', viewCases);
paritySuite('ops parity: narrow, slice, pad, cat, stack, split, chunk', joinCases);

for (const h of HALF_TYPES) {
  paritySuite(`ops parity [${h}]: reductions`, reduceCases, [['Sum', h], ['Max', h]], h);
  paritySuite(`ops parity [${h}]: views and layout`, viewCases, [['Transpose', h]], h);
  paritySuite(`ops parity [${h}]: narrow, slice, pad, cat, stack, split, chunk`, joinCases, [['Slice', h], ['Pad', h], ['Concat', h]], h);
}
