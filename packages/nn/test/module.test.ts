/**
 * Module: registration and dotted names through nested containers, buffers, children/modules,
 * train/eval, zeroGrad, freezing, apply, to(dtype/device), forward hooks, stateDict order (checked
 * against the keys PyTorch writes for the same model, fixtures/nn_layers.json) and loadStateDict's
 * strict and non-strict behaviour, including dtype conversion of checkpoints.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { add, manualSeed, mul, noGrad, randn, sum, tensor, zeros, type Tensor } from '@nodegrad/autograd';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, Module, ReLU, Sequential,
} from '@nodegrad/nn';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/nn_layers.json', import.meta.url), 'utf8')) as {
  stateDictKeys: string[];
  reprs: [string, string][];
};

/** The model whose state_dict keys fixtures/nn_layers.json records from PyTorch. */
function torchOrderModel(): Sequential {
  return new Sequential(
    new Conv2d(3, 4, 3), new BatchNorm2d(4), new ReLU(),
    new Sequential(new Conv2d(4, 4, 1, { bias: false }), new BatchNorm2d(4)),
    new Flatten(), new Linear(4, 2));
}

class Block extends Module {
  declare conv1: Conv2d;
  declare bn1: BatchNorm2d;
  constructor(c: number) {
    super();
    this.registerModule('conv1', new Conv2d(c, c, 3, { padding: 1, bias: false }));
    this.registerModule('bn1', new BatchNorm2d(c));
  }
  override forward(x: Tensor): Tensor {
    return add(x, this.bn1.call(this.conv1.call(x))).relu();
  }
}

/** A tiny torchvision-shaped net: conv1, layer1 (a Sequential of blocks), avgpool, fc. */
class Net extends Module {
  declare conv1: Conv2d;
  declare layer1: Sequential;
  declare avgpool: AdaptiveAvgPool2d;
  declare fc: Linear;
  constructor() {
    super();
    this.registerModule('conv1', new Conv2d(2, 3, 3, { padding: 1 }));
    this.registerModule('layer1', new Sequential(new Block(3), new Block(3)));
    this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.registerModule('fc', new Linear(3, 2));
  }
  override forward(x: Tensor): Tensor {
    return this.fc.call(this.avgpool.call(this.layer1.call(this.conv1.call(x))).flatten(1));
  }
}

const values = (t: Tensor) => Array.from(t.toTypedArray());

describe('Module registration and names', () => {
  it('names parameters with dotted paths through nested Sequential, in registration order', () => {
    const m = torchOrderModel();
    expect(m.namedParameters().map(([n]) => n)).toEqual(
      ['0.weight', '0.bias', '1.weight', '1.bias', '3.0.weight', '3.1.weight', '3.1.bias', '5.weight', '5.bias']);
    expect(m.parameters().map((p) => p.shape)).toEqual(
      [[4, 3, 3, 3], [4], [4], [4], [4, 4, 1, 1], [4], [4], [2, 4], [2]]);
    expect(m.parameters().every((p) => p.requiresGrad && p.isLeaf)).toBe(true);
    expect(m.namedParameters(false)).toEqual([]);
  });

  it('names a custom module tree as torchvision does (layer1.0.conv1.weight)', () => {
    const names = new Net().namedParameters().map(([n]) => n);
    expect(names).toEqual(['conv1.weight', 'conv1.bias',
      'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias',
      'layer1.1.conv1.weight', 'layer1.1.bn1.weight', 'layer1.1.bn1.bias',
      'fc.weight', 'fc.bias']);
  });

  it('lists buffers with names, counters as int64 scalars', () => {
    const m = torchOrderModel();
    const bufs = m.namedBuffers();
    expect(bufs.map(([n]) => n)).toEqual(['1.running_mean', '1.running_var', '1.num_batches_tracked',
      '3.1.running_mean', '3.1.running_var', '3.1.num_batches_tracked']);
    expect(m.buffers()).toHaveLength(6);
    const nbt = bufs[2]![1];
    expect([nbt.dtype, nbt.shape, nbt.item()]).toEqual(['int64', [], 0]);
    expect(bufs.every(([, t]) => !t.requiresGrad)).toBe(true);
  });

  it('gives children and a depth-first modules() with dotted names', () => {
    const m = torchOrderModel();
    const kids = m.children();
    expect(kids.map((k) => k.constructor.name)).toEqual(['Conv2d', 'BatchNorm2d', 'ReLU', 'Sequential', 'Flatten', 'Linear']);
    expect(kids[3]).toBe(m.at(3));
    expect([...m.namedModules()].map(([n, mod]) => `${n}:${mod.constructor.name}`)).toEqual([
      ':Sequential', '0:Conv2d', '1:BatchNorm2d', '2:ReLU', '3:Sequential', '3.0:Conv2d', '3.1:BatchNorm2d',
      '4:Flatten', '5:Linear']);
    expect(m.modules()[0]).toBe(m);
  });

  it('lists a shared parameter once but keeps both keys in stateDict, as PyTorch', () => {
    const a = new Linear(3, 3), b = new Linear(3, 3);
    b.weight = a.weight;
    const m = new Sequential(a, b);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.bias']);
    expect(Object.keys(m.stateDict())).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
  });

  it('shows a replaced child (model.fc = new Linear) in namedParameters and stateDict', () => {
    const net = new Net();
    const oldFc = net.fc;
    net.fc = new Linear(3, 5);
    expect(net.fc).not.toBe(oldFc);
    const params = Object.fromEntries(net.namedParameters());
    expect(params['fc.weight']!.shape).toEqual([5, 3]);
    expect(params['fc.weight']).toBe(net.fc.weight);
    expect(net.stateDict()['fc.bias']!.shape).toEqual([5]);
    expect(net.call(randn([1, 2, 4, 4])).shape).toEqual([1, 5]);
    expect(() => { (net as any).fc = 3; }).toThrow(/registerModule: 'fc' must be a Module/);
  });

  it('refuses a non-leaf parameter and a name registered as another kind', () => {
    const m = new Identity();
    const x = randn([2], { requiresGrad: true });
    expect(() => m.registerParameter('w', mul(x, 2))).toThrow(/'w' must be a leaf tensor/);
    m.registerBuffer('b', zeros([1]));
    expect(() => m.registerParameter('b', zeros([1]))).toThrow(/'b' is already registered/);
  });

  it('prints the architecture as PyTorch does', () => {
    const m = new Sequential(new Conv2d(3, 8, 3, { padding: 1, bias: false }), new BatchNorm2d(8), new ReLU(),
      new Sequential(new Flatten(), new Linear(8, 2)));
    expect(m.toString()).toBe(fixture.reprs.find(([k]) => k === 'sequential')![1]);
  });
});

describe('Module.call types', () => {
  it("is typed as the module's forward: its arguments, and its result (checked by npm run typecheck)", () => {
    const lin = new Linear(3, 2);
    const y: Tensor = lin.call(randn([4, 3]));
    expect(y.shape).toEqual([4, 2]);
    // @ts-expect-error Linear.forward takes a Tensor, not a number
    expect(() => lin.call(3)).toThrow();
    // A plain Module's forward is untyped, so its call is too.
    const anyModule: Module = lin;
    expect((anyModule.call(randn([1, 3])) as Tensor).shape).toEqual([1, 2]);
  });
});

describe('Module modes and gradients', () => {
  it('propagates train()/eval() to every descendant and changes Dropout and BatchNorm behaviour', () => {
    manualSeed(1);
    const drop = new Dropout(0.5);
    const bn = new BatchNorm2d(2);
    const m = new Sequential(new Sequential(drop), bn);
    expect(m.modules().every((x) => x.training)).toBe(true);
    const x = add(randn([4, 2, 3, 3]), 3);
    m.eval();
    expect(m.modules().every((x) => !x.training)).toBe(true);
    // Eval: dropout is the identity and BN uses running stats (mean 0, var 1): y = x / sqrt(1 + eps).
    const y = m.call(x);
    const xs = values(x);
    values(y).forEach((v, i) => expect(v).toBeCloseTo(xs[i]! / Math.sqrt(1 + 1e-5), 5));
    expect(bn.num_batches_tracked!.item()).toBe(0);
    m.train();
    expect(m.modules().every((x) => x.training)).toBe(true);
    expect(values(drop.call(x)).some((v) => v === 0)).toBe(true);
    m.train(false);
    expect(drop.training).toBe(false);
  });

  it('zeroGrad clears gradients to null, or to zeros with setToNone false', () => {
    const m = new Linear(3, 2);
    sum(m.call(randn([4, 3]))).backward();
    expect(m.weight.grad).not.toBeNull();
    m.zeroGrad(false);
    expect(values(m.weight.grad!)).toEqual(new Array(6).fill(0));
    expect(values(m.bias!.grad!)).toEqual([0, 0]);
    m.zeroGrad();
    expect(m.weight.grad).toBeNull();
    expect(m.bias!.grad).toBeNull();
  });

  it('requiresGrad_(false) freezes a backbone: no .grad after backward, the head still trains', () => {
    const net = new Net();
    net.requiresGrad_(false);
    net.fc.requiresGrad_(true);
    sum(net.call(randn([2, 2, 4, 4]))).backward();
    for (const [name, p] of net.namedParameters()) {
      if (name.startsWith('fc.')) expect(p.grad, name).not.toBeNull();
      else expect(p.grad, name).toBeNull();
    }
    expect(net.conv1.weight.requiresGrad).toBe(false);
    net.requiresGrad_();
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
  });

  it('apply(fn) visits children before their parent (PyTorch order) and can initialize', () => {
    const inner = new Sequential(new ReLU(), new Linear(2, 2));
    const m = new Sequential(new Linear(2, 2), inner);
    const seen: Module[] = [];
    m.apply((mod) => seen.push(mod));
    expect(seen).toEqual([m.at(0), inner.at(0), inner.at(1), inner, m]);
    m.apply((mod) => { if (mod instanceof Linear) noGrad(() => mod.weight.fill_(0.5)); });
    expect(values((inner.at(1) as Linear).weight)).toEqual([0.5, 0.5, 0.5, 0.5]);
  });
});

describe('Module.to', () => {
  it("to('float64') converts float parameters and buffers, keeps int64 counters, keeps values and flags", () => {
    const m = torchOrderModel();
    const before = m.stateDict();
    const frozen = (m.at(5) as Linear).bias!;
    frozen.requiresGrad = false;
    m.to('float64');
    const after = m.stateDict();
    for (const [k, t] of Object.entries(after)) {
      expect(t.dtype, k).toBe(k.endsWith('num_batches_tracked') ? 'int64' : 'float64');
      expect(values(t), k).toEqual(values(before[k]!));
    }
    expect((m.at(0) as Conv2d).weight.requiresGrad).toBe(true);
    expect((m.at(0) as Conv2d).weight.isLeaf).toBe(true);
    expect((m.at(5) as Linear).bias!.requiresGrad).toBe(false);
    // The layers read their (replaced) tensors through the registered names, so forward runs in float64.
    const y = m.call(randn([2, 3, 3, 3], { dtype: 'float64' }));
    expect(y.dtype).toBe('float64');
    expect((m.at(1) as BatchNorm2d).num_batches_tracked!.item()).toBe(1);
  });

  it("to('ts') moves to the device and keeps values", () => {
    const m = new Net();
    const before = m.stateDict();
    m.to('ts');
    for (const [k, t] of Object.entries(m.stateDict())) {
      expect(t.device).toBe('ts');
      expect(values(t), k).toEqual(values(before[k]!));
    }
  });
});

describe('Module hooks', () => {
  it('forward hooks see inputs and output, may replace the output, and can be removed', () => {
    const m = new Linear(2, 2);
    const x = randn([1, 2]);
    const seen: unknown[][] = [];
    const removeSpy = m.registerForwardHook((mod, inputs, out) => { seen.push([mod, inputs[0], out]); });
    const removeDouble = m.registerForwardHook((_m, _i, out) => mul(out as Tensor, 2));
    const plain = m.forward(x);
    const y = m.call(x);
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toBe(m);
    expect(seen[0]![1]).toBe(x);
    expect(values(seen[0]![2] as Tensor)).toEqual(values(plain));
    expect(values(y)).toEqual(values(plain).map((v) => v * 2));
    removeDouble();
    expect(values(m.call(x))).toEqual(values(plain));
    expect(seen).toHaveLength(2);
    removeSpy();
    removeSpy();
    m.call(x);
    expect(seen).toHaveLength(2);
  });

  it('forward pre-hooks may replace the inputs and can be removed', () => {
    const m = new Identity();
    const x = tensor([1, 2, 3]);
    const remove = m.registerForwardPreHook((_m, [inp]) => [mul(inp as Tensor, 10)]);
    const kept = m.registerForwardPreHook(() => undefined);
    expect(values(m.call(x))).toEqual([10, 20, 30]);
    remove();
    expect(m.call(x)).toBe(x);
    kept();
  });

  it("a child's hooks run when the parent is called", () => {
    const m = new Sequential(new Linear(2, 2), new ReLU());
    const calls: string[] = [];
    m.at(0).registerForwardPreHook(() => { calls.push('pre0'); });
    m.at(1).registerForwardHook(() => { calls.push('post1'); });
    m.call(randn([1, 2]));
    expect(calls).toEqual(['pre0', 'post1']);
  });
});

describe('stateDict and loadStateDict', () => {
  it("orders keys as torch's state_dict: each module's parameters, then its buffers", () => {
    expect(Object.keys(torchOrderModel().stateDict())).toEqual(fixture.stateDictKeys);
  });

  it('leaves out missing tensors and non-persistent buffers', () => {
    const bn = new BatchNorm2d(3, { affine: false, trackRunningStats: false });
    expect(Object.keys(bn.stateDict())).toEqual([]);
    const m = new Identity();
    m.registerBuffer('scratch', zeros([2]), { persistent: false });
    m.registerBuffer('kept', zeros([2]));
    expect(Object.keys(m.stateDict())).toEqual(['kept']);
    expect(m.buffers()).toHaveLength(2);
  });

  it('round-trips: a second model loads the first one exactly, in place', () => {
    manualSeed(5);
    const a = torchOrderModel();
    a.call(randn([2, 3, 3, 3]));
    const b = torchOrderModel();
    const target = (b.at(0) as Conv2d).weight;
    expect(b.loadStateDict(a.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect((b.at(0) as Conv2d).weight).toBe(target);
    for (const [k, t] of Object.entries(b.stateDict())) expect(values(t), k).toEqual(values(a.stateDict()[k]!));
    expect((b.at(1) as BatchNorm2d).num_batches_tracked!.item()).toBe(1);
  });

  it('strict: one error names every missing, unexpected and shape-mismatched key; nothing is copied', () => {
    const m = torchOrderModel();
    const dict = { ...torchOrderModel().stateDict() };
    delete dict['5.bias'];
    delete dict['1.running_var'];
    dict['extra.weight'] = zeros([1]);
    dict['0.weight'] = zeros([4, 3, 5, 5]);
    const before = values((m.at(0) as Conv2d).bias!);
    let msg = '';
    try { m.loadStateDict(dict); } catch (e) { msg = (e as Error).message; }
    expect(msg).toMatch(/2 missing keys: 1\.running_var, 5\.bias/);
    expect(msg).toMatch(/1 unexpected keys: extra\.weight/);
    expect(msg).toMatch(/1 size mismatches: 0\.weight \(checkpoint has \[4, 3, 5, 5\], the module has \[4, 3, 3, 3\]\)/);
    expect(values((m.at(0) as Conv2d).bias!)).toEqual(before);
  });

  it('a dict without num_batches_tracked loads, the counter kept, as PyTorch for a dict without version metadata', () => {
    // torch: bn.num_batches_tracked = 7; bn.load_state_dict(sd without it) -> all keys matched, counter still 7.
    const m = torchOrderModel();
    const bn = m.at(1) as BatchNorm2d;
    bn.num_batches_tracked!.fill_(7);
    const dict = { ...torchOrderModel().stateDict() };
    delete dict['1.num_batches_tracked'];
    expect(m.loadStateDict(dict)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(bn.num_batches_tracked!.item()).toBe(7);
  });

  it('non-strict: returns the missing and unexpected keys and loads the rest; a size mismatch still throws', () => {
    const m = torchOrderModel();
    const src = torchOrderModel();
    const dict: Record<string, Tensor> = { ...src.stateDict(), 'head.weight': zeros([2]) };
    delete dict['5.weight'];
    const w5 = values((m.at(5) as Linear).weight);
    const res = m.loadStateDict(dict, { strict: false });
    expect(res).toEqual({ missingKeys: ['5.weight'], unexpectedKeys: ['head.weight'] });
    expect(values((m.at(0) as Conv2d).weight)).toEqual(values((src.at(0) as Conv2d).weight));
    expect(values((m.at(5) as Linear).weight)).toEqual(w5);
    expect(() => m.loadStateDict({ '5.bias': zeros([3]) }, { strict: false })).toThrow(/size mismatches: 5\.bias/);
  });

  it('a wrong architecture gives a readable error: counts, the first 10 keys of each kind, and how many more', () => {
    const big: Record<string, Tensor> = {};
    for (let i = 0; i < 300; i++) big[`layer.${i}.weight`] = zeros([1]);
    let msg = '';
    try { torchOrderModel().loadStateDict(big); } catch (e) { msg = (e as Error).message; }
    expect(msg).toMatch(/300 unexpected keys: layer\.0\.weight, .*layer\.9\.weight and 290 more/);
    expect(msg.length).toBeLessThan(1000);
  });

  it('loads float64 values and an int64 counter into a float32 module, converting to its dtypes', () => {
    const m = torchOrderModel();
    const src = torchOrderModel().to('float64');
    noGrad(() => (src.at(5) as Linear).weight.copy_(tensor([[0.1, 0.2, 0.3, 0.4], [1 / 3, -1 / 7, 1e-9, 2]], { dtype: 'float64' })));
    const dict = { ...src.stateDict(), '1.num_batches_tracked': tensor(7, { dtype: 'int64' }) };
    m.loadStateDict(dict);
    const w = (m.at(5) as Linear).weight;
    expect(w.dtype).toBe('float32');
    expect(Array.from(w.toTypedArray())).toEqual(Array.from(Float32Array.from([0.1, 0.2, 0.3, 0.4, 1 / 3, -1 / 7, 1e-9, 2])));
    const nbt = (m.at(1) as BatchNorm2d).num_batches_tracked!;
    expect([nbt.dtype, nbt.item()]).toEqual(['int64', 7]);
    // Loaded parameters stay leaves that require grad.
    expect(w.requiresGrad && w.isLeaf).toBe(true);
  });
  it('moves every tensor\'s version by exactly one per load (parameters, buffers, the int64 counter); a refused load by none', () => {
    const m = torchOrderModel();
    const src = torchOrderModel().to('float64');
    const versions = () => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.version]));
    const v0 = versions();
    expect(Object.keys(v0)).toContain('1.num_batches_tracked');
    m.loadStateDict(src.stateDict());
    m.loadStateDict(src.stateDict());
    expect(versions()).toEqual(Object.fromEntries(Object.entries(v0).map(([k, v]) => [k, v + 2])));
    expect(() => m.loadStateDict({ ...src.stateDict(), '0.weight': zeros([1]) })).toThrow(/size mismatches: 0\.weight/);
    expect(versions()).toEqual(Object.fromEntries(Object.entries(v0).map(([k, v]) => [k, v + 2])));
  });

  it('a weight saved for backward and then overwritten by loadStateDict makes that backward throw the in-place error', () => {
    const lin = new Linear(3, 2);
    const x = randn([4, 3]);
    x.requiresGrad = true;
    const y = lin.call(x); // saves lin.weight for x's gradient
    const v = lin.weight.version;
    lin.loadStateDict(new Linear(3, 2).stateDict());
    expect(() => sum(y).backward()).toThrow(
      new RegExp(`modified by an inplace operation: it is at version ${v + 1}; expected version ${v} instead`));
    // A forward after the load records the new version, and its backward runs.
    sum(lin.call(x)).backward();
    expect(x.grad?.shape).toEqual([4, 3]);
  });
});
