/**
 * Module behaviours where nodegrad once parted from torch.nn.Module (2.15), each against what
 * PyTorch does (quoted): to() with tied weights and gradients, optimizers built before to(),
 * registration names, hooks that remove themselves, pre-hook results, buffer persistence.
 */
import { describe, expect, it } from 'vitest';
import { noGrad, tensor, type Tensor } from '@nodegrad/autograd';
import { BatchNorm2d, Linear, Module, ReLU, SGD, Sequential } from '@nodegrad/nn';

class Tied extends Module {
  declare a: Linear;
  declare b: Linear;
  constructor() {
    super();
    this.registerModule('a', new Linear(2, 2));
    this.registerModule('b', new Linear(2, 2));
    this.b.weight = this.a.weight;
  }
  forward(x: Tensor): Tensor {
    return this.b.call(this.a.call(x));
  }
}

describe('Module.to, as PyTorch', () => {
  it('keeps tied parameters tied and brings the gradient along, converted', () => {
    // torch: l2.weight = l1.weight; m.to(float64) -> l1.weight is l2.weight, one parameter; .grad float64.
    const m = new Tied();
    m.call(tensor([[1, 2]])).sum().backward();
    const params = m.parameters().length;
    m.to('float64');
    expect(m.a.weight).toBe(m.b.weight);
    expect(m.parameters().length).toBe(params);
    expect([m.a.weight.grad!.dtype, m.a.weight.grad!.shape]).toEqual(['float64', [2, 2]]);
  });

  it('an optimizer built before to() refuses to step instead of updating tensors the model dropped', () => {
    const m = new Linear(2, 1);
    const opt = new SGD(m.parameters(), { lr: 0.1 });
    m.to('float64');
    m.call(tensor([[1, 2]], { dtype: 'float64' })).sum().backward();
    expect(() => opt.step()).toThrow(/^SGD\.step: parameter 0 of group 0 was replaced by Module\.to\(\), so the model no longer uses it/);
  });
});

describe('Module registration, as PyTorch', () => {
  it("refuses a name that shadows a member (torch: attribute 'train' already exists) and a mode that is no boolean", () => {
    const m = new Sequential(new ReLU());
    expect(() => m.registerModule('train', new ReLU())).toThrow("Module: 'train' is already a member of Sequential; choose another name");
    expect(() => new Linear(2, 2).train('no' as unknown as boolean)).toThrow('train: mode must be true or false, got no');
  });

  it('declared fields and field initializers register as before; a refused name leaves nothing behind', () => {
    class Net extends Module {
      fc: Linear;
      scale = 2;
      bn = this.registerModule('bn', new ReLU());
      constructor() {
        super();
        this.fc = this.registerModule('fc', new Linear(2, 2));
      }
      forward(x: Tensor): Tensor {
        return this.fc.call(x).mul(this.scale);
      }
    }
    const n = new Net();
    expect([n.parameters().length, [...n.namedChildren()].map(([k]) => k)]).toEqual([2, ['bn', 'fc']]);
    n.registerModule('bn', new Linear(2, 2)); // registered again (what convertSyncBatchNorm does)
    expect(n.bn).toBeInstanceOf(Linear);
    expect(() => n.registerBuffer('scale', tensor([1]))).toThrow("Module: 'scale' is already a member of Net; choose another name");
    const s = new Sequential(new ReLU());
    expect(() => s.registerModule('eval', new ReLU())).toThrow(/already a member/);
    expect([...s.namedChildren()].map(([k]) => k)).toEqual(['0']);
  });

  it('a buffer registered again as persistent goes into the state dict', () => {
    // torch: register_buffer('np', t, persistent=False); register_buffer('np', t2) -> state_dict has 'np'.
    const m = new Sequential();
    m.registerBuffer('np', tensor([1]), { persistent: false });
    m.registerBuffer('np', tensor([2]));
    expect(Object.keys(m.stateDict())).toEqual(['np']);
  });
});

describe('forward hooks, as PyTorch', () => {
  it('a hook removing itself does not skip the next; removal is idempotent; a pre-hook value is the one input', () => {
    const m = new ReLU();
    const calls: string[] = [];
    const f = () => { calls.push('f'); };
    const r1 = m.registerForwardHook(f);
    m.registerForwardHook(f);
    const self: { remove?: () => void } = {};
    self.remove = m.registerForwardHook(() => { calls.push('s'); self.remove!(); });
    m.registerForwardHook(() => { calls.push('b'); return null; });
    r1();
    r1();
    const y = m.call(tensor([-1, 2]));
    expect(calls).toEqual(['f', 's', 'b']);
    expect(Array.from(y.dataSync())).toEqual([0, 2]); // a hook returning null (None) keeps the output
    // A pre-hook returning one tensor: torch wraps it as the input tuple.
    const l = new ReLU();
    l.registerForwardPreHook(() => tensor([-3, 3]));
    expect(Array.from(l.call(tensor([1, 1])).dataSync())).toEqual([0, 3]);
  });
});

describe('a module registered under two names, as PyTorch', () => {
  class Shared extends Module {
    constructor(lin: Linear) {
      super();
      this.registerModule('a', lin);
      this.registerModule('b', lin);
      this.registerModule('c', new Sequential(lin, new ReLU()));
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }

  it('is listed once by children/modules/parameters, saved and printed under every name', () => {
    const lin = new Linear(1, 1);
    const m = new Shared(lin);
    // torch: named_children ['a', 'c']; named_modules ['', 'a', 'c', 'c.1'];
    // state_dict a.*, b.*, c.0.*; named_parameters ['a.weight', 'a.bias']; print shows (b) too.
    expect([...m.namedChildren()].map(([n]) => n)).toEqual(['a', 'c']);
    expect([...m.namedModules()].map(([n]) => n)).toEqual(['', 'a', 'c', 'c.1']);
    expect([...m.namedModules('', false)].map(([n]) => n)).toEqual(['', 'a', 'b', 'c', 'c.0', 'c.1']);
    expect(Object.keys(m.stateDict())).toEqual(['a.weight', 'a.bias', 'b.weight', 'b.bias', 'c.0.weight', 'c.0.bias']);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['a.weight', 'a.bias']);
    expect(m.toString()).toContain('(b): Linear(in_features=1, out_features=1, bias=True)');
    // apply() visits children(), deduplicated per parent: lin under 'a' and again under 'c' (torch: 2).
    let applied = 0;
    m.apply((x) => { if (x === lin) applied++; });
    expect(applied).toBe(2);
  });

  it('a Sequential holding one module twice runs it twice (torch: len 2)', () => {
    const lin = new Linear(1, 1, { bias: false });
    noGrad(() => lin.weight.fill_(3));
    const s = new Sequential(lin, lin);
    expect([s.length, (s.call(tensor([[2]])) as Tensor).item()]).toEqual([2, 18]);
  });
});

describe('loadStateDict, as PyTorch', () => {
  it('loads a one-element 1-d value into a 0-d buffer (old checkpoints), and names a value that is no tensor', () => {
    // torch: num_batches_tracked = tensor([5]) loads, and the buffer is tensor(5).
    const bn = new BatchNorm2d(3);
    bn.loadStateDict({ ...bn.stateDict(), num_batches_tracked: tensor([5], { dtype: 'int64' }) });
    expect([bn.num_batches_tracked!.shape, bn.num_batches_tracked!.item()]).toEqual([[], 5]);
    const lin = new Linear(2, 2);
    expect(() => lin.loadStateDict({ weight: 5 as never, bias: tensor([0, 0]) })).toThrow(
      "loadStateDict: the value of 'weight' must be a Tensor, got number");
    expect(() => bn.loadStateDict({ ...bn.stateDict(), num_batches_tracked: tensor([5, 6], { dtype: 'int64' }) })).toThrow(
      /num_batches_tracked \(checkpoint has \[2\], the module has \[\]\)/);
  });
});
