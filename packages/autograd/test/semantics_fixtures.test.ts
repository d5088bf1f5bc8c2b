/**
 * nodegrad against PyTorch where semantics are easy to get subtly wrong: max/min with a dim
 * against amax/amin on ties, and in-place ops on views and slices (PyTorch's CopySlices). The
 * fixtures come from scripts/fixtures/make_semantics_fixtures.py; each view case is a program
 * written there and again here under the same name. Every case runs in float64 on every backend.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  amax, amin, fromTypedArray, grad, max, min, noGrad, sliceScatter, type Tensor,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

interface J { dtype: 'float64' | 'int64'; shape: number[]; data: number[] }
interface MaxMinCase { name: string; x: J; values: J; indices?: J; gradOutput: J; gradX: J }
interface ViewCase { name: string; x: J; w?: J; out: J; gradOutput: J; gradX: J; gradW?: J }
interface ErrorCase { name: string; raises: boolean; message: string }
interface Fixture { generator: string; torch: string; maxMin: MaxMinCase[]; views: ViewCase[]; errors: ErrorCase[] }

const fx = JSON.parse(readFileSync(new URL('./fixtures/semantics.json', import.meta.url), 'utf8')) as Fixture;

const MAX_MIN: Record<string, (x: Tensor) => Tensor | { values: Tensor; indices: Tensor }> = {
  'max(x, 1)': (x) => max(x, 1),
  'max(x, 0, keepdim)': (x) => max(x, 0, true),
  'min(x, 1)': (x) => min(x, 1),
  'min(x, -2, keepdim)': (x) => min(x, -2, true),
  'amax(x, 1)': (x) => amax(x, 1),
  'amin(x, [0, 1])': (x) => amin(x, [0, 1]),
  'amax(x, 0, keepdim)': (x) => amax(x, 0, true),
  'max(x)': (x) => max(x),
  'min(x)': (x) => min(x),
  'max(x, 2) of a 3-d tensor': (x) => max(x, 2),
};

/** The programs of make_semantics_fixtures.py, in the same order and under the same names. */
const VIEWS: Record<string, (x: Tensor, w: Tensor | null) => Tensor> = {
  'clone, narrow(0, 0, 2).mul_(2)': (x) => {
    const y = x.clone();
    y.narrow(0, 0, 2).mul_(2);
    return y;
  },
  'view(-1).mul_(w), then the base used twice': (x, w) => {
    const y = x.mul(1);
    y.view([-1]).mul_(w!);
    return y.mul(y);
  },
  "a sibling view sees another view's mul_": (x) => {
    const y = x.mul(1);
    const a = y.view([12]), b = y.view([4, 3]);
    a.mul_(2);
    return b;
  },
  'strided slice [:, ::2].add_(w)': (x, w) => {
    const y = x.clone();
    y.slice(1, null, null, 2).add_(w!);
    return y.mul(y);
  },
  'relu_ on a view of a slice': (x) => {
    const y = x.clone();
    y.narrow(0, 1, 2).view([-1]).relu_();
    return y;
  },
  'a slice of a slice, mul_(w)': (x, w) => {
    const y = x.clone();
    y.narrow(1, 1, 3).narrow(0, 0, 2).mul_(w!);
    return y;
  },
  'copy_(w) into a narrow': (x, w) => {
    const y = x.clone();
    y.narrow(0, 2, 1).copy_(w!);
    return y.mul(2);
  },
  'zero_ on a narrow': (x) => {
    const y = x.clone();
    y.narrow(1, 0, 1).zero_();
    return y;
  },
  'a slice taken before its base changed in place': (x) => {
    const y = x.mul(1);
    const s = y.narrow(0, 0, 2);
    y.mul_(3);
    return s.mul(s);
  },
  'two narrows: mul_ one, add_(w) the other': (x, w) => {
    const y = x.clone();
    const a = y.narrow(1, 0, 2), b = y.narrow(1, 2, 2);
    a.mul_(2);
    b.add_(w!);
    return y;
  },
  'add_ on the base, then mul_(w) on a view': (x, w) => {
    const y = x.mul(1);
    y.add_(1);
    y.view([12]).mul_(w!);
    return y.tanh();
  },
  'slice_scatter(x, w, 1, start=1, step=2)': (x, w) => sliceScatter(x, w!, 1, 1, null, 2),
  'no_grad writes through a slice and a slice of a view': (x) => {
    const y = x.detach().clone();
    noGrad(() => {
      y.narrow(0, 1, 1).mul_(10);
      y.view([12]).slice(0, 0, 2).fill_(7);
    });
    return y.mul(x);
  },
};

const ERRORS: Record<string, { run: (x: Tensor) => void; nodegrad: RegExp }> = {
  'mul_ on a piece of chunk (a function that returns several views)': {
    run: (x) => { x.clone().chunk(2, 1)[1]!.mul_(2); },
    nodegrad: /^mul_: output 1 of chunk is a view and is being modified in place while recording/,
  },
  'a saved output changed through a slice': {
    run: (x) => { const e = x.exp(); e.narrow(0, 0, 1).mul_(2); e.sum().backward(); },
    nodegrad: /^exp: one of the tensors needed for gradient computation \(saved tensor 0, float64 \[3, 4\]\) has been modified by an inplace operation: it is at version 1; expected version 0 instead\./,
  },
  'a saved output changed through a view': {
    run: (x) => { const e = x.exp(); e.view([-1]).mul_(2); e.sum().backward(); },
    nodegrad: /^exp: one of the tensors needed for gradient computation .* it is at version 1; expected version 0 instead\./,
  },
  'mul_ on a view of a leaf that requires grad': {
    run: (x) => { x.view([-1]).mul_(2); },
    nodegrad: /^mul_: a view of a leaf tensor that requires grad \(\[12\] of \[3, 4\]\) is being used in an in-place operation/,
  },
  'mul_ on a slice of a leaf that requires grad': {
    run: (x) => { x.narrow(0, 0, 1).mul_(2); },
    nodegrad: /^mul_: a view of a leaf tensor that requires grad \(\[1, 4\] of \[3, 4\]\) is being used in an in-place operation/,
  },
};

const within = (a: Tensor, e: J) => {
  expect(a.shape).toEqual(e.shape);
  const got = Array.from(a.toTypedArray());
  got.forEach((v, i) => expect(Math.abs(v - e.data[i]!), `element ${i}: ${v} vs PyTorch ${e.data[i]}`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(e.data[i]!))));
};

describe('the semantics fixtures', () => {
  it('name the generator and torch version, and every case has its program here', () => {
    expect(fx.generator).toBe('scripts/fixtures/make_semantics_fixtures.py');
    expect(fx.torch).toMatch(/^\d+\.\d+/);
    expect(fx.maxMin.map((c) => c.name)).toEqual(Object.keys(MAX_MIN));
    expect(fx.views.map((c) => c.name)).toEqual(Object.keys(VIEWS));
    expect(fx.errors.map((c) => c.name)).toEqual(Object.keys(ERRORS));
  });
});

describeBackends(describe, 'semantics against PyTorch', (device) => {
  const t = (j: J, requiresGrad = false) =>
    fromTypedArray(Float64Array.from(j.data), j.shape, { dtype: j.dtype === 'int64' ? 'int64' : 'float64', device, requiresGrad });

  for (const c of fx.maxMin) {
    it(`${c.name}: values, indices and the gradient`, () => {
      const x = t(c.x, true);
      const out = MAX_MIN[c.name]!(x);
      const values = 'values' in out ? out.values : out;
      within(values, c.values);
      if (c.indices) expect(Array.from((out as { indices: Tensor }).indices.toTypedArray())).toEqual(c.indices.data);
      else expect('indices' in out).toBe(false);
      within(grad(values, x, { gradOutputs: [t(c.gradOutput)] })[0]!, c.gradX);
    });
  }

  for (const c of fx.views) {
    it(`in place on views: ${c.name}`, () => {
      const x = t(c.x, true);
      const w = c.w ? t(c.w, true) : null;
      const out = VIEWS[c.name]!(x, w);
      within(out, c.out);
      const leaves = w ? [x, w] : [x];
      const gs = grad(out, leaves, { gradOutputs: [t(c.gradOutput)], allowUnused: true });
      within(gs[0]!, c.gradX);
      if (w) within(gs[1]!, c.gradW!);
    });
  }

  for (const c of fx.errors) {
    it(`refused as in PyTorch: ${c.name}`, () => {
      expect(c.raises).toBe(true);
      const e = ERRORS[c.name]!;
      expect(() => e.run(t(fx.views[0]!.x, true))).toThrow(e.nodegrad);
    });
  }
});
