/**
 * ModuleList, ModuleDict and the activation modules against PyTorch 2.15
 * (fixtures/containers.json, from scripts/fixtures/make_container_fixtures.py): printed
 * architecture, state-dict keys, renumbering after list edits, and each activation module's
 * output and input gradient in float64 on 'ts' and 'cpu'.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { getBackend, mul, supports, tensor, type Tensor } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import {
  ELU, GELU, Hardtanh, LeakyReLU, Linear, LogSoftmax, Module, ModuleDict, ModuleList, ReLU, Sequential, SGD, SiLU,
  Sigmoid, Softmax, Softplus, Tanh, fuseForInference,
} from '@nodegrad/nn';

interface ActivationCase { name: string; args: (number | string)[]; repr: string; y: number[]; dx: number[] }
const fixture = JSON.parse(readFileSync(new URL('./fixtures/containers.json', import.meta.url), 'utf8')) as {
  x: number[][]; g: number[][]; activations: ActivationCase[]; reprs: [string, string][];
  stateDictKeys: string[]; listOps: [string, [string, string][]][];
};
const repr = (k: string) => fixture.reprs.find(([n]) => n === k)![1];

const MAKERS: Record<string, (...a: any[]) => Module> = {
  Sigmoid: () => new Sigmoid(), Tanh: () => new Tanh(), SiLU: () => new SiLU(), GELU: (a) => new GELU(a),
  ELU: (a) => new ELU(a), LeakyReLU: (s) => new LeakyReLU(s), Hardtanh: (lo, hi) => new Hardtanh(lo, hi),
  Softplus: (b, t) => new Softplus(b, t), Softmax: (d) => new Softmax(d), LogSoftmax: (d) => new LogSoftmax(d),
};
const make = (c: ActivationCase) => MAKERS[c.name.split(' ')[0]!]!(...c.args);

describeBackends(describe, 'activation modules, as torch.nn', (device) => {
  for (const c of fixture.activations) {
    // float64 where the backend has the kernel (native softmax kernels are float32 and half only).
    const kernel = c.name.startsWith('Softmax') ? 'Softmax' : c.name.startsWith('LogSoftmax') ? 'LogSoftmax' : null;
    it(`${c.name}: output and input gradient (float64, or float32 to 1e-6 without a float64 kernel)`, () => {
      const dtype = kernel && !supports(getBackend(device), kernel, 'float64') ? 'float32' : 'float64';
      const x = tensor(fixture.x, { dtype, device, requiresGrad: true });
      const y = make(c).call(x) as Tensor;
      mul(y, tensor(fixture.g, { dtype, device })).sum().backward();
      const digits = dtype === 'float64' ? 12 : 6;
      const close = (a: ArrayLike<number>, b: number[]) => Array.from(a).forEach((v, i) => expect(v).toBeCloseTo(b[i]!, digits));
      close(y.dataSync(), c.y);
      close(x.grad!.dataSync(), c.dx);
    });
  }
});

describe('activation modules: construction and printing', () => {
  it('print as torch.nn', () => {
    for (const c of fixture.activations) expect(make(c).toString()).toBe(c.repr);
  });

  it('refuse bad options, naming the module', () => {
    expect(() => new GELU('exact' as 'none')).toThrow(/GELU: approximate must be 'none' or 'tanh'/);
    expect(() => new Hardtanh(2, 1)).toThrow(/Hardtanh: minVal 2 is greater than maxVal 1/);
    expect(() => new Softmax(undefined as unknown as number)).toThrow(/Softmax: dim must be an integer/);
  });

  it('are copied by fuseForInference', () => {
    const m = new Sequential(new Linear(5, 5), new GELU('tanh'), new Softplus(2.5, 4.5), new LogSoftmax(1));
    expect(fuseForInference(m).toString()).toBe(m.toString());
  });
});

class Net extends Module {
  declare blocks: ModuleList;
  declare heads: ModuleDict;
  constructor() {
    super();
    this.registerModule('blocks', new ModuleList([new Linear(4, 4, { bias: false }), new Sequential(new Linear(4, 4), new GELU())]));
    this.registerModule('heads', new ModuleDict({ cls: new Linear(4, 10), box: new Sequential(new Linear(4, 4), new ReLU()) }));
  }
  forward(x: Tensor): Tensor[] {
    for (const b of this.blocks) x = b.call(x);
    return this.heads.values().map((h) => h.call(x) as Tensor);
  }
}

describe('ModuleList, as torch.nn.ModuleList', () => {
  it('prints runs of equal children folded, as PyTorch 2', () => {
    const lst = new ModuleList([new Linear(2, 2), new Linear(2, 2), new Linear(2, 2), new ReLU(), new Linear(2, 3), new Linear(2, 3)]);
    expect(lst.toString()).toBe(repr('list'));
    expect(new ModuleList().toString()).toBe(repr('list empty'));
    const pair = () => new ModuleList([new Tanh(), new Tanh()]);
    expect(new ModuleList([pair(), pair()]).toString()).toBe(repr('list nested'));
  });

  it("its children's parameters belong to the model, under torch's state-dict keys", () => {
    const net = new Net();
    expect(Object.keys(net.stateDict())).toEqual(fixture.stateDictKeys);
    expect(net.parameters().length).toBe(7);
    const outs = net.call(tensor([[1, 2, 3, 4]]));
    expect(outs.map((o) => o.shape)).toEqual([[1, 10], [1, 4]]);
    outs[0]!.sum().backward();
    expect(net.blocks.at(0).parameters()[0]!.grad).not.toBeNull();
    new SGD(net.parameters(), { lr: 0.1 }).step();
  });

  it('renumbers its children after pop, insert and set, as PyTorch', () => {
    const ops = new ModuleList([new ReLU(), new Tanh(), new Sigmoid(), new SiLU()]);
    const edits: Record<string, () => void> = {
      'pop(1)': () => ops.pop(1),
      'insert(0, GELU)': () => ops.insert(0, new GELU()),
      'insert(2, ELU)': () => ops.insert(2, new ELU()),
      'set(-1, Softplus)': () => ops.set(-1, new Softplus()),
      'pop()': () => ops.pop(),
      'append(Tanh)': () => ops.append(new Tanh()),
    };
    for (const [what, names] of fixture.listOps) {
      edits[what]!();
      expect([...ops.namedChildren()].map(([n, m]) => [n, m.constructor.name]), what).toEqual(names);
      // Each child is a property under its number, and no stale number is left behind.
      expect((ops as unknown as Record<string, Module>)[String(names.length - 1)]).toBe(ops.at(-1));
      expect(String(names.length) in ops).toBe(false);
    }
  });

  it('slices and concatenates into new lists that share the modules; negative insert counts from the end', () => {
    const [a, b, c] = [new ReLU(), new Tanh(), new Sigmoid()];
    const lst = new ModuleList([a, b, c]);
    expect([...lst.slice(1)]).toEqual([b, c]);
    expect([...lst.concat([a])]).toEqual([a, b, c, a]);
    lst.insert(-1, new SiLU());
    expect([...lst].map((m) => m.constructor.name)).toEqual(['ReLU', 'Tanh', 'SiLU', 'Sigmoid']);
  });

  it('has no forward, takes only modules and checks its indices', () => {
    const lst = new ModuleList([new ReLU()]);
    expect(() => lst.call(tensor([1]))).toThrow(/ModuleList has no forward/);
    expect(() => lst.append(3 as unknown as Module)).toThrow(/ModuleList.append: number is not a Module/);
    expect(() => lst.at(5)).toThrow(/ModuleList.at: index 5 is out of range for a ModuleList of length 1/);
    expect(() => lst.pop(1)).toThrow(/ModuleList.pop: index 1 is out of range/);
  });
});

describe('ModuleDict, as torch.nn.ModuleDict', () => {
  it('prints as PyTorch and keeps insertion order; setting an existing key keeps its place', () => {
    const heads = new ModuleDict({ cls: new Linear(4, 10), box: new Sequential(new Linear(4, 4), new ReLU()) });
    expect(heads.toString()).toBe(repr('dict'));
    expect(new ModuleDict().toString()).toBe(repr('dict empty'));
    heads.set('cls', new Linear(4, 3));
    expect(heads.keys()).toEqual(['cls', 'box']);
    expect([...heads]).toEqual(['cls', 'box']);
  });

  it('gets, pops, clears and updates from pairs', () => {
    const relu = new ReLU();
    const d = new ModuleDict([['a', relu], ['b', new Tanh()]]);
    expect(d.get('a')).toBe(relu);
    expect((d as unknown as Record<string, Module>).a).toBe(relu);
    expect(d.pop('a')).toBe(relu);
    expect([d.has('a'), d.size, 'a' in d]).toEqual([false, 1, false]);
    d.update(new Map([['c', new Sigmoid()]]));
    expect(d.keys()).toEqual(['b', 'c']);
    d.clear();
    expect(d.size).toBe(0);
  });

  it('refuses missing keys, members of the class and entries that are not pairs', () => {
    const d = new ModuleDict({ a: new ReLU() });
    expect(() => d.get('zz')).toThrow(/ModuleDict.get: no module under the key 'zz' \(keys: a\)/);
    // torch: KeyError "attribute 'train' already exists"
    expect(() => new ModuleDict({ train: new ReLU() })).toThrow(/'train' is already a member of ModuleDict/);
    expect(() => d.update([['x'] as unknown as [string, Module]])).toThrow(/ModuleDict.update: each entry must be a \[key, module\] pair/);
    expect(() => d.call(tensor([1]))).toThrow(/ModuleDict has no forward/);
  });
});
