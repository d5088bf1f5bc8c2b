/**
 * Products of vectors and contractions: dot, outer, t, and einsum for the equations that map to a
 * (batched) matrix product: every index appears at most once per operand, and an index shared by
 * two operands has one size. Each einsum step is sums, permutes and reshapes around one bmm, so
 * the gradients are those of the parts.
 */
import { installMethods } from '../methods.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { mul } from './arith.js';
import { bmm } from './matmul.js';
import { sum } from './reduce.js';
import { permute, transpose, unsqueeze } from './shape.js';
import { checkSame, checkTensor } from './util.js';

/** The inner product of two 1-d tensors of one length (torch.dot). */
export function dot(a: Tensor, b: Tensor): Tensor {
  checkTensor('dot', 'input', a);
  checkTensor('dot', 'other', b);
  if (a.ndim !== 1 || b.ndim !== 1 || a.shape[0] !== b.shape[0]) {
    throw new Error(`dot: expects two 1-d tensors of the same length, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  checkSame('dot', { input: a, other: b });
  return sum(mul(a, b));
}

/** a[i] b[j] as a matrix (torch.outer). */
export function outer(a: Tensor, b: Tensor): Tensor {
  checkTensor('outer', 'input', a);
  checkTensor('outer', 'vec2', b);
  if (a.ndim !== 1 || b.ndim !== 1) throw new Error(`outer: expects two 1-d tensors, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));
}

/** The transpose of a matrix; a 0-d or 1-d tensor is returned as it is (torch.t). */
export function t(x: Tensor): Tensor {
  if (x.ndim > 2) throw new Error(`t: expects a tensor of at most 2 dims, got shape ${fmt(x.shape)}; use transpose or permute`);
  return x.ndim < 2 ? x : transpose(x, 0, 1);
}

/** An operand with its index letters. */
interface Term { x: Tensor; idx: string[] }

function parse(equation: string, n: number): { inputs: string[][]; output: string[] } {
  const eq = equation.replace(/\s+/g, '');
  if (eq.includes('.')) throw new Error(`einsum: '...' is not supported (equation '${equation}')`);
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const inputs = lhs.split(',').map((s) => [...s]);
  if (inputs.length !== n) throw new Error(`einsum: the equation '${equation}' names ${inputs.length} operands, but ${n} were given`);
  for (const idx of [...inputs, ...(rhs === undefined ? [] : [[...rhs]])]) {
    for (const c of idx) if (!/[a-zA-Z]/.test(c)) throw new Error(`einsum: '${c}' in '${equation}' is not a letter`);
    if (new Set(idx).size !== idx.length) {
      throw new Error(`einsum: an index repeated within one operand or the output ('${idx.join('')}' in '${equation}') is not supported`);
    }
  }
  // Implicit output: the letters that appear once, in alphabetical order, as in NumPy and PyTorch.
  const counts = new Map<string, number>();
  for (const c of inputs.flat()) counts.set(c, (counts.get(c) ?? 0) + 1);
  const output = rhs === undefined ? [...counts].filter(([, k]) => k === 1).map(([c]) => c).sort() : [...rhs];
  for (const c of output) if (!counts.has(c)) throw new Error(`einsum: output index '${c}' appears in no operand of '${equation}'`);
  return { inputs, output };
}

/** Sums away the letters of a term that nothing later needs. */
function reduceTerm(term: Term, keep: Set<string>): Term {
  const drop = term.idx.map((c, i) => (keep.has(c) ? -1 : i)).filter((i) => i >= 0);
  if (!drop.length) return term;
  return { x: sum(term.x, drop), idx: term.idx.filter((c) => keep.has(c)) };
}

/** A x B over their shared letters, keeping those in `keep`, as one bmm. */
function contract(a: Term, b: Term, keep: Set<string>): Term {
  const inB = new Set(b.idx);
  const batch = a.idx.filter((c) => inB.has(c) && keep.has(c));
  const summed = a.idx.filter((c) => inB.has(c) && !keep.has(c));
  const aOnly = a.idx.filter((c) => !inB.has(c));
  const bOnly = b.idx.filter((c) => !a.idx.includes(c));
  const size = (t: Term, c: string) => t.x.shape[t.idx.indexOf(c)]!;
  const prod = (t: Term, cs: string[]) => cs.reduce((p, c) => p * size(t, c), 1);
  const arrange = (t: Term, order: string[], shape: number[]) =>
    permute(t.x, order.map((c) => t.idx.indexOf(c))).reshape(shape);
  const nb = prod(a, batch), k = prod(a, summed);
  const am = arrange(a, [...batch, ...aOnly, ...summed], [nb, prod(a, aOnly), k]);
  const bm = arrange(b, [...batch, ...summed, ...bOnly], [nb, k, prod(b, bOnly)]);
  const out = bmm(am, bm).reshape([...batch.map((c) => size(a, c)), ...aOnly.map((c) => size(a, c)), ...bOnly.map((c) => size(b, c))]);
  return { x: out, idx: [...batch, ...aOnly, ...bOnly] };
}

/**
 * Einstein summation, as torch.einsum, for equations such as 'ij,jk->ik', 'bij,bjk->bik',
 * 'i,i->', 'ij->ji' or 'bhqd,bhkd->bhqk'. Operands are contracted left to right.
 */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  if (operands.length === 0) throw new Error('einsum: needs at least one operand');
  operands.forEach((x, i) => checkTensor('einsum', `operand ${i}`, x));
  const { inputs, output } = parse(equation, operands.length);
  const sizes = new Map<string, number>();
  inputs.forEach((idx, i) => {
    if (idx.length !== operands[i]!.ndim) {
      throw new Error(`einsum: operand ${i} has shape ${fmt(operands[i]!.shape)} but '${idx.join('')}' names ${idx.length} dims`);
    }
    idx.forEach((c, j) => {
      const s = operands[i]!.shape[j]!;
      if (sizes.has(c) && sizes.get(c) !== s) {
        throw new Error(`einsum: index '${c}' has size ${sizes.get(c)} in one operand and ${s} in operand ${i} (broadcasting is not supported)`);
      }
      sizes.set(c, s);
    });
  });
  const needed = (from: number) => new Set([...output, ...inputs.slice(from).flat()]);
  let acc = reduceTerm({ x: operands[0]!, idx: inputs[0]! }, needed(1));
  for (let i = 1; i < operands.length; i++) {
    const next = reduceTerm({ x: operands[i]!, idx: inputs[i]! }, new Set([...needed(i + 1), ...acc.idx]));
    acc = contract(acc, next, needed(i + 1));
  }
  acc = reduceTerm(acc, new Set(output));
  return permute(acc.x, output.map((c) => acc.idx.indexOf(c)));
}

installMethods({ dot, outer, t });

declare module '../tensor.js' {
  interface Tensor {
    dot(other: Tensor): Tensor; outer(vec2: Tensor): Tensor; t(): Tensor;
  }
}
