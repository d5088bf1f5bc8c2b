/**
 * matmul/bmm/linear, conv2d and its two backward ops, pooling, batchNorm, softmax/logSoftmax and
 * the losses on every native backend against the 'ts' float64 reference, forward and backward
 * (checkParity; the table is in ops_backends_cases.ts).
 */
import {
  adaptiveAvgPool2d, avgPool2d, batchNorm, batchNormFused, bmm, cat, conv2d, conv2dBackwardInput, conv2dBackwardWeight, crossEntropy,
  grad, linear, logSoftmax, matmul, maxPool2d, maxPool2dBackward, maxPool2dWithIndices, mseLoss, nllLoss, oneHot,
  softmax, tensor, type Conv2dOptions, type Tensor,
} from '@nodegrad/autograd';
import { paritySuite, type Case, HALF_TYPES } from './ops_backends_cases.js';

const pos = (...shape: number[]) => ({ shape, pos: true });
const constant = (...shape: number[]) => ({ shape, grad: false });
const index = (n: number, ...shape: number[]) => ({ shape, index: n });

const matmulPairs: [number[], number[], string][] = [
  [[5], [5], '1-D x 1-D (dot)'], [[4], [4, 3], '1-D x 2-D'], [[3, 4], [4], '2-D x 1-D'], [[3, 4], [4, 5], '2-D x 2-D'],
  [[2, 3, 4], [4, 5], 'batched x shared matrix'], [[3, 4], [2, 4, 5], 'matrix x batched'],
  [[2, 1, 3, 4], [5, 4, 2], 'broadcast batch dims'], [[4], [2, 4, 3], '1-D x batched'], [[2, 3, 4], [4], 'batched x 1-D'],
  [[1, 1], [1, 1], '1x1'], [[7, 40], [40, 9], 'K = 40'],
];

const matmulCases: Case[] = [
  ...matmulPairs.map(([a, b, what]): Case => ({ name: `matmul ${what}`, inputs: [a, b], fn: (x, y) => matmul(x, y) })),
  ...[[false, false], [true, false], [false, true], [true, true]].map(([ta, tb]): Case => ({
    name: `bmm transA ${ta} transB ${tb}`, inputs: [ta ? [2, 4, 3] : [2, 3, 4], tb ? [2, 5, 4] : [2, 4, 5]],
    fn: (a, b) => bmm(a, b, ta, tb) })),
  { name: 'bmm as a method', inputs: [[3, 2, 4], [3, 4, 2]], fn: (a, b) => a.bmm(b) },
  { name: 'bmm', inputs: [[3, 5, 4], [3, 4, 6]], fn: (a, b) => bmm(a, b) },
  { name: 'linear with bias', inputs: [[5, 4], [3, 4], [3]], fn: (x, w, b) => linear(x, w, b) },
  { name: 'linear without bias over leading dims', inputs: [[2, 3, 4], [6, 4]], fn: (x, w) => linear(x, w) },
  { name: 'linear of a 1-D input', inputs: [[4], [2, 4], [2]], fn: (x, w, b) => linear(x, w, b) },
];

/** [name, input shape, weight shape, options]; bias is added when the name says so. */
const convs: [string, number[], number[], Conv2dOptions][] = [
  ['plain 3x3', [2, 3, 6, 5], [4, 3, 3, 3], {}],
  ['stride 2, padding 1', [2, 3, 7, 6], [4, 3, 3, 3], { stride: 2, padding: 1 }],
  ['stride [2, 1], padding [0, 2]', [1, 2, 7, 5], [3, 2, 3, 2], { stride: [2, 1], padding: [0, 2] }],
  ['dilation 2, padding 2', [1, 2, 8, 7], [3, 2, 3, 3], { dilation: 2, padding: 2 }],
  ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], { groups: 2, padding: 1 }],
  ['depthwise, stride 2', [2, 4, 6, 6], [4, 1, 3, 3], { groups: 4, stride: 2, padding: 1 }],
  ['1x1', [2, 5, 4, 3], [3, 5, 1, 1], {}],
  ["padding 'same', dilation 2", [1, 2, 6, 5], [3, 2, 3, 3], { padding: 'same', dilation: 2 }],
  ["padding 'same', even kernel (asymmetric)", [1, 2, 5, 6], [2, 2, 2, 4], { padding: 'same' }],
  ["padding 'valid'", [1, 2, 5, 6], [2, 2, 3, 3], { padding: 'valid' }],
  ['everything: stride, padding, dilation, groups', [2, 4, 9, 8], [6, 2, 3, 2],
    { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 }],
  ['stride 2, padding 1, dilation [1, 2], groups 2', [2, 4, 7, 6], [6, 2, 3, 3],
    { stride: 2, padding: 1, dilation: [1, 2], groups: 2 }],
];

const convCases: Case[] = [
  ...convs.map(([name, x, w, o]): Case => ({ name: `conv2d ${name}`, inputs: [x, w], fn: (a, b) => conv2d(a, b, null, o) })),
  ...convs.slice(0, 6).map(([name, x, w, o]): Case => ({ name: `conv2d ${name} with bias`, inputs: [x, w, [w[0]!]],
    fn: (a, b, c) => conv2d(a, b, c, o) })),
  { name: 'conv2d of an unbatched [C, H, W] input', inputs: [[3, 5, 5], [2, 3, 3, 3], [2]],
    fn: (a, b, c) => conv2d(a, b, c, { padding: 1 }) },
  // The two backward ops as ops of their own (differentiable: each one's VJP is the other two).
  { name: 'conv2dBackwardInput stride 2, padding 1, groups 2', inputs: [[2, 6, 3, 3], [6, 2, 3, 3]],
    fn: (dy, w) => conv2dBackwardInput(dy, w, [2, 4, 6, 5], { stride: 2, padding: 1, groups: 2 }) },
  { name: 'conv2dBackwardInput dilation 2', inputs: [[1, 3, 4, 3], [3, 2, 3, 3]],
    fn: (dy, w) => conv2dBackwardInput(dy, w, [1, 2, 8, 7], { dilation: 2 }) },
  { name: 'conv2dBackwardWeight stride 2, padding 1, groups 2', inputs: [[2, 4, 6, 5], [2, 6, 3, 3]],
    fn: (x, dy) => conv2dBackwardWeight(x, dy, [6, 2, 3, 3], { stride: 2, padding: 1, groups: 2 }) },
  { name: 'conv2dBackwardWeight dilation [2, 1], padding [2, 0]', inputs: [[1, 2, 7, 6], [1, 3, 7, 4]],
    fn: (x, dy) => conv2dBackwardWeight(x, dy, [3, 2, 3, 3], { dilation: [2, 1], padding: [2, 0] }) },
];

const poolCases: Case[] = [
  { name: 'maxPool2d 2x2', inputs: [[2, 3, 6, 6]], fn: (x) => maxPool2d(x, 2) },
  { name: 'maxPool2d 3x3 stride 2 padding 1 (ResNet stem)', inputs: [[2, 2, 9, 8]],
    fn: (x) => maxPool2d(x, 3, { stride: 2, padding: 1 }) },
  { name: 'maxPool2d ceilMode', inputs: [[1, 2, 7, 6]], fn: (x) => maxPool2d(x, 3, { stride: 2, ceilMode: true }) },
  { name: 'maxPool2d ceilMode with padding', inputs: [[1, 2, 5, 5]], fn: (x) => maxPool2d(x, 2, { stride: 2, padding: 1, ceilMode: true }) },
  { name: 'maxPool2d dilation 2, non-square', inputs: [[2, 2, 7, 8]],
    fn: (x) => maxPool2d(x, [2, 3], { stride: [1, 2], dilation: 2 }) },
  { name: 'maxPool2d of an unbatched input', inputs: [[3, 5, 4]], fn: (x) => maxPool2d(x, 2, { stride: 1 }) },
  // Small integers: windows with tied maxima; the first index wins, on every backend.
  { name: 'maxPool2dWithIndices with ties', inputs: [{ shape: [2, 2, 6, 5], int: true, grad: true }],
    fn: (x) => maxPool2dWithIndices(x, 3, { stride: 2, padding: 1, ceilMode: true }) },
  { name: 'maxPool2dWithIndices values and indices', inputs: [[2, 3, 6, 7]], fn: (x) => maxPool2dWithIndices(x, [2, 3]) },
  { name: 'maxPool2dBackward as an op (differentiable in dy)', inputs: [[2, 3, 6, 6], [2, 3, 3, 3]],
    fn: (x, dy) => maxPool2dBackward(dy, maxPool2dWithIndices(x.detach(), 2)[1], x.shape) },
  { name: 'avgPool2d 2x2', inputs: [[2, 3, 6, 6]], fn: (x) => avgPool2d(x, 2) },
  { name: 'avgPool2d padding, countIncludePad (default)', inputs: [[2, 2, 7, 6]],
    fn: (x) => avgPool2d(x, 3, { stride: 2, padding: 1 }) },
  { name: 'avgPool2d padding, countIncludePad false', inputs: [[2, 2, 7, 6]],
    fn: (x) => avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }) },
  { name: 'avgPool2d ceilMode', inputs: [[1, 2, 7, 5]], fn: (x) => avgPool2d(x, 2, { ceilMode: true }) },
  { name: 'avgPool2d ceilMode, padding, countIncludePad false', inputs: [[1, 2, 6, 7]],
    fn: (x) => avgPool2d(x, [3, 2], { stride: [2, 3], padding: [1, 1], ceilMode: true, countIncludePad: false }) },
  { name: 'avgPool2d ceilMode, padding, countIncludePad true', inputs: [[1, 2, 6, 7]],
    fn: (x) => avgPool2d(x, [3, 2], { stride: [2, 3], padding: [1, 1], ceilMode: true }) },
  { name: 'avgPool2d divisorOverride, ceilMode, padding', inputs: [[1, 2, 6, 7]],
    fn: (x) => avgPool2d(x, [3, 2], { stride: [2, 3], padding: [1, 1], ceilMode: true, divisorOverride: 4 }) },
  { name: 'adaptiveAvgPool2d to 1', inputs: [[2, 3, 5, 7]], fn: (x) => adaptiveAvgPool2d(x, 1) },
  { name: 'adaptiveAvgPool2d to non-divisors [3, 4]', inputs: [[2, 3, 5, 7]], fn: (x) => adaptiveAvgPool2d(x, [3, 4]) },
  { name: 'adaptiveAvgPool2d larger than the input, null keeps a dim', inputs: [[1, 2, 3, 4]],
    fn: (x) => [adaptiveAvgPool2d(x, [5, null]), adaptiveAvgPool2d(x, [null, 6])] },
  { name: 'max, avg and adaptive pooling of one input, with ceilMode, dilation and padding', inputs: [[2, 3, 7, 6]],
    fn: (v) => [
      maxPool2d(v, 3, { stride: 2, padding: 1, ceilMode: true }), maxPool2d(v, 2, { stride: 1, dilation: 2 }),
      avgPool2d(v, 3, { stride: 2, padding: 1 }), avgPool2d(v, 2, { ceilMode: true, countIncludePad: false }),
      adaptiveAvgPool2d(v, [4, 5]), adaptiveAvgPool2d(v, 1),
    ] },
  { name: 'adaptiveAvgPool2d of an unbatched input', inputs: [[3, 6, 6]], fn: (x) => adaptiveAvgPool2d(x, 2) },
];

/** Inputs: x, weight, bias, runningMean, runningVar (positive); the updated running statistics are outputs too. */
const bnIn = (...x: number[]) => [x, [x[1]!], [x[1]!], constant(x[1]!), { shape: [x[1]!], pos: true, grad: false }];
const normCases: Case[] = [
  { name: 'batchNorm training, affine, running statistics updated', inputs: bnIn(4, 3, 5, 5),
    fn: (x, w, b, rm, rv) => [batchNorm(x, rm, rv, w, b, { training: true, momentum: 0.2 }), rm!, rv!] },
  { name: 'batchNorm training without affine or running statistics', inputs: [[6, 4, 3, 2]],
    fn: (x) => batchNorm(x, null, null, null, null, { training: true, eps: 1e-3 }) },
  { name: 'batchNorm training on [N, C]', inputs: [[8, 5], [5], [5]],
    fn: (x, w, b) => batchNorm(x, null, null, w, b, { training: true }) },
  { name: 'batchNorm training on [N, C, L]', inputs: [[3, 2, 7], [2]], fn: (x, w) => batchNorm(x, null, null, w, null, { training: true }) },
  { name: 'batchNorm momentum null counts batches', inputs: bnIn(4, 2, 3, 3),
    fn: (x, w, b, rm, rv) => {
      const count = tensor(2, { dtype: 'int64', device: x.device });
      return [batchNorm(x, rm, rv, w, b, { training: true, momentum: null, numBatchesTracked: count }), rm!, rv!];
    } },
  { name: 'batchNorm eval with running statistics', inputs: bnIn(4, 3, 5, 5),
    fn: (x, w, b, rm, rv) => batchNorm(x, rm, rv, w, b) },
  { name: 'batchNorm eval without affine', inputs: bnIn(2, 3, 4, 4), fn: (x, _w, _b, rm, rv) => batchNorm(x, rm, rv) },
  // The ReLU and residual fused into batch norm's passes; training without a residual masks dy in
  // the backward kernels themselves.
  { name: 'batchNormFused training, relu', inputs: bnIn(4, 3, 5, 5),
    fn: (x, w, b, rm, rv) => [batchNormFused(x, rm, rv, w, b, { training: true, relu: true }), rm!, rv!] },
  { name: 'batchNormFused training, relu, without affine', inputs: [[3, 4, 3, 3]],
    fn: (x) => batchNormFused(x, null, null, null, null, { training: true, relu: true }) },
  { name: 'batchNormFused training, residual and relu', inputs: [[4, 3, 5, 5], [3], [3], [4, 3, 5, 5]],
    fn: (x, w, b, r) => batchNormFused(x, null, null, w, b, { training: true, residual: r, relu: true }) },
  { name: 'batchNormFused training, residual without relu, on [N, C]', inputs: [[8, 5], [5], [5], [8, 5]],
    fn: (x, w, b, r) => batchNormFused(x, null, null, w, b, { training: true, residual: r }) },
  { name: 'batchNormFused eval, residual and relu', inputs: [...bnIn(4, 3, 5, 5), [4, 3, 5, 5]],
    fn: (x, w, b, rm, rv, r) => batchNormFused(x, rm, rv, w, b, { residual: r, relu: true }) },
];

const softmaxCases: Case[] = [
  ...[0, 1, -1].map((d): Case => ({ name: `softmax and logSoftmax over dim ${d}`, inputs: [[3, 4, 5]],
    fn: (x) => [softmax(x, d), logSoftmax(x, d)] })),
  { name: 'softmax and logSoftmax of large logits (stability)', inputs: [{ shape: [2, 4], data: [80, 81, 82, 60, -90, -91, -95, -80], grad: true }],
    fn: (x) => [softmax(x, 1), logSoftmax(x, 1)] },
  { name: 'softmax and logSoftmax of a 0-d tensor', inputs: [[]], fn: (x) => [softmax(x, 0), x.logSoftmax(-1)] },
  { name: 'softmax of a wide row', inputs: [[2, 500]], fn: (x) => x.softmax(1) },
];

const N = 6, C = 5;
const labels = [0, 4, 2, 1, 3, 2];
const withIgnored = [0, -100, 2, 1, -100, 3];
const lossCases: Case[] = [
  ...(['mean', 'sum', 'none'] as const).flatMap((reduction): Case[] => [
    { name: `crossEntropy reduction ${reduction}`, inputs: [[N, C]], fn: (x) => crossEntropy(x, labels, { reduction }) },
    { name: `crossEntropy label smoothing 0.2, class weights, ignoreIndex, reduction ${reduction}`,
      inputs: [[N, C], pos(C)],
      fn: (x, w) => crossEntropy(x, withIgnored, { reduction, labelSmoothing: 0.2, weight: w!.detach() }) },
    { name: `nllLoss with class weights, reduction ${reduction}`, inputs: [[N, C], pos(C)],
      fn: (x, w) => nllLoss(logSoftmax(x, 1), labels, { reduction, weight: w }) },
    { name: `mseLoss reduction ${reduction}`, inputs: [[3, 4], [3, 4]], fn: (a, b) => mseLoss(a, b, { reduction }) },
  ]),
  { name: 'crossEntropy with label smoothing 0.1', inputs: [[N, C]], fn: (x) => crossEntropy(x, labels, { labelSmoothing: 0.1 }) },
  { name: 'crossEntropy with a custom ignoreIndex', inputs: [[N, C]],
    fn: (x) => crossEntropy(x, [0, 3, 3, 1, 2, 4], { ignoreIndex: 3 }) },
  { name: 'crossEntropy over spatial dims [N, C, H, W]', inputs: [[2, 3, 2, 2], index(3, 2, 2, 2)],
    fn: (x, t) => crossEntropy(x, t!, { labelSmoothing: 0.05 }) },
  { name: 'softmax, logSoftmax and crossEntropy with label smoothing over a middle dim of [N, C, L]',
    inputs: [[4, 5, 3], index(5, 4, 3)],
    fn: (x, t) => [softmax(x, 1), logSoftmax(x, -1), crossEntropy(x, t!, { labelSmoothing: 0.1 })] },
  { name: 'crossEntropy with class-probability targets', inputs: [[4, 3], pos(4, 3)],
    fn: (x, q) => crossEntropy(x, q!.detach(), { labelSmoothing: 0.1 }) },
  { name: 'crossEntropy of an unbatched [C] input', inputs: [[C]], fn: (x) => crossEntropy(x, tensor(2, { dtype: 'int64', device: x.device })) },
  { name: 'nllLoss with ignoreIndex over [N, C, L]', inputs: [[2, 4, 3], index(4, 2, 3)],
    fn: (x, t) => nllLoss(x, t!, { ignoreIndex: 1 }) },
  { name: 'mseLoss with broadcasting', inputs: [[3, 4], [4]], fn: (a, b) => mseLoss(a, b) },
  { name: 'oneHot with numClasses and inferred', inputs: [index(4, 2, 5)], fn: (t) => [oneHot(t, 6), oneHot(t)] },
  { name: 'oneHot as a float mask', inputs: [[3, 4], index(4, 3)], fn: (x, t) => x.mul(oneHot(t!, 4).to(x.dtype)) },
];

/**
 * Backward written with differentiable ops gives second derivatives on every backend: each case
 * returns the createGraph gradient of tanh(f(x)) summed, and checkParity differentiates that again.
 */
const firstDerivative = (f: (...t: Tensor[]) => Tensor) => (...ts: Tensor[]) =>
  grad([f(...ts).tanh().sum()], ts.filter((t) => t.requiresGrad), { createGraph: true }) as Tensor[];
const secondOrderConvMatmul: Case[] = [
  { name: 'conv2d stride 2, padding 1', inputs: [[2, 3, 6, 5], [4, 3, 3, 3]],
    fn: firstDerivative((x, w) => conv2d(x, w, null, { stride: 2, padding: 1 })) },
  { name: 'matmul and linear', inputs: [[3, 4], [4, 5], [2, 5]], fn: firstDerivative((a, b, w) => linear(matmul(a, b).tanh(), w)) },
];

const secondOrderCases: Case[] = [
  { name: 'batchNorm training (the composite gradient)', inputs: [[4, 3, 3, 3], [3], [3]],
    fn: firstDerivative((x, w, b) => batchNorm(x, null, null, w, b, { training: true })) },
  { name: 'batchNormFused training, relu (the composite gradient)', inputs: [[4, 3, 3, 3], [3], [3]],
    fn: firstDerivative((x, w, b) => batchNormFused(x, null, null, w, b, { training: true, relu: true })) },
  { name: 'maxPool2d, avgPool2d, adaptiveAvgPool2d', inputs: [[2, 2, 6, 6]],
    fn: firstDerivative((x) => cat([maxPool2d(x, 2).flatten(), avgPool2d(x, 3, { padding: 1, stride: 2 }).flatten(),
      adaptiveAvgPool2d(x, [4, 3]).flatten()])) },
  { name: 'softmax, logSoftmax, crossEntropy', inputs: [[4, 5]],
    fn: firstDerivative((x) => cat([softmax(x, 1).flatten(), logSoftmax(x, 0).flatten(),
      crossEntropy(x, [1, 2, 3, 4], { labelSmoothing: 0.1 }).reshape([1])])) },
];

paritySuite('ops parity: matmul, bmm, linear', matmulCases, [['BatchMatMul', 'float32']]);
paritySuite('ops parity: conv2d and its backward ops', convCases, [['Conv2D', 'float32']]);
paritySuite('ops parity: pooling', poolCases);
paritySuite('ops parity: batchNorm', normCases);
paritySuite('ops parity: softmax and logSoftmax', softmaxCases);
paritySuite('ops parity: losses', lossCases);
paritySuite('ops parity: second derivatives (createGraph)', secondOrderCases);
paritySuite('ops parity: second derivatives through conv2d and matmul (createGraph)', secondOrderConvMatmul,
  [['Conv2D', 'float32'], ['BatchMatMul', 'float32']]);

for (const h of HALF_TYPES) {
  paritySuite(`ops parity [${h}]: matmul, bmm, linear`, matmulCases, [['BatchMatMul', h]], h);
  paritySuite(`ops parity [${h}]: conv2d and its backward ops`, convCases, [['Conv2D', h], ['Conv2DBackpropFilter', h]], h);
  paritySuite(`ops parity [${h}]: pooling`, poolCases, [['MaxPool2D', h], ['AvgPool2D', h]], h);
  paritySuite(`ops parity [${h}]: batchNorm`, normCases, [['BatchNormStats', h]], h);
  paritySuite(`ops parity [${h}]: softmax and logSoftmax`, softmaxCases, [['Softmax', h]], h);
  paritySuite(`ops parity [${h}]: losses`, lossCases, [['LogSoftmax', h], ['OneHot', h]], h);
}
