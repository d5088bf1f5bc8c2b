/**
 * LR schedulers against PyTorch: get_last_lr() after construction and after each of 30 steps,
 * for StepLR, MultiStepLR (a milestone listed twice), CosineAnnealingLR (past tMax too),
 * LinearLR and SequentialLR (warm-up then cosine; three schedulers; warm-up then multistep),
 * with two param groups of base lr 0.1 and 0.01. Written by scripts/fixtures/make_optim_fixtures.py.
 * Also: the state dict equals PyTorch's, and save/load in the middle continues the same sequence.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { zeros } from '@nodegrad/autograd';
import {
  CosineAnnealingLR, LinearLR, MultiStepLR, SequentialLR, SGD, StepLR, type LRScheduler, type Scheduler,
} from '@nodegrad/nn';

interface Spec {
  kind: 'StepLR' | 'MultiStepLR' | 'CosineAnnealingLR' | 'LinearLR' | 'SequentialLR';
  stepSize?: number; gamma?: number; milestones?: number[]; tMax?: number; etaMin?: number;
  startFactor?: number; endFactor?: number; totalIters?: number; schedulers?: Spec[];
}
interface SchedCase { name: string; scheduler: Spec; lastLr: number[][]; groupLr: number[][]; stateDict: Record<string, unknown> }
interface ResumeCase { name: string; lastEpoch: number; groupLr: number[]; lastLr: number[][] }
interface SchedFixture { torch: string; baseLrs: number[]; steps: number; cases: SchedCase[]; resumes: ResumeCase[] }

const fx = JSON.parse(readFileSync(new URL('./fixtures/optim_lr_schedulers.json', import.meta.url), 'utf8')) as SchedFixture;

function makeOptimizer(lrs = fx.baseLrs): SGD {
  return new SGD(lrs.map((lr, i) => ({ params: [zeros([i + 2], { requiresGrad: true })], lr })), { lr: 1 });
}

function build(opt: SGD, s: Spec, lastEpoch = -1): Scheduler {
  switch (s.kind) {
    case 'StepLR': return new StepLR(opt, s.stepSize!, { gamma: s.gamma, lastEpoch });
    case 'MultiStepLR': return new MultiStepLR(opt, s.milestones!, { gamma: s.gamma, lastEpoch });
    case 'CosineAnnealingLR': return new CosineAnnealingLR(opt, s.tMax!, { etaMin: s.etaMin, lastEpoch });
    case 'LinearLR':
      return new LinearLR(opt, { startFactor: s.startFactor, endFactor: s.endFactor, totalIters: s.totalIters, lastEpoch });
    case 'SequentialLR': return new SequentialLR(opt, s.schedulers!.map((sub) => build(opt, sub) as LRScheduler), s.milestones!);
  }
}

/** Relative 1e-12: the same double arithmetic as PyTorch, up to the last bits of a pow or cos. */
function expectLrs(actual: number[], expected: number[], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((a, i) => {
    if (!(Math.abs(a - expected[i]!) <= 1e-12 * Math.abs(expected[i]!) + 1e-18)) {
      throw new Error(`${what}, group ${i}: lr ${a}, PyTorch gives ${expected[i]}`);
    }
  });
}

/** Numbers within 1e-12 relative, everything else equal. */
function expectDeepClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, path).toBe('number');
    expect(Math.abs((actual as number) - expected) <= 1e-12 * Math.abs(expected) + 1e-18, `${path}: ${actual} vs ${expected}`).toBe(true);
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual) && actual.length === expected.length, path).toBe(true);
    expected.forEach((e, i) => expectDeepClose((actual as unknown[])[i], e, `${path}[${i}]`));
  } else if (expected && typeof expected === 'object') {
    expect(Object.keys(actual as object).sort(), `${path} keys`).toEqual(Object.keys(expected).sort());
    for (const [k, e] of Object.entries(expected)) expectDeepClose((actual as Record<string, unknown>)[k], e, `${path}.${k}`);
  } else {
    expect(actual, path).toEqual(expected);
  }
}

const cases = fx.cases.map((c) => [c.name, c] as const);

describe('fixture file', () => {
  it('records the torch version and 31 lrs per case', () => {
    expect(fx.torch).toMatch(/^\d+\.\d+/);
    expect(fx.cases.length).toBe(11);
    for (const c of fx.cases) expect(c.lastLr.length).toBe(fx.steps + 1);
  });
  it('the check rejects an lr off in the 11th digit', () => {
    const e = fx.cases[3]!.lastLr[7]!;
    expect(() => expectLrs(e, e, 'same')).not.toThrow();
    expect(() => expectLrs([e[0]! * (1 + 1e-11), e[1]!], e, 'off')).toThrow(/group 0/);
  });
});

describe('PyTorch\'s lr sequences', () => {
  it.each(cases)('%s: getLastLr() and the groups\' lr over 30 steps', (_name, c) => {
    const opt = makeOptimizer();
    const sched = build(opt, c.scheduler);
    expectLrs(sched.getLastLr(), c.lastLr[0]!, 'after construction');
    expectLrs(opt.paramGroups.map((g) => g.lr), c.groupLr[0]!, 'group lr after construction');
    for (let k = 1; k <= fx.steps; k++) {
      opt.step();
      sched.step();
      expectLrs(sched.getLastLr(), c.lastLr[k]!, `step ${k}`);
      expectLrs(opt.paramGroups.map((g) => g.lr), c.groupLr[k]!, `group lr at step ${k}`);
    }
    expect(opt.paramGroups.map((g) => g.initialLr)).toEqual(fx.baseLrs);
  });

  it.each(cases)('%s: stateDict after 30 steps equals PyTorch\'s', (_name, c) => {
    const opt = makeOptimizer();
    const sched = build(opt, c.scheduler);
    for (let k = 0; k < fx.steps; k++) sched.step();
    expectDeepClose(sched.stateDict(), c.stateDict, 'stateDict');
  });

  it.each(cases)('%s: save at step 12, load into fresh objects (via JSON), continue: the same sequence', (_name, c) => {
    const opt = makeOptimizer();
    const sched = build(opt, c.scheduler);
    for (let k = 0; k < 12; k++) sched.step();
    const optState = opt.stateDict();
    const schedState = JSON.parse(JSON.stringify(sched.stateDict())) as Record<string, unknown>;

    const fresh = makeOptimizer([0.7, 0.3]);
    const freshSched = build(fresh, c.scheduler);
    fresh.loadStateDict(optState);
    freshSched.loadStateDict(schedState);
    expectLrs(freshSched.getLastLr(), c.lastLr[12]!, 'after loading');
    for (let k = 13; k <= fx.steps; k++) {
      freshSched.step();
      expectLrs(freshSched.getLastLr(), c.lastLr[k]!, `resumed step ${k}`);
    }
  });
});

describe('resuming with lastEpoch', () => {
  it('needs initialLr in every group', () => {
    expect(() => new StepLR(makeOptimizer(), 3, { lastEpoch: 4 })).toThrow(/StepLR: param group 0 has no initialLr/);
  });
  // PyTorch 2: the constructor's step leaves a LinearLR's or CosineAnnealingLR's lr as the groups
  // hold it (initial mode), so the schedule continues from there; StepLR and MultiStepLR step.
  it.each(fx.resumes.map((r) => [`${r.name} at lastEpoch ${r.lastEpoch}`, r] as const))('%s: 10 steps as PyTorch', (_name, r) => {
    const opt = makeOptimizer(r.groupLr);
    opt.paramGroups.forEach((g, i) => { g.initialLr = fx.baseLrs[i]; });
    const sched = build(opt, fx.cases.find((c) => c.name === r.name)!.scheduler, r.lastEpoch);
    expectLrs(sched.getLastLr(), r.lastLr[0]!, 'after construction');
    for (let k = 1; k < r.lastLr.length; k++) {
      sched.step();
      expectLrs(sched.getLastLr(), r.lastLr[k]!, `step ${k}`);
    }
  });
});

describe('bad arguments name the argument', () => {
  const opt = () => makeOptimizer();
  it.each([
    ['StepLR stepSize', () => new StepLR(opt(), 0), /StepLR: invalid stepSize 0/],
    ['StepLR gamma', () => new StepLR(opt(), 2, { gamma: NaN }), /StepLR: invalid gamma NaN/],
    ['MultiStepLR milestone', () => new MultiStepLR(opt(), [3, -1]), /MultiStepLR: invalid milestone -1/],
    ['CosineAnnealingLR tMax', () => new CosineAnnealingLR(opt(), 0), /CosineAnnealingLR: invalid tMax 0/],
    ['LinearLR startFactor', () => new LinearLR(opt(), { startFactor: 1.5 }), /LinearLR: invalid startFactor 1.5/],
    ['LinearLR startFactor 0', () => new LinearLR(opt(), { startFactor: 0 }), /invalid startFactor 0/],
    ['LinearLR endFactor', () => new LinearLR(opt(), { endFactor: -0.5 }), /LinearLR: invalid endFactor -0.5/],
    ['LinearLR totalIters', () => new LinearLR(opt(), { totalIters: 2.5 }), /LinearLR: invalid totalIters 2.5/],
    ['lastEpoch', () => new StepLR(opt(), 2, { lastEpoch: -3 }), /StepLR: invalid lastEpoch -3/],
  ])('%s', (_name, make, message) => {
    expect(make).toThrow(message);
  });

  it('SequentialLR: milestones count and order, one optimizer', () => {
    const o = opt();
    const a = new LinearLR(o);
    const b = new StepLR(o, 3);
    expect(() => new SequentialLR(o, [a, b], [])).toThrow(/expected 1 milestones .* got 0/);
    expect(() => new SequentialLR(o, [a, b, new StepLR(o, 2)], [5, 3])).toThrow(/invalid milestones \[5,3\]/);
    expect(() => new SequentialLR(o, [a, new StepLR(opt(), 2)], [4])).toThrow(/schedulers\[1\] drives a different optimizer/);
  });

  it('loadStateDict checks what it loads', () => {
    const o = opt();
    const s = new StepLR(o, 3);
    const good = s.stateDict();
    expect(() => s.loadStateDict({ ...good, base_lrs: [0.1] })).toThrow(/StepLR.loadStateDict: 'base_lrs' must be a list of 2 numbers/);
    expect(() => s.loadStateDict({ ...good, step_size: 0 })).toThrow(/invalid step_size 0/);
    expect(() => s.loadStateDict({ ...good, last_epoch: 'x' })).toThrow(/'last_epoch' must be an integer/);
    const seq = new SequentialLR(o, [new LinearLR(o), new StepLR(o, 2)], [3]);
    expect(() => seq.loadStateDict({ ...seq.stateDict(), _milestones: [4] })).toThrow(/'_milestones' \[4\] differ/);
  });
});
