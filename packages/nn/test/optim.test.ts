/**
 * Optimizers against PyTorch 2.15: three steps of SGD / Adam / AdamW in fifteen configurations
 * (momentum, nesterov, dampening, maximize, weight decay, amsgrad, two param groups, per-group
 * decoupled weight decay, SGD's default lr) on a tiny
 * MLP with a fixed loss, written by scripts/fixtures/make_optim_fixtures.py. Each case runs in
 * float64 (to 1e-10) and float32 (to 1e-5 relative); the state dict after the last step must
 * match PyTorch's, index for index and key for key. Also: state-dict round trips, param-group
 * handling, and errors for bad hyperparameters.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  fromTypedArray, linear, mseLoss, tanh, tensor, zeros, type FloatDType, type Tensor,
} from '@nodegrad/autograd';
import {
  Adam, AdamW, SGD, type Optimizer, type OptimizerStateDict, type ParamGroup,
} from '@nodegrad/nn';

interface J { dtype: 'float64'; shape: number[]; data: number[] }
interface GroupSpec { params: string[]; [option: string]: unknown }
interface StepRecord { loss: number; params: Record<string, J> }
interface TorchStateDict {
  state: Record<string, Record<string, J | number | null>>;
  param_groups: Record<string, unknown>[];
}
interface OptCase {
  name: string; optimizer: 'SGD' | 'Adam' | 'AdamW'; defaults: Record<string, unknown>;
  groups: GroupSpec[]; steps: StepRecord[]; stateDict: TorchStateDict;
}
interface OptFixture {
  torch: string; paramNames: string[]; init: Record<string, J>; x: J; y: J; cases: OptCase[];
}

const fx = JSON.parse(readFileSync(new URL('./fixtures/optim_steps.json', import.meta.url), 'utf8')) as OptFixture;
const ctors = { SGD, Adam, AdamW } as const;
const dtypes: FloatDType[] = ['float64', 'float32'];

function t(j: J, dtype: FloatDType, requiresGrad = false): Tensor {
  return fromTypedArray(Float64Array.from(j.data), j.shape, { dtype, requiresGrad });
}

/** float64: |a - e| <= 1e-10 (1 + |e|); float32: |a - e| <= 1e-5 (|e| + max |e|). */
function expectClose(actual: Tensor | number, expected: J | number, dtype: FloatDType, what: string): void {
  const a = typeof actual === 'number' ? [actual] : Array.from(actual.toTypedArray());
  const e = typeof expected === 'number' ? [expected] : expected.data;
  if (typeof actual !== 'number' && typeof expected !== 'number') {
    expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
    expect(actual.dtype, `${what}: dtype`).toBe(dtype);
  }
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  e.forEach((ev, i) => {
    const bound = dtype === 'float64' ? 1e-10 * (1 + Math.abs(ev)) : 1e-5 * (Math.abs(ev) + scale);
    if (!(Math.abs(a[i]! - ev) <= bound)) {
      throw new Error(`${what} (${dtype}): element ${i} is ${a[i]}, PyTorch gives ${ev} (bound ${bound})`);
    }
  });
}

type P = Record<string, Tensor>;

function makeParams(dtype: FloatDType): P {
  return Object.fromEntries(fx.paramNames.map((n) => [n, t(fx.init[n]!, dtype, true)]));
}

function lossOf(p: P, dtype: FloatDType): Tensor {
  const h = tanh(linear(t(fx.x, dtype), p.w1!, p.b1!));
  return mseLoss(linear(h, p.w2!, p.b2!), t(fx.y, dtype));
}

function build(c: OptCase, p: P): Optimizer<ParamGroup> {
  const groups = c.groups.map(({ params, ...opts }) => ({ params: params.map((n) => p[n]!), ...opts }));
  return new ctors[c.optimizer](groups as never, c.defaults as never);
}

function trainStep(opt: Optimizer<ParamGroup>, p: P, dtype: FloatDType): number {
  opt.zeroGrad();
  const loss = lossOf(p, dtype);
  loss.backward();
  opt.step();
  return loss.item();
}

describe('fixture file', () => {
  it('records the torch version and fifteen cases of three steps', () => {
    expect(fx.torch).toMatch(/^\d+\.\d+/);
    expect(fx.cases.length).toBe(15);
    for (const c of fx.cases) expect(c.steps.length).toBe(3);
  });
  it('the tolerance check rejects a small error', () => {
    const j = fx.cases[0]!.steps[2]!.params.w1!;
    expect(() => expectClose(t(j, 'float64'), j, 'float64', 'exact')).not.toThrow();
    const off = { ...j, data: j.data.map((v, i) => (i === 3 ? v * (1 + 1e-8) + 1e-9 : v)) };
    expect(() => expectClose(t(off, 'float64'), j, 'float64', 'off')).toThrow(/element 3/);
    const off32 = { ...j, data: j.data.map((v, i) => (i === 1 ? v + 1e-4 : v)) };
    expect(() => expectClose(t(off32, 'float32'), j, 'float32', 'off')).toThrow(/element 1/);
  });
});

describe.each(dtypes)('PyTorch fixtures, %s', (dtype) => {
  it.each(fx.cases.map((c) => [c.name, c] as const))('%s: parameters after each of three steps', (_name, c) => {
    const p = makeParams(dtype);
    const objects = { ...p };
    const opt = build(c, p);
    c.steps.forEach((rec, k) => {
      const loss = trainStep(opt, p, dtype);
      expectClose(loss, rec.loss, dtype, `${c.name} step ${k + 1} loss`);
      for (const n of fx.paramNames) expectClose(p[n]!, rec.params[n]!, dtype, `${c.name} step ${k + 1} ${n}`);
    });
    // Updated in place: the same tensor objects, still leaves; `unused` never had a gradient.
    for (const n of fx.paramNames) {
      expect(p[n]).toBe(objects[n]);
      expect(p[n]!.isLeaf && p[n]!.requiresGrad).toBe(true);
    }
    expect(p.unused!.grad).toBeNull();
    expect(Array.from(p.unused!.toTypedArray())).toEqual(Array.from(t(fx.init.unused!, dtype).toTypedArray()));
    expect(opt.state.has(p.unused!)).toBe(false);
  });

  it.each(fx.cases.map((c) => [c.name, c] as const))('%s: stateDict matches PyTorch\'s', (_name, c) => {
    const p = makeParams(dtype);
    const opt = build(c, p);
    for (let k = 0; k < 3; k++) trainStep(opt, p, dtype);
    const sd = opt.stateDict();
    expect(sd.param_groups.length).toBe(c.stateDict.param_groups.length);
    sd.param_groups.forEach((g, i) => {
      // Same keys and values as PyTorch's groups (its implementation switches left out by the script).
      expect(Object.keys(g).sort(), `group ${i} keys`).toEqual(Object.keys(c.stateDict.param_groups[i]!).sort());
      expect(g, `group ${i}`).toEqual(c.stateDict.param_groups[i]);
    });
    expect(Object.keys(sd.state).sort()).toEqual(Object.keys(c.stateDict.state).sort());
    for (const [idx, entry] of Object.entries(c.stateDict.state)) {
      const ours = sd.state[Number(idx)]!;
      expect(Object.keys(ours).sort(), `state[${idx}] keys`).toEqual(Object.keys(entry).sort());
      for (const [k, v] of Object.entries(entry)) {
        if (v === null || typeof v === 'number') expect(ours[k], `state[${idx}].${k}`).toBe(v);
        else expectClose(ours[k] as Tensor, v, dtype, `${c.name} state[${idx}].${k}`);
      }
    }
  });
});

describe('stateDict / loadStateDict', () => {
  const pick = (name: string) => fx.cases.find((c) => c.name === name)!;

  it.each(['sgd_nesterov_wd', 'sgd_two_groups', 'adam_amsgrad', 'adamw_two_groups'])(
    '%s: save after 2 steps, load into a fresh optimizer, continue: equals the uninterrupted run', (name) => {
      const c = pick(name);
      const p = makeParams('float64');
      const opt = build(c, p);
      trainStep(opt, p, 'float64');
      trainStep(opt, p, 'float64');
      const sd = opt.stateDict();
      const snapshot = JSON.stringify(sd.state, (_k, v) => (v && typeof v === 'object' && 'toTypedArray' in v ? Array.from((v as Tensor).toTypedArray()) : v));

      // A fresh model at the same point, and a fresh optimizer with other hyperparameters.
      const q = Object.fromEntries(Object.entries(p).map(([n, v]) => [n, v.detach().clone().requiresGrad_()]));
      const groups = c.groups.map(({ params }) => ({ params: params.map((n) => q[n]!) }));
      const fresh = new ctors[c.optimizer](groups as never, { lr: 0.5 } as never);
      fresh.loadStateDict(sd);
      expect(fresh.paramGroups.map((g) => g.lr)).toEqual(opt.paramGroups.map((g) => g.lr));

      trainStep(opt, p, 'float64');
      trainStep(fresh, q, 'float64');
      for (const n of fx.paramNames) {
        expect(Array.from(q[n]!.toTypedArray()), n).toEqual(Array.from(p[n]!.toTypedArray()));
        expectClose(q[n]!, c.steps[2]!.params[n]!, 'float64', `${name} resumed ${n}`);
      }
      // The dict was a snapshot: the steps after it did not change it.
      expect(JSON.stringify(sd.state, (_k, v) => (v && typeof v === 'object' && 'toTypedArray' in v ? Array.from((v as Tensor).toTypedArray()) : v))).toBe(snapshot);
    });

  it('loads a float64 state into a float32 optimizer, converting the tensors', () => {
    const c = pick('adam_wd');
    const p = makeParams('float64');
    const opt = build(c, p);
    trainStep(opt, p, 'float64');
    const q = makeParams('float32');
    const o32 = build(c, q);
    o32.loadStateDict(opt.stateDict());
    const s = o32.state.get(q.w1!)!;
    expect((s.exp_avg as Tensor).dtype).toBe('float32');
    expect(s.step).toBe(1);
  });

  it('accepts PyTorch 1.13\'s 0-d tensor step', () => {
    const w = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const opt = new Adam([w]);
    opt.loadStateDict({
      state: { 0: { step: tensor(4), exp_avg: tensor([0.1, 0.2], { dtype: 'float64' }), exp_avg_sq: tensor([0.01, 0.04], { dtype: 'float64' }) } },
      param_groups: [{ lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false, maximize: false, params: [0] }],
    } as unknown as OptimizerStateDict);
    expect(opt.state.get(w)!.step).toBe(4);
    expect(opt.paramGroups[0]!.lr).toBe(0.1);
    // One step from there, by hand: m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, t = 5.
    w.grad = tensor([1, -1], { dtype: 'float64' });
    opt.step();
    const m = [0.9 * 0.1 + 0.1, 0.9 * 0.2 - 0.1];
    const v = [0.999 * 0.01 + 0.001, 0.999 * 0.04 + 0.001];
    const expected = [1, 2].map((x, i) => x - (0.1 / (1 - 0.9 ** 5)) * m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** 5) + 1e-8));
    Array.from(w.toTypedArray()).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 14));
  });

  it('rejects a state dict that does not fit, naming what differs', () => {
    const c = pick('sgd_two_groups');
    const p = makeParams('float64');
    const opt = build(c, p);
    trainStep(opt, p, 'float64');
    const sd = opt.stateDict();
    const one = new SGD(Object.values(makeParams('float64')), { lr: 0.1, momentum: 0.9 });
    expect(() => one.loadStateDict(sd)).toThrow(/2 parameter groups, the optimizer has 1/);
    const q = makeParams('float64');
    const sizes = new SGD([{ params: [q.w1!, q.b1!] }, { params: [q.w2!, q.b2!, q.unused!] }], { lr: 0.1, momentum: 0.9 });
    expect(() => sizes.loadStateDict(sd)).toThrow(/param group 0 has 3 parameters in the state dict and 2/);
    const r = makeParams('float64');
    const swapped = new SGD([{ params: [r.b1!, r.w1!, r.unused!] }, { params: [r.w2!, r.b2!] }], { lr: 0.1, momentum: 0.9 });
    expect(() => swapped.loadStateDict(sd)).toThrow(/state\[0\]\.momentum_buffer has shape \[5, 3\] but the parameter has \[5\]/);
    const s = makeParams('float64');
    const same = build(c, s);
    const bad = { ...sd, param_groups: sd.param_groups.map((g) => ({ ...g, lr: -1 })) };
    expect(() => same.loadStateDict(bad)).toThrow(/SGD.loadStateDict: param group 0: invalid lr -1/);
    expect(same.paramGroups[0]!.lr).toBe(0.1); // nothing was changed
    expect(() => same.loadStateDict({ ...sd, state: { 9: {} } })).toThrow(/state for parameter index 9/);
  });
});

describe('param groups and steps', () => {
  it('group options override the defaults; parameters without grad are skipped', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const b = tensor([3], { dtype: 'float64', requiresGrad: true });
    const c = tensor([5], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([{ params: [a] }, { params: [b, c], lr: 0.5 }], { lr: 0.1, weightDecay: 0.5 });
    expect(opt.paramGroups[1]!.weightDecay).toBe(0.5);
    a.grad = tensor([1, -1], { dtype: 'float64' });
    b.grad = tensor([2], { dtype: 'float64' });
    opt.step();
    // a -= 0.1 (g + 0.5 a); b -= 0.5 (g + 0.5 b); c has no grad.
    expect(Array.from(a.toTypedArray())).toEqual([1 - 0.1 * 1.5, 2 - 0.1 * 0]);
    expect(Array.from(b.toTypedArray())).toEqual([3 - 0.5 * 3.5]);
    expect(Array.from(c.toTypedArray())).toEqual([5]);
  });

  it('addParamGroup: a later group takes the defaults and is stepped', () => {
    const a = tensor([1], { dtype: 'float64', requiresGrad: true });
    const b = tensor([1], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([a], { lr: 0.25, momentum: 0.5 });
    opt.addParamGroup({ params: b, lr: 1 });
    expect(opt.paramGroups[1]!.momentum).toBe(0.5);
    for (let i = 0; i < 2; i++) {
      a.grad = tensor([1], { dtype: 'float64' });
      b.grad = tensor([1], { dtype: 'float64' });
      opt.step();
    }
    // buf: 1 then 1.5; a = 1 - 0.25 (1 + 1.5), b = 1 - (1 + 1.5).
    expect(a.item()).toBe(1 - 0.25 * 2.5);
    expect(b.item()).toBe(-1.5);
    expect(() => opt.addParamGroup({ params: [a] })).toThrow(/param group 2: some parameters appear in more than one parameter group/);
  });

  it('zeroGrad clears to null or to zeros; step(closure) returns the closure\'s loss', () => {
    const w = tensor([2, -1], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([w], { lr: 0.1 });
    const loss = opt.step(() => { const l = w.mul(w).sum(); l.backward(); return l; });
    expect(loss!.item()).toBe(5);
    expect(Array.from(w.toTypedArray())).toEqual([2 - 0.1 * 4, -1 + 0.1 * 2]);
    opt.zeroGrad(false);
    expect(Array.from(w.grad!.toTypedArray())).toEqual([0, 0]);
    opt.zeroGrad();
    expect(w.grad).toBeNull();
    expect(opt.step()).toBeUndefined();
  });
});

describe('bad hyperparameters name the argument', () => {
  const w = () => [tensor([1], { requiresGrad: true })];
  it.each([
    ['SGD lr', () => new SGD(w(), { lr: -0.1 }), /SGD: invalid lr -0\.1/],
    ['SGD unknown option', () => new SGD(w(), { lr: 0.1, nesterow: true } as never), /SGD: unknown option nesterow/],
    ['Adam unknown option', () => new Adam(w(), { decoupled: true } as never), /Adam: unknown option decoupled/],
    ['SGD momentum', () => new SGD(w(), { lr: 0.1, momentum: -1 }), /invalid momentum -1/],
    ['SGD weightDecay', () => new SGD(w(), { lr: 0.1, weightDecay: -1e-4 }), /invalid weightDecay/],
    ['SGD nesterov', () => new SGD(w(), { lr: 0.1, nesterov: true }), /nesterov requires momentum > 0 and dampening 0/],
    ['SGD nesterov dampening', () => new SGD(w(), { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /nesterov/],
    ['SGD group lr', () => new SGD([{ params: w() }, { params: w(), lr: -2 }], { lr: 0.1 }), /SGD: param group 1: invalid lr -2/],
    ['Adam lr', () => new Adam(w(), { lr: -1e-3 }), /Adam: invalid lr/],
    ['Adam betas[0]', () => new Adam(w(), { betas: [1, 0.999] }), /invalid betas\[0\] 1: must be in \[0, 1\)/],
    ['Adam betas[1]', () => new Adam(w(), { betas: [0.9, -0.1] }), /invalid betas\[1\] -0\.1/],
    ['Adam betas pair', () => new Adam(w(), { betas: [0.9] as never }), /invalid betas/],
    ['Adam eps', () => new Adam(w(), { eps: -1 }), /invalid eps -1/],
    ['AdamW weightDecay', () => new AdamW(w(), { weightDecay: -0.01 }), /AdamW: invalid weightDecay -0\.01/],
    ['AdamW amsgrad', () => new AdamW(w(), { amsgrad: 1 as never }), /invalid amsgrad/],
    ['empty', () => new Adam([]), /Adam: got an empty parameter list/],
    ['non-leaf', () => new SGD([tensor([1], { requiresGrad: true }).mul(2)], { lr: 1 }), /params\[0\] \(\[1\]\) is not a leaf/],
    ['integer', () => new SGD([tensor([1], { dtype: 'int64' })], { lr: 1 }), /dtype int64/],
    ['duplicate', () => { const p = w(); return new SGD([...p, ...p], { lr: 1 }); }, /appears twice/],
  ])('%s', (_name, make, message) => {
    expect(make).toThrow(message);
  });

  it('the defaults are right', () => {
    const adam = new Adam(w());
    expect(adam.paramGroups[0]).toMatchObject({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false });
    expect(new AdamW(w()).paramGroups[0]).toMatchObject({ lr: 1e-3, weightDecay: 0.01 });
    expect(new SGD(w(), { lr: 1 }).paramGroups[0])
      .toMatchObject({ momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false });
  });
});

describe('state dicts saved before an option existed', () => {
  it("an AdamW group saved without decoupled_weight_decay takes AdamW's default (true) when loaded", () => {
    const w = zeros([2], { requiresGrad: true });
    const sd = new AdamW([{ params: [w], decoupledWeightDecay: false }]).stateDict();
    delete sd.param_groups[0]!.decoupled_weight_decay;
    const opt = new AdamW([w]);
    opt.loadStateDict(sd);
    expect(opt.paramGroups[0]!.decoupledWeightDecay).toBe(true);
  });
});

describe('named parameters, as PyTorch 2', () => {
  it("takes namedParameters() pairs and saves their names as param_names; groups are all named or all not", () => {
    const [w, b] = [zeros([2], { requiresGrad: true }), zeros([1], { requiresGrad: true })];
    const opt = new SGD([['weight', w], ['bias', b]], { lr: 0.1 });
    expect(opt.paramGroups[0]!.params).toEqual([w, b]);
    // torch: state_dict()['param_groups'][0]['param_names'] == ['weight', 'bias'].
    expect(opt.stateDict().param_groups[0]!.param_names).toEqual(['weight', 'bias']);
    expect(() => opt.addParamGroup({ params: [zeros([1], { requiresGrad: true })] })).toThrow(
      'all param groups must be given with names or all without');
    expect(() => new SGD([['a', w], b] as never, { lr: 0.1 })).toThrow('give every parameter as a tensor or every one as a [name, tensor] pair');
  });
});
