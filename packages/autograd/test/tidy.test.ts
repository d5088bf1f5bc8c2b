/**
 * tidy / keep and the engine's ownership of `.grad`, on a backend that records what it frees
 * (the ts kernels with a `free` that counts), so no native build is needed.
 */
import { describe, expect, it } from 'vitest';
import {
  keep, noGrad, pipeKeepingSaved, registerBackend, releaseGrad, tensor, tidy, tidyKeepingSaved, tsBackend, type Tensor,
} from '@nodegrad/autograd';

const freed = new Set<unknown>();
registerBackend({ ...tsBackend, name: 'counting', free: (buf: unknown) => { freed.add(buf); } });
const t = (data: number[], requiresGrad = false) => tensor(data, { dtype: 'float64', device: 'counting', requiresGrad });
const vals = (x: Tensor | null) => Array.from(x!.toTypedArray());

describe('tidy', () => {
  it('frees every buffer made inside except the returned ones', () => {
    freed.clear();
    const a = t([1, 2, 3]);
    let inner: Tensor[] = [];
    const out = tidy(() => {
      const b = a.mul(2);
      const c = b.add(1).exp();
      inner = [b, c];
      return { sum: c.sum(), parts: [b.neg()] };
    });
    expect(freed.has(inner[0]!.buf) && freed.has(inner[1]!.buf)).toBe(true);
    expect(freed.has(out.sum.buf) || freed.has(out.parts[0]!.buf) || freed.has(a.buf)).toBe(false);
    expect(vals(out.parts[0]!)).toEqual([-2, -4, -6]);
  });

  it('moves returned tensors to the enclosing tidy, which frees them unless it returns them too', () => {
    freed.clear();
    let mid: Tensor | null = null;
    const kept = tidy(() => {
      mid = tidy(() => t([1, 2]).add(1));
      expect(freed.has(mid.buf)).toBe(false);
      return mid.mul(3);
    });
    expect(freed.has(mid!.buf)).toBe(true);
    expect(vals(kept)).toEqual([6, 9]);
  });

  it('keep() lets a tensor outlive every enclosing tidy; a thrown error still frees the rest', () => {
    freed.clear();
    let k: Tensor | null = null;
    let other: Tensor | null = null;
    expect(() => tidy(() => {
      k = keep(t([5]).add(1));
      other = t([7]).add(1);
      throw new Error('boom');
    })).toThrow('boom');
    expect(freed.has(k!.buf)).toBe(false);
    expect(freed.has(other!.buf)).toBe(true);
    expect(() => tidy(() => Promise.resolve(1))).toThrow(/synchronous/);
  });
});

describe('tidyKeepingSaved', () => {
  it('frees the intermediates no recorded op saved, keeps the saved ones, and backward still works', () => {
    freed.clear();
    const x = t([1, -2, 3], true);
    let scaled: Tensor | null = null;
    let activated: Tensor | null = null;
    const out = tidyKeepingSaved(() => {
      scaled = x.add(1); // add saves nothing; relu saves only its output
      activated = scaled.relu();
      return activated.mul(activated).sum(); // mul saves both operands
    });
    expect(freed.has(scaled!.buf)).toBe(true);
    expect(freed.has(activated!.buf)).toBe(false);
    out.backward();
    expect(vals(x.grad)).toEqual([4, 0, 8]); // d/dx relu(x + 1)^2 = 2 relu(x + 1)
  });

  it('without recording (noGrad) it frees everything but the result', () => {
    freed.clear();
    let mid: Tensor | null = null;
    const out = noGrad(() => tidyKeepingSaved(() => { mid = t([1, 2], true).exp(); return mid.relu(); }));
    expect(freed.has(mid!.buf)).toBe(true);
    expect(vals(out)).toEqual([Math.exp(1), Math.exp(2)]);
  });
});

describe('pipeKeepingSaved', () => {
  it("frees each stage's output once the next stage has returned, not at the end", () => {
    freed.clear();
    const x = t([1, -2, 3]);
    const outs: Tensor[] = [];
    // When stage i runs, stage i-2's output is already freed: one map between stages, not all.
    const seen: boolean[] = [];
    const stage = (f: (v: Tensor) => Tensor) => (v: Tensor) => {
      if (outs.length >= 2) seen.push(freed.has(outs[outs.length - 2]!.buf));
      const y = f(v);
      outs.push(y);
      return y;
    };
    const out = noGrad(() => pipeKeepingSaved(x, [stage((v) => v.add(1)), stage((v) => v.mul(2)), stage((v) => v.exp()), stage((v) => v.neg())]));
    expect(seen).toEqual([true, true]);
    expect(outs.slice(0, 3).map((o) => freed.has(o.buf))).toEqual([true, true, true]);
    expect(freed.has(out.buf) || freed.has(x.buf)).toBe(false);
    expect(vals(out)).toEqual([4, -2, 8].map((v) => -Math.exp(v)));
  });

  it('keeps what the tape saved, an output sharing its input, and the input itself; backward still works', () => {
    freed.clear();
    const x = t([1, -2, 3], true);
    const outs: Tensor[] = [];
    const keepOut = (f: (v: Tensor) => Tensor) => (v: Tensor) => { const y = f(v); outs.push(y); return y; };
    const out = pipeKeepingSaved(x, [
      keepOut((v) => v.add(1)), // saved by nothing: freed
      keepOut((v) => v.relu()), // relu saves its output, and mul saves its operand: kept
      keepOut((v) => v.reshape([3])), // a view of the relu's output
      keepOut((v) => v.mul(v)),
    ]);
    expect(freed.has(outs[0]!.buf)).toBe(true);
    expect(freed.has(outs[1]!.buf) || freed.has(x.buf)).toBe(false);
    out.sum().backward();
    expect(vals(x.grad)).toEqual([4, 0, 8]);
  });
});

describe('gradients and tidy', () => {
  it('a leaf gradient outlives the tidy that computed it, and accumulates in its own buffer', () => {
    freed.clear();
    const x = t([1, 2], true);
    const y = t([3, 4], true);
    // add's backward hands the same gradient to both inputs: each leaf must get its own copy.
    tidy(() => { x.add(y).mul(x).sum().backward(); });
    expect(vals(x.grad)).toEqual([5, 8]); // d/dx (x + y) x = 2x + y
    expect(vals(y.grad)).toEqual([1, 2]);
    const gx = x.grad!;
    tidy(() => { x.add(y).sum().backward(); });
    expect(x.grad).toBe(gx); // same tensor, updated in place
    expect(vals(x.grad)).toEqual([6, 9]);
    expect(vals(y.grad)).toEqual([2, 3]);
    expect(freed.has(gx.buf) || freed.has(y.grad!.buf)).toBe(false);
  });

  it('releaseGrad frees a gradient the engine allocated and clears it', () => {
    freed.clear();
    const x = t([1, 2], true);
    tidy(() => { x.mul(3).sum().backward(); });
    const g = x.grad!;
    releaseGrad(x);
    expect(x.grad).toBe(null);
    expect(freed.has(g.buf)).toBe(true);
    // A gradient the user set is the user's: dropped, not freed.
    const mine = t([9, 9]);
    x.grad = mine;
    releaseGrad(x);
    expect(freed.has(mine.buf)).toBe(false);
  });

  it('a user-set .grad is added into in place by the next backward, as PyTorch (a preallocated buffer sees the sum)', () => {
    // torch: g0 = tensor([10., 10.]); x.grad = g0; (x * 2).sum().backward() -> x.grad is g0, [12, 12].
    const x = t([1, 2], true);
    const mine = t([10, 10]);
    x.grad = mine;
    x.mul(2).sum().backward();
    expect(x.grad).toBe(mine);
    expect(vals(mine)).toEqual([12, 12]);
  });
});
