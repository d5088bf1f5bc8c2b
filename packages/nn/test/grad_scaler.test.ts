/**
 * GradScaler against torch.amp.GradScaler's rules: the scaled loss, unscale_ before clipping, a
 * step skipped on inf/NaN with the scale backed off, growth after growthInterval clean steps (the
 * default 2000 and a short interval), state dicts, and its errors.
 */
import { describe, expect, it } from 'vitest';
import { full, mul, roundBFloat16, roundFloat16, sum, tensor, type Tensor } from '@nodegrad/autograd';
import { clipGradNorm_, GradScaler, SGD } from '@nodegrad/nn';

const host = (t: Tensor) => Array.from(t.toTypedArray());

/** A parameter, an SGD on it, and one scaled backward of sum(p * k). */
function setup(values: number[]) {
  const p = tensor(values, { requiresGrad: true });
  const opt = new SGD([p], { lr: 0.5 });
  const backward = (scaler: GradScaler, k: number[]) => {
    opt.zeroGrad();
    scaler.scale(sum(mul(p, tensor(k)))).backward();
  };
  return { p, opt, backward };
}

describe('GradScaler', () => {
  it("has PyTorch's defaults and scales the loss by the scale", () => {
    const scaler = new GradScaler();
    expect(scaler.stateDict()).toEqual({ scale: 65536, growth_factor: 2, backoff_factor: 0.5, growth_interval: 2000, _growth_tracker: 0 });
    expect(scaler.scale(tensor(1.5)).item()).toBe(98304);
  });

  it('scales a 0-d half loss into float32, as the product with its 0-d float32 scale does in PyTorch', () => {
    const scaler = new GradScaler();
    // PyTorch 2.15: GradScaler('cpu').scale(torch.tensor(1e-3).half()) is 65.5625, float32.
    const scaled = scaler.scale(full([], 1e-3, { dtype: 'float16' }));
    expect([scaled.dtype, scaled.item()]).toEqual(['float32', roundFloat16(1e-3) * 65536]);
    // One with dimensions keeps its dtype: the product in float32, rounded once.
    const kept = scaler.scale(tensor([1e-3, 2], { dtype: 'bfloat16' }));
    expect([kept.dtype, kept.toArray()]).toEqual(['bfloat16', [roundBFloat16(roundBFloat16(1e-3) * 65536), 131072]]);
  });

  // PyTorch 2.15, GradScaler('cpu', init_scale=0.1, backoff_factor=0.3, growth_factor=3.3,
  // growth_interval=1), gradients [inf or 1, 1]: scales 0.030000001192092896, 0.0990000069141388,
  // 0.32670003175735474, 0.09801001101732254, then update(0.7) 0.699999988079071; the second step's
  // unscaled gradient 33.33333206176758.
  it('keeps its scale in float32, as PyTorch\'s float32 scale tensor', () => {
    const p = tensor([0, 0], { requiresGrad: true });
    const opt = new SGD([p], { lr: 1 });
    const scaler = new GradScaler({ initScale: 0.1, backoffFactor: 0.3, growthFactor: 3.3, growthInterval: 1 });
    const scales: number[] = [];
    const grads: number[] = [];
    for (const inf of [true, false, false, true]) {
      p.grad = tensor([inf ? Infinity : 1, 1]);
      scaler.unscale_(opt);
      grads.push(p.grad.toTypedArray()[1]!);
      scaler.step(opt);
      scaler.update();
      scales.push(scaler.getScale());
    }
    expect(scales).toEqual([0.030000001192092896, 0.0990000069141388, 0.32670003175735474, 0.09801001101732254]);
    expect(grads.slice(0, 2)).toEqual([10, 33.33333206176758]);
    scaler.update(0.7);
    expect([scaler.getScale(), scaler.stateDict().scale]).toEqual([0.699999988079071, 0.699999988079071]);
    // As float32: 1e39 is inf and 1e-50 zero (PyTorch refuses 1e39: "cannot be converted to float").
    expect(() => new GradScaler({ initScale: 1e39 })).toThrow('GradScaler: initScale must be a positive number finite in float32, got 1e+39');
    expect(() => new GradScaler({ initScale: 1e-50 })).toThrow('GradScaler: initScale must be');
  });

  it('step with a closure is refused while enabled (its backward would leave scaled gradients), as in PyTorch', () => {
    const { p, opt, backward } = setup([1]);
    const scaler = new GradScaler({ initScale: 1024 });
    backward(scaler, [1]);
    expect(() => scaler.step(opt, () => sum(p))).toThrow(/GradScaler.step: a closure is not supported while the scaler is enabled/);
    expect(host(p)).toEqual([1]);
  });

  it('unscale_ divides the gradients by the scale, and clipping after it matches float32 without a scaler', () => {
    const a = setup([1, 2, 3]), b = setup([1, 2, 3]);
    const scaler = new GradScaler({ initScale: 1024 });
    a.backward(scaler, [3, -4, 12]);
    expect(host(a.p.grad!)).toEqual([3072, -4096, 12288]);
    scaler.unscale_(a.opt);
    const normA = clipGradNorm_([a.p], 1);
    b.opt.zeroGrad();
    sum(mul(b.p, tensor([3, -4, 12]))).backward();
    const normB = clipGradNorm_([b.p], 1);
    expect(normA.item()).toBe(13);
    expect(host(a.p.grad!)).toEqual(host(b.p.grad!));
    scaler.step(a.opt);
    scaler.update();
    b.opt.step();
    expect(host(a.p)).toEqual(host(b.p));
  });

  it('an inf or NaN gradient skips the step and backs the scale off; the next clean step runs', () => {
    for (const bad of [Infinity, NaN]) {
      const { p, opt, backward } = setup([1, 2]);
      const scaler = new GradScaler({ initScale: 8, growthInterval: 3 });
      backward(scaler, [1, 1]);
      scaler.step(opt);
      scaler.update();
      expect(scaler.stateDict()._growth_tracker).toBe(1);
      const before = host(p);
      backward(scaler, [bad, 1]);
      expect(scaler.step(opt)).toBeUndefined();
      scaler.update();
      expect(host(p)).toEqual(before);
      expect([scaler.getScale(), scaler.stateDict()._growth_tracker]).toEqual([4, 0]);
      backward(scaler, [1, 1]);
      scaler.step(opt);
      scaler.update();
      expect(host(p)).toEqual(before.map((v) => v - 0.5));
    }
  });

  it('grows the scale after growthInterval clean steps in a row: 3, and the default 2000', () => {
    const { opt, backward } = setup([0]);
    const short = new GradScaler({ initScale: 4, growthInterval: 3 });
    const scales: number[] = [];
    for (let i = 0; i < 7; i++) {
      backward(short, [1e-3]);
      short.step(opt);
      short.update();
      scales.push(short.getScale());
    }
    expect(scales).toEqual([4, 4, 8, 8, 8, 16, 16]);
    const def = new GradScaler({ initScale: 2 });
    for (let i = 0; i < 1999; i++) {
      backward(def, [1e-3]);
      def.step(opt);
      def.update();
    }
    expect(def.getScale()).toBe(2);
    backward(def, [1e-3]);
    def.step(opt);
    def.update();
    expect(def.getScale()).toBe(4);
  });

  it('restores its scale and growth count from a state dict', () => {
    const { opt, backward } = setup([0]);
    const a = new GradScaler({ initScale: 16, growthInterval: 4 });
    for (let i = 0; i < 3; i++) { backward(a, [1]); a.step(opt); a.update(); }
    const b = new GradScaler({ growthInterval: 4 });
    b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
    backward(b, [1]); b.step(opt); b.update();
    expect(b.getScale()).toBe(32);
  });

  // PyTorch 2.15: load_state_dict takes the factors too; a disabled scaler's state dict is {} and it
  // ignores one loaded; an enabled one refuses {} ("The source state dict is empty, ...").
  it('a state dict carries the factors; a disabled scaler gives {} and ignores one, as PyTorch', () => {
    const a = new GradScaler({ initScale: 16, growthFactor: 3, backoffFactor: 0.25, growthInterval: 4 });
    const b = new GradScaler();
    b.loadStateDict(a.stateDict());
    expect(b.stateDict()).toEqual({ scale: 16, growth_factor: 3, backoff_factor: 0.25, growth_interval: 4, _growth_tracker: 0 });
    const off = new GradScaler({ enabled: false });
    expect(off.stateDict()).toEqual({});
    off.loadStateDict(a.stateDict());
    expect([off.stateDict(), off.getScale()]).toEqual([{}, 1]);
    expect(() => b.loadStateDict(off.stateDict())).toThrow(
      'GradScaler.loadStateDict: the state dict is empty, possibly because it was saved from a disabled GradScaler');
    expect(() => b.loadStateDict({ ...a.stateDict(), backoff_factor: 2 } as never)).toThrow('GradScaler.loadStateDict: expected');
  });

  it('errors: unscale_ twice, update without a step, float16 gradients, bad options', () => {
    const { opt, backward } = setup([1]);
    const scaler = new GradScaler();
    backward(scaler, [1]);
    scaler.unscale_(opt);
    expect(() => scaler.unscale_(opt)).toThrow('GradScaler.unscale_: already called on this optimizer since the last update()');
    expect(() => new GradScaler().update()).toThrow('GradScaler.update: no inf checks were recorded since the last update()');
    const h = tensor([1], { dtype: 'float16', requiresGrad: true });
    const hopt = new SGD([h], { lr: 1 });
    sum(mul(h, 2)).backward();
    expect(() => scaler.unscale_(hopt)).toThrow(/a parameter of shape \[1\] has a float16 gradient/);
    expect(() => new GradScaler({ backoffFactor: 1 })).toThrow('GradScaler: backoffFactor must be in (0, 1), got 1');
  });

  it('disabled, it passes everything through', () => {
    const { p, opt, backward } = setup([1]);
    const scaler = new GradScaler({ enabled: false });
    backward(scaler, [2]);
    expect(host(p.grad!)).toEqual([2]);
    scaler.step(opt);
    scaler.update();
    expect(host(p)).toEqual([0]);
  });
});
