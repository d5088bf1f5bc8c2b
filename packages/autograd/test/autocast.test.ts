/**
 * autocast's op lists on every backend that computes bfloat16 (and float16): each entry runs in the
 * type its policy names, nested scopes and `enabled: false` restore the outer setting, weight casts
 * are made once per scope, and backward runs in the types the forward chose.
 */
import { describe, expect, it } from 'vitest';
import {
  add, autocast, autocastInputs, bmm, cat, conv2d, crossEntropy, dual, exp, grad, isAutocastEnabled, linear, log, logSoftmax,
  getBackend, manualSeed, matmul, mean, mseLoss, mul, nllLoss, noGrad, supports, pow, randn, softmax, stack, sum, tensor, tidy, unpackDual, where,
  type HalfDType,
  type Tensor,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

const host = (t: Tensor) => Array.from(t.toTypedArray());
const HALF_NEEDS = (t: HalfDType) => [['Conv2D', t], ['BatchMatMul', t], ['Cast', t], ['Add', t]] as const;

for (const low of ['bfloat16', 'float16'] as const) {
  describeBackends(describe, `autocast to ${low}`, (device) => {
    const f32 = (...shape: number[]) => randn(shape, { device, requiresGrad: true });
    const lowT = (...shape: number[]) => randn(shape, { device }).to(low);
    // The autocast device type of the backend under test ('cuda' for 'cuda:N' and 'cuda-emu'), and the other.
    const kind = device.startsWith('cuda') ? 'cuda' : 'cpu', other = kind === 'cuda' ? 'cpu' : 'cuda';
    const on = <T>(fn: () => T) => autocast({ device: kind, dtype: low }, fn);

    it('lower list: conv2d, matmul, bmm, linear run in the low type from float32 inputs', () => {
      on(() => {
        expect(conv2d(f32(1, 2, 5, 5), f32(3, 2, 3, 3), f32(3)).dtype).toBe(low);
        expect(matmul(f32(3, 4), f32(4, 2)).dtype).toBe(low);
        expect(bmm(f32(2, 3, 4), f32(2, 4, 2)).dtype).toBe(low);
        expect(linear(f32(3, 4), f32(5, 4), f32(5)).dtype).toBe(low);
      });
      // float64 is never cast down (checked where float64 matmul is declared).
      if (supports(getBackend(device), 'BatchMatMul', 'float64')) {
        on(() => expect(matmul(f32(3, 4).to('float64'), f32(4, 2).to('float64')).dtype).toBe('float64'));
      }
    });

    it('float32 list: softmax, logSoftmax, crossEntropy, nllLoss, mseLoss, exp, log, pow, sum, mean', () => {
      on(() => {
        const x = lowT(4, 5);
        const target = tensor([0, 3, 1, 4], { dtype: 'int64', device });
        const ops: [string, Tensor][] = [
          ['softmax', softmax(x, 1)], ['logSoftmax', logSoftmax(x, 1)], ['crossEntropy', crossEntropy(x, target)],
          ['nllLoss', nllLoss(logSoftmax(x, 1).to(low), target)], ['mseLoss', mseLoss(x, lowT(4, 5))],
          ['exp', exp(x)], ['log', log(exp(x).to(low))], ['pow', pow(x, 2)], ['sum', sum(x)], ['mean', mean(x, 1)],
        ];
        for (const [name, y] of ops) expect([name, y.dtype]).toEqual([name, 'float32']);
      });
    });

    it('promote: arithmetic, where, cat and stack take the widest type; outside autocast a mix is an error', () => {
      const a = lowT(3), b = randn([3], { device });
      on(() => {
        expect(add(a, b).dtype).toBe('float32');
        expect(mul(b, a).dtype).toBe('float32');
        expect(where(tensor([1, 0, 1], { device }), a, b).dtype).toBe('float32');
        expect(cat([a, b]).dtype).toBe('float32');
        expect(stack([b, a]).dtype).toBe('float32');
        expect(add(a, 1).dtype).toBe(low); // a scalar takes the tensor's type
        // torch.result_type: a 0-d tensor does not widen one with dimensions (PyTorch 2.15 under
        // autocast: bf16[3] * tensor(0.5) is bfloat16), but widens another 0-d one.
        const s32 = tensor(0.5, { device }), s0 = a.sum().to(low);
        expect([mul(a, s32).dtype, add(s32, a).dtype, where(tensor([1, 0, 1], { device }), a, s32).dtype]).toEqual([low, low, low]);
        expect([add(s0, b).dtype, add(s32, s0).dtype, stack([s0, s32]).dtype]).toEqual(['float32', 'float32', 'float32']);
      });
      expect(() => add(a, b)).toThrow(`add: 'input' has dtype ${low} but 'other' has dtype float32`);
    });

    it('nesting: enabled false inside, another device type, and the state restored after a throw', () => {
      on(() => {
        expect(autocast({ device: kind, enabled: false }, () => matmul(f32(2, 2), f32(2, 2)).dtype)).toBe('float32');
        expect(autocast({ device: other }, () => matmul(f32(2, 2), f32(2, 2)).dtype)).toBe(low);
        expect(() => autocast({ device: kind, enabled: false }, () => { throw new Error('boom'); })).toThrow('boom');
        expect(isAutocastEnabled(kind)).toBe(true);
      });
      expect(isAutocastEnabled(kind)).toBe(false);
      expect(() => autocast({ device: kind, dtype: 'float32' as HalfDType }, () => 0)).toThrow("autocast: dtype must be 'bfloat16' or 'float16', got 'float32'");
    });

    it('a weight is cast once per scope, again after an in-place update or in a new scope', () => {
      const w = f32(4, 4);
      const x = randn([4], { device });
      on(() => {
        const [c1] = autocastInputs('lower', w);
        const [c2] = autocastInputs('lower', w);
        expect(c2).toBe(c1);
        expect(autocastInputs('lower', x)[0]).not.toBe(autocastInputs('lower', x)[0]); // not a leaf requiring grad
        noGrad(() => w.mul_(2)); // an optimizer step inside the scope: the cast is stale
        const [c3] = autocastInputs('lower', w);
        expect(c3).not.toBe(c1);
        expect(host(c3)).toEqual(host(c1).map((v) => 2 * v));
      });
      const first = on(() => autocastInputs('lower', w)[0]);
      expect(on(() => autocastInputs('lower', w)[0])).not.toBe(first);
      // A cast made in a tidy inside the scope is not reused after that tidy freed it.
      on(() => {
        const inner = tidy(() => { autocastInputs('lower', w); return 0; });
        expect(inner).toBe(0);
        expect(autocastInputs('lower', w)[0].toTypedArray().length).toBe(16);
      });
    });

    it('backward runs in the forward types: low-type activations, float32 weight gradients', () => {
      manualSeed(21); // the values would otherwise depend on the draws of the tests before
      const x = f32(2, 3, 6, 6), w = f32(4, 3, 3, 3), fc = f32(5, 4);
      const loss = on(() => {
        const y = conv2d(x, w, null, { padding: 1 });
        const pooled = mean(y, [2, 3]);
        return crossEntropy(linear(pooled, fc), tensor([1, 4], { dtype: 'int64', device }));
      });
      expect(loss.dtype).toBe('float32');
      on(() => loss.backward()); // autocast is off inside backward even when called in a scope
      expect([w.grad!.dtype, fc.grad!.dtype, x.grad!.dtype]).toEqual(['float32', 'float32', 'float32']);
      // The same step in float32: gradients agree within the low type's precision.
      const ref = crossEntropy(linear(mean(conv2d(x.detach(), w.detach(), null, { padding: 1 }), [2, 3]), fc.detach()),
        tensor([1, 4], { dtype: 'int64', device }));
      // Relative to the loss (2e-3 for float16: 300 seeds gave at most 8.7e-4; a larger loss has a larger error).
      expect(Math.abs(loss.item() - ref.item())).toBeLessThan((low === 'bfloat16' ? 2e-2 : 2e-3) * Math.max(1, Math.abs(ref.item())));
    });

    // conv2d with a cached weight cast differentiates the float32 weight itself (one float32
    // backward-filter kernel, no Cast backward). Against the same step with cacheEnabled false,
    // which takes the plain graph (cast, then conv2d): the same loss and input gradient, a weight
    // gradient within a step of the low type, and the same graph for a recorded backward.
    it('a cached weight\'s conv2d gradient comes in float32 from its own kernel, as the plain graph\'s', () => {
      const x0 = f32(2, 3, 6, 6), w = f32(4, 3, 3, 3), tx = randn([2, 3, 6, 6], { device });
      const target = tensor([1, 3], { dtype: 'int64', device });
      const run = (cache: boolean, createGraph = false) => {
        const x = x0.detach().requiresGrad_();
        w.grad = null;
        const loss = autocast({ device: kind, dtype: low, cacheEnabled: cache }, () =>
          crossEntropy(mean(conv2d(x, w, null, { padding: 1 }), [2, 3]), target));
        if (!createGraph) {
          loss.backward();
          return { loss: loss.item(), dx: host(x.grad!), dw: host(w.grad!), dwType: w.grad!.dtype };
        }
        // A gradient penalty: the backward recorded (the same ops as the plain graph's, so the same
        // first-order gradient), then differentiated again (w's part through the float32 kernel).
        const [gw] = grad(loss, w, { createGraph: true });
        const first = host(gw!);
        sum(mul(gw!, gw!)).backward();
        return { loss: loss.item(), dx: host(x.grad!), dw: host(w.grad!), dwType: w.grad!.dtype, first };
      };
      const step = low === 'bfloat16' ? 2 ** -8 : 2 ** -11;
      const withinAStep = (got: number[], want: number[]) => {
        const scale = Math.max(...want.map(Math.abs));
        got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(step * scale));
      };
      const fused = run(true), plain = run(false);
      expect(fused.dwType).toBe('float32');
      expect(fused.loss).toBe(plain.loss);
      expect(fused.dx).toEqual(plain.dx);
      withinAStep(fused.dw, plain.dw);
      if (device === 'ts') {
        // The float32 sums unrounded: some are not values of the low type (the plain graph's all are).
        const rounded = host(noGrad(() => tensor(fused.dw, { device }).to(low).to('float32')));
        expect(fused.dw.some((v, i) => v !== rounded[i])).toBe(true);
      }
      const [fused2, plain2] = [run(true, true), run(false, true)];
      expect([fused2.loss, fused2.first, fused2.dx]).toEqual([plain2.loss, plain2.first, plain2.dx]);
      withinAStep(fused2.dw, plain2.dw);
      // As in the plain graph, only the cast is saved: the weight may change in place before backward.
      const loss = on(() => sum(conv2d(x0.detach(), w, null, { padding: 1 })));
      noGrad(() => w.mul_(1));
      expect(() => loss.backward()).not.toThrow();
      // Forward mode through the input: the same tangent as the plain graph.
      const tangent = (cache: boolean) => host(unpackDual(autocast({ device: kind, dtype: low, cacheEnabled: cache },
        () => conv2d(dual(x0.detach(), tx), w, null, { padding: 1 }))).tangent!);
      expect(tangent(true)).toEqual(tangent(false));
    });
  }, { needs: HALF_NEEDS(low) });
}
