/**
 * matmul with PyTorch's rank rules, and linear. Everything lowers to one batched kernel,
 * BatchMatMul [B, M, K] x [B, K, N], whose transpose flags let the VJP avoid materialized
 * transposes: for C = op(A) op(B), dA and dB are again single BatchMatMul calls.
 */
import { defineOp, type Ctx } from '../function.js';
import { installMethods } from '../methods.js';
import { broadcastShapes, fmt, numel } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { autocastInputs } from '../autocast.js';
import { add, addTangents } from './arith.js';
import { expand, reshape } from './shape.js';
import { checkFloat, checkSame, checkTensor, kernels, wrap } from './util.js';

const bmmOp: (a: Tensor, b: Tensor, transA: boolean, transB: boolean) => Tensor = defineOp({
  name: 'bmm',
  forward(ctx: Ctx<{ transA: boolean; transB: boolean }>, a: Tensor, b: Tensor, transA: boolean, transB: boolean) {
    ctx.save(a, b);
    ctx.transA = transA; ctx.transB = transB;
    return wrap(kernels(a).BatchMatMul(a, b, transA, transB), a);
  },
  backward(ctx, g) {
    const [a, b] = ctx.saved as [Tensor, Tensor];
    const tA = ctx.transA as boolean, tB = ctx.transB as boolean;
    // C = op(A) op(B): d op(A) = G op(B)^T and d op(B) = op(A)^T G; transposing back where
    // op is a transpose gives dA = op(B) G^T and dB = G^T op(A).
    const ga = !ctx.needsInputGrad[0] ? null : tA ? bmm(b, g, tB, true) : bmm(g, b, false, !tB);
    const gb = !ctx.needsInputGrad[1] ? null : tB ? bmm(g, a, true, tA) : bmm(a, g, !tA, false);
    return [ga, gb, null, null];
  },
  jvp: (_ctx, [ta, tb], _out, a, b, transA, transB) =>
    addTangents(ta ? bmmOp(ta, b, transA, transB) : null, tb ? bmmOp(a, tb, transA, transB) : null),
});

/** Batched product of 3-D tensors, optionally transposing the last two dims of either: the kernel, recorded. */
export function bmm(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  checkTensor('bmm', 'input', a);
  checkTensor('bmm', 'mat2', b);
  [a, b] = autocastInputs('lower', a, b);
  checkSame('bmm', { input: a, mat2: b });
  if (a.ndim !== 3 || b.ndim !== 3) {
    throw new Error(`bmm: expected 3-D tensors, got input of shape ${fmt(a.shape)} and mat2 of shape ${fmt(b.shape)}`);
  }
  const k1 = a.shape[transA ? 1 : 2]!, k2 = b.shape[transB ? 2 : 1]!;
  if (a.shape[0] !== b.shape[0] || k1 !== k2) {
    throw new Error(`bmm: cannot multiply input of shape ${fmt(a.shape)}${transA ? ' (transposed)' : ''} and mat2 ` +
      `of shape ${fmt(b.shape)}${transB ? ' (transposed)' : ''}: batch sizes ${a.shape[0]} and ${b.shape[0]}, ` +
      `inner dimensions ${k1} and ${k2}`);
  }
  return bmmOp(a, b, transA, transB);
}

/**
 * Matrix product with PyTorch's rules: 1-D x 1-D is a dot product; a 1-D argument is promoted to
 * a matrix (a row on the left, a column on the right) and the added dim removed afterwards;
 * dims before the last two are batch dims and broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor('matmul', 'input', a);
  checkTensor('matmul', 'other', b);
  [a, b] = autocastInputs('lower', a, b);
  checkSame('matmul', { input: a, other: b });
  checkFloat('matmul', 'input', a);
  if (a.ndim === 0 || b.ndim === 0) {
    throw new Error(`matmul: both arguments need at least 1 dimension, got input of shape ${fmt(a.shape)} and other of shape ${fmt(b.shape)}`);
  }
  const as = a.ndim === 1 ? [1, a.shape[0]!] : [...a.shape];
  const bs = b.ndim === 1 ? [b.shape[0]!, 1] : [...b.shape];
  const [m, k] = as.slice(-2) as [number, number];
  const [k2, n] = bs.slice(-2) as [number, number];
  if (k !== k2) {
    throw new Error(`matmul: cannot multiply input of shape ${fmt(a.shape)} and other of shape ${fmt(b.shape)}: ` +
      `inner dimensions ${k} and ${k2} differ`);
  }
  const batchA = as.slice(0, -2), batchB = bs.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', batchA, batchB);
  } catch {
    throw new Error(`matmul: batch dimensions ${fmt(batchA)} of input ${fmt(a.shape)} and ${fmt(batchB)} of other ` +
      `${fmt(b.shape)} do not broadcast`);
  }
  let y: Tensor;
  if (numel(batchB) === 1 && batchA.length === batch.length) {
    // A shared right matrix (the common [.., M, K] x [K, N]): fold the batch into M, so b is
    // neither copied per batch nor summed back over it in backward.
    y = bmm(reshape(a, [1, numel(batch) * m, k]), reshape(b, [1, k, n]));
  } else {
    const a3 = reshape(expand(reshape(a, as), [...batch, m, k]), [numel(batch), m, k]);
    const b3 = reshape(expand(reshape(b, bs), [...batch, k, n]), [numel(batch), k, n]);
    y = bmm(a3, b3);
  }
  // Drop the dims that 1-D arguments were promoted with.
  return reshape(y, [...batch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])]);
}

/** y = x W^T + b for x [..., in], weight [out, in], bias [out] (as torch.nn.functional.linear). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkTensor('linear', 'input', x);
  checkTensor('linear', 'weight', weight);
  [x, weight, bias] = autocastInputs('lower', x, weight, bias);
  checkSame('linear', { input: x, weight, bias });
  checkFloat('linear', 'input', x);
  if (weight.ndim !== 2) throw new Error(`linear: weight must be 2-D [out_features, in_features], got shape ${fmt(weight.shape)}`);
  const [out, inF] = weight.shape as [number, number];
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(`linear: input of shape ${fmt(x.shape)} does not match weight of shape ${fmt(weight.shape)}: ` +
      `last input dimension ${x.shape[x.ndim - 1] ?? 'none'} vs in_features ${inF}`);
  }
  if (bias && !(bias.ndim === 1 && bias.shape[0] === out)) {
    throw new Error(`linear: bias of shape ${fmt(bias.shape)} does not match weight of shape ${fmt(weight.shape)} (expected [${out}])`);
  }
  const lead = x.shape.slice(0, -1);
  const y = reshape(bmm(reshape(x, [1, numel(lead), inF]), reshape(weight, [1, out, inF]), false, true), [...lead, out]);
  return bias ? add(y, bias) : y;
}

installMethods({ matmul, bmm });

declare module '../tensor.js' {
  interface Tensor {
    matmul(other: Tensor): Tensor;
    bmm(mat2: Tensor, transA?: boolean, transB?: boolean): Tensor;
  }
}
