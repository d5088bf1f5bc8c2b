// Activations kept in oneDNN's blocked layout (nChw16c / nChw8c, and channels-last NHWC for
// bfloat16) between conv, batch norm, ReLU, add and pooling on 'cpu' (issue 4 §2, issue 12). Every result is checked against the same chain on 'ts' in
// float64 and against the 'cpu' chain forced plain after each op (a multiply by ones of shape
// [1, C, 1, 1] broadcasts, and broadcasting kernels read and write plain NCHW). Read-back is NCHW
// whatever the buffer holds, and a weight written in place must not be served from a stale reorder.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, add, backends, batchNorm, batchNormFused, conv2d, conv2dFused, fromTypedArray, maxPool2d, maxPool2dWithIndices, mul, noGrad, relu, sum,
  type MaxPool2dOptions, type Tensor,
} from '@nodegrad/autograd';
import { Conv2d, SGD } from '@nodegrad/nn';
import { describeBuild, nativeLayout } from '@nodegrad/native';

const cpu = backends().find((b) => b.name === 'cpu');
const onednn = describeBuild().features.onednn;
const suite = cpu?.available && onednn.enabled ? describe : describe.skip;
const why = !cpu?.available ? ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`
  : !onednn.enabled ? ` (skipped: built without oneDNN: ${onednn.reason})` : '';

let seed = 11;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG, deterministic across runs
  return seed / 2 ** 32 * 2 - 1;
}

/**
 * The same values as a 'cpu' tensor of `dtype` and a float64 'ts' tensor: rounded to float32, and
 * for bfloat16 to bfloat16 too (the 'cpu' tensor's values, read back, seed the 'ts' one).
 */
function pair(shape: number[], scale = 1, dtype: 'float32' | 'bfloat16' = 'float32'): { cpu: Tensor; ts: Tensor } {
  const f32 = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * scale);
  const cpu = noGrad(() => fromTypedArray(f32, shape, { device: 'cpu', dtype: 'float32' }).to(dtype)).requiresGrad_();
  return {
    cpu,
    ts: fromTypedArray(Float64Array.from(cpu.toTypedArray()), shape, { device: 'ts', dtype: 'float64', requiresGrad: true }),
  };
}

/** The CPU has bfloat16 instructions oneDNN's channels-last bf16 convolutions use (Linux). */
function cpuHasBf16(): boolean {
  try {
    return /\b(avx512_bf16|amx_bf16)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

/** max |got − want| ≤ tol · max(1, max |want|), naming the worst element. */
function expectClose(got: Tensor, want: Tensor, tol: number, what: string): void {
  expect(got.shape, what).toEqual(want.shape);
  const g = got.toTypedArray(), w = want.toTypedArray();
  let worst = 0, at = 0, scale = 1;
  for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]!));
  for (let i = 0; i < w.length; i++) {
    const e = Math.abs(g[i]! - w[i]!);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  if (!(worst <= tol * scale)) throw new Error(`${what}: element ${at} is ${g[at]}, expected ${w[at]} (scale ${scale})`);
}

interface Chain { out: Tensor; layouts: string[] }

/** conv → bn → relu → add (the conv's output as residual) → conv → maxpool, then a weighted sum. */
function chain(x: Tensor, w1: Tensor, w2: Tensor, g: Tensor, b: Tensor, r: Tensor, plain: Tensor | null): Chain {
  const layouts: string[] = [];
  const p = (t: Tensor) => {
    const v = plain ? mul(t, plain) : t;
    if (v.device === 'cpu') layouts.push(nativeLayout(v));
    return v;
  };
  const y0 = p(conv2d(x, w1, null, { padding: 1 }));
  const h = p(relu(p(batchNorm(y0, null, null, g, b, { training: true }))));
  const s = p(add(h, y0));
  const y = p(maxPool2d(p(conv2d(s, w2, null, { padding: 1 })), 2));
  // y · r · y: y's gradient is computed beside blocked y, so the pooling's backward gets blocked dy.
  return { out: sum(mul(mul(y, r), y)), layouts };
}

/**
 * The chain kept in the conv's layout, forced plain after each op, and on 'ts' in float64, C channels
 * on hw x hw images.
 */
function chainRuns(C: number, dtype: 'float32' | 'bfloat16', hw = 8) {
  const x = pair([2, 3, hw, hw], 1, dtype), w1 = pair([C, 3, 3, 3], 0.5, dtype), w2 = pair([C, C, 3, 3], 0.3, dtype);
  const g = pair([C], 1, dtype), b = pair([C], 1, dtype), r = pair([2, C, hw / 2, hw / 2], 1, dtype);
  const args = [x, w1, w2, g, b];
  const ones = fromTypedArray(new Float32Array(C).fill(1), [1, C, 1, 1], { device: 'cpu', dtype });
  const run = (dev: 'cpu' | 'ts', plain: Tensor | null) => {
    for (const a of args) a[dev].grad = null;
    const c = chain(x[dev], w1[dev], w2[dev], g[dev], b[dev], r[dev].detach(), plain);
    c.out.backward();
    return { out: c.out, layouts: c.layouts, grads: args.map((a) => a[dev].grad!) };
  };
  const kept = run('cpu', null), plain = run('cpu', ones), ref = run('ts', null);
  // Forced plain really is plain; kept results stay in the conv's layout through the pooling.
  expect(plain.layouts.every((l) => l === 'nchw')).toBe(true);
  expect(kept.layouts, `layouts ${kept.layouts.join(' ')}`).toEqual(Array(6).fill(kept.layouts[0]));
  return { kept, plain, ref, convLayout: kept.layouts[0]! };
}

const GRAD_NAMES = ['x', 'w1', 'w2', 'gamma', 'beta'];

suite(`cpu backend: blocked activation layout${why}`, () => {
  for (const C of [3, 10, 24]) {
    it(`conv → bn → relu → add → conv → maxpool with ${C} channels: forward and backward match plain and ts`, () => {
      const { kept, plain, ref, convLayout } = chainRuns(C, 'float32');
      if (C % 8 === 0) expect(convLayout).not.toBe('nchw'); // what oneDNN picks for f32 on x86 with AVX2 or better
      expectClose(kept.out, plain.out, 1e-5, 'loss vs plain');
      expectClose(kept.out, ref.out, 1e-4, 'loss vs ts');
      kept.grads.forEach((gr, i) => {
        // Parameters' gradients come plain from their kernels; x's is a device copy of the
        // backward-data result and may keep that kernel's layout (reads are NCHW either way).
        if (i > 0) expect(nativeLayout(gr), `grad ${GRAD_NAMES[i]} is plain`).toBe('nchw');
        expectClose(gr, plain.grads[i]!, 1e-5, `grad ${GRAD_NAMES[i]} vs plain`);
        expectClose(gr, ref.grads[i]!, 1e-4, `grad ${GRAD_NAMES[i]} vs ts`);
      });
    });
  }

  // bfloat16: oneDNN's bf16 convolutions pick channels last on CPUs with AVX512_BF16 or AMX, and
  // batch norm, ReLU, add, max-pool and the next conv keep it. Kept and plain run the same math
  // (2e-2: a few bfloat16 steps, 2^-8, where a batch norm statistic summed in another order rounds
  // the other way). The float64 chain on the same inputs is further off: every op rounds to 8 bits,
  // and gamma's and beta's gradients sum 128 such terms that partly cancel (6e-2 of the largest).
  for (const C of [10, 32]) {
    it(`bfloat16: the chain with ${C} channels keeps one layout and matches plain and ts`, () => {
      const { kept, plain, ref, convLayout } = chainRuns(C, 'bfloat16');
      if (cpuHasBf16()) expect(convLayout).not.toBe('nchw');
      expectClose(kept.out, plain.out, 2e-2, 'loss vs plain');
      expectClose(kept.out, ref.out, 6e-2, 'loss vs ts');
      kept.grads.forEach((gr, i) => {
        expect(gr.dtype).toBe('bfloat16');
        expectClose(gr, plain.grads[i]!, 2e-2, `grad ${GRAD_NAMES[i]} vs plain`);
        expectClose(gr, ref.grads[i]!, 6e-2, `grad ${GRAD_NAMES[i]} vs ts`);
      });
    });
  }

  // Batch norm's blocked loops sum a unit in tiles of rows and chunks of lanes (64, 16, 8, then
  // single lanes): 40x40 and 24x24 images leave a partial tile, and 88 channels last are chunks of
  // 64, 16 and 8 (the 10-channel bfloat16 case above has the single lanes).
  // (Last among the chain tests: it draws its inputs after theirs.) bfloat16 is held to the plain
  // chain only: against float64, max-pool's ties among bfloat16 values route gradients elsewhere.
  it('the chain with 88 channels on large images (partial tiles, every lane chunk) matches plain and ts', () => {
    const { kept, plain, ref } = chainRuns(88, 'float32', 40);
    expectClose(kept.out, plain.out, 1e-5, 'loss vs plain');
    expectClose(kept.out, ref.out, 1e-4, 'loss vs ts');
    kept.grads.forEach((gr, i) => {
      expectClose(gr, plain.grads[i]!, 1e-5, `grad ${GRAD_NAMES[i]} vs plain`);
      expectClose(gr, ref.grads[i]!, 1e-4, `grad ${GRAD_NAMES[i]} vs ts`);
    });
    const half = chainRuns(88, 'bfloat16', 24);
    if (cpuHasBf16()) expect(half.convLayout).not.toBe('nchw');
    expectClose(half.kept.out, half.plain.out, 2e-2, 'bfloat16 loss vs plain');
    half.kept.grads.forEach((gr, i) => expectClose(gr, half.plain.grads[i]!, 2e-2, `bfloat16 grad ${GRAD_NAMES[i]} vs plain`));
  });

  // float32 inference: oneDNN's brgemm convolutions pick channels last; a bottleneck's fused
  // convolutions (1x1 -> 3x3 -> 1x1 with the identity as residual) then run without a reorder
  // between them, and max-pool keeps the layout too.
  it('float32 inference: a fused bottleneck keeps one layout and matches ts', () => {
    const C = 64, M = 32;
    const x = pair([2, C, 6, 6]), w1 = pair([M, C, 1, 1], 0.2), w2 = pair([M, M, 3, 3], 0.1), w3 = pair([C, M, 1, 1], 0.2);
    const b1 = pair([M]), b2 = pair([M]), b3 = pair([C]);
    const run = (dev: 'cpu' | 'ts') => noGrad(() => {
      const d = (t: { cpu: Tensor; ts: Tensor }) => t[dev].detach();
      const h1 = conv2dFused(d(x), d(w1), d(b1), { relu: true });
      const h2 = conv2dFused(h1, d(w2), d(b2), { padding: 1, relu: true });
      const y = conv2dFused(h2, d(w3), d(b3), { residual: d(x), relu: true });
      return [h1, h2, y, maxPool2d(y, 2)];
    });
    const got = run('cpu'), want = run('ts');
    const layouts = got.slice(1).map((t) => nativeLayout(t));
    expect(layouts, layouts.join(' ')).toEqual(Array(3).fill(nativeLayout(got[0]!)));
    expect(nativeLayout(got[0]!)).not.toBe('nchw'); // nhwc with AVX-512 (brgconv), a blocked one otherwise
    got.forEach((t, i) => expectClose(t, want[i]!, 1e-5, `output ${i}`));
  });

  // A 1 x 1 image in channels last has the bytes of NCHW, and oneDNN then makes no reorder between
  // them: reading it back, pooling it and its gradient failed (ResNet's layer 4 on 32 x 32 inputs
  // under bfloat16 autocast). bfloat16 convolutions keep channels last down to 1 x 1.
  it('bfloat16: a 1 x 1 image kept channels last reads back, pools and trains', () => {
    const x = pair([2, 32, 4, 4], 1, 'bfloat16'), w = pair([32, 32, 3, 3], 0.2, 'bfloat16');
    const run = (dev: 'cpu' | 'ts') => {
      let y = conv2d(x[dev], w[dev], null, { padding: 1 });
      while (y.shape[2]! > 1) y = conv2d(y, w[dev], null, { stride: 2, padding: 1 });
      sum(mul(adaptiveAvgPool2d(y, 1), y)).backward();
      return y;
    };
    const y = run('cpu'), yr = run('ts');
    if (cpuHasBf16()) expect(nativeLayout(y)).toBe('nhwc');
    expectClose(y, yr, 6e-2, 'output vs ts');
    expectClose(x.cpu.grad!, x.ts.grad!, 6e-2, 'grad x vs ts');
    expectClose(w.cpu.grad!, w.ts.grad!, 6e-2, 'grad w vs ts');
  });

  it('reads a blocked tensor back as NCHW, whole or through a view', () => {
    const x = pair([2, 5, 6, 6]), w = pair([20, 5, 3, 3]);
    const y = conv2d(x.cpu, w.cpu);
    const want = conv2d(x.ts, w.ts);
    expect(nativeLayout(y)).not.toBe('nchw');
    expectClose(y, want, 1e-5, 'toTypedArray');
    expectClose(y.reshape([2, -1]), want.reshape([2, -1]), 1e-5, 'a flattened view');
    expectClose(y.sum([0, 2, 3]), want.sum([0, 2, 3]), 1e-5, 'a reduction over a blocked buffer');
    expectClose(y.reshape([40, 16]).sum([1]), want.reshape([40, 16]).sum([1]), 1e-5, 'rows of a view');
  });

  const pools: [number, MaxPool2dOptions][] = [
    [3, { stride: 2, padding: 1 }], [2, {}], [3, { stride: 2, padding: 1, ceilMode: true }], [2, { dilation: 2, padding: 1 }],
  ];
  for (const [k, opts] of pools) {
    it(`max-pools a blocked tensor with PyTorch's plane indices: kernel ${k} ${JSON.stringify(opts)}`, () => {
      const x = pair([2, 3, 9, 11]), w = pair([20, 3, 3, 3]);
      const y = conv2d(x.cpu, w.cpu, null, { padding: 1 }).detach().requiresGrad_();
      const yr = conv2d(x.ts, w.ts, null, { padding: 1 }).detach().requiresGrad_();
      const [p, idx] = maxPool2dWithIndices(y, k, opts);
      const [pr, idxr] = maxPool2dWithIndices(yr, k, opts);
      expect(nativeLayout(p)).toBe(nativeLayout(y));
      expect(Array.from(idx.toTypedArray())).toEqual(Array.from(idxr.toTypedArray()));
      expectClose(p, pr, 1e-5, 'pooled');
      const g = conv2d(pair([2, 3, ...p.shape.slice(2)]).cpu.detach(), pair([20, 3, 1, 1]).cpu.detach()); // a blocked dy
      sum(mul(p, g)).backward();
      sum(mul(pr, fromTypedArray(Float64Array.from(g.toTypedArray()), g.shape, { device: 'ts', dtype: 'float64' }))).backward();
      expectClose(y.grad!, yr.grad!, 1e-5, 'dx');
    });

    // maxPool2d's own backward (MaxPool2DBackward) finds each argmax again from a blocked x and
    // adds dy there in one pass, with no indices: the same dx, bit for bit, as the scatter over
    // maxPool2dWithIndices' indices, and ts's within rounding.
    for (const dtype of ['float32', 'bfloat16'] as const) {
      it(`max-pool backward from a blocked input (${dtype}), kernel ${k} ${JSON.stringify(opts)}`, () => {
        const x = pair([2, 3, 9, 11], 1, dtype), w = pair([20, 3, 3, 3], 1, dtype);
        const conv = (dev: 'cpu' | 'ts') => conv2d(x[dev], w[dev], null, { padding: 1 }).detach().requiresGrad_();
        const y = conv('cpu'), yi = conv('cpu'), yr = fromTypedArray(Float64Array.from(y.toTypedArray()), y.shape,
          { device: 'ts', dtype: 'float64', requiresGrad: true });
        const p = maxPool2d(y, k, opts);
        const [pi] = maxPool2dWithIndices(yi, k, opts);
        const pr = maxPool2d(yr, k, opts);
        expect(nativeLayout(p)).toBe(nativeLayout(y));
        expect(nativeLayout(y)).not.toBe('nchw');
        const g = conv2d(pair([2, 3, ...p.shape.slice(2)], 1, dtype).cpu.detach(), pair([20, 3, 1, 1], 1, dtype).cpu.detach());
        expect(nativeLayout(g)).toBe(nativeLayout(y));
        expectClose(p, pr, 0, 'pooled');
        sum(mul(p, g)).backward();
        sum(mul(pi, g)).backward();
        sum(mul(pr, fromTypedArray(Float64Array.from(g.toTypedArray()), g.shape, { device: 'ts', dtype: 'float64' }))).backward();
        expect(nativeLayout(y.grad!)).toBe(nativeLayout(y));
        expect(Array.from(y.grad!.toTypedArray())).toEqual(Array.from(yi.grad!.toTypedArray()));
        expectClose(y.grad!, yr.grad!, dtype === 'float32' ? 1e-6 : 4e-3, 'dx');
      });
    }
  }

  it('a weight written in place (mul_, an SGD step, loadStateDict) is not served from a stale reorder', () => {
    const x = pair([2, 16, 7, 7]);
    const conv = new Conv2d(16, 32, 3, { padding: 1, bias: false }).to('cpu');
    const refConv = (t: Tensor) => conv2d(t, fromTypedArray(Float64Array.from(conv.weight.toTypedArray()), conv.weight.shape,
      { device: 'ts', dtype: 'float64' }), null, { padding: 1 });
    const forward = () => noGrad(() => conv.call(x.cpu.detach()));
    forward(); // the weight's reorder is made and kept
    expectClose(forward(), refConv(x.ts.detach()), 1e-5, 'before any write');

    noGrad(() => conv.weight.mul_(-0.5));
    expectClose(forward(), refConv(x.ts.detach()), 1e-5, 'after mul_');

    // Backward-data uses the weight too: x's gradient after an SGD step must use the new weight.
    const opt = new SGD(conv.parameters(), { lr: 0.1 });
    const xg = x.cpu.detach().requiresGrad_();
    sum(conv.call(xg)).backward();
    opt.step();
    xg.grad = null;
    const y = conv.call(xg);
    sum(y).backward();
    const xr = x.ts.detach().requiresGrad_();
    const yr = refConv(xr);
    sum(yr).backward();
    expectClose(y, yr, 1e-5, 'forward after SGD step');
    expectClose(xg.grad!, xr.grad!, 1e-5, 'input gradient after SGD step');

    const fresh = pair([32, 16, 3, 3], 0.2);
    conv.loadStateDict({ weight: fresh.cpu.detach() });
    expectClose(forward(), refConv(x.ts.detach()), 1e-5, 'after loadStateDict');
    expectClose(conv.weight, fresh.ts, 0, 'the loaded weight');
  });

  // batchNormFused in the conv's layout (channels last for bfloat16, nChw16c/8c for float32): the
  // ReLU's mask recomputed from x in the backward's blocked loops, and a residual read in x's
  // layout. Held to the same chain unfused, and for float32 to 'ts' float64. In bfloat16 the
  // second batch norm's sum skips the ReLU for the gradients: rounded once, bn(x) + residual is
  // sometimes a small nonzero value where the unfused chain, rounding bn(x) first, cancels to 0,
  // and the ReLU then passes a gradient the unfused one stops; its forward is compared on its own.
  // No max-pool: the sum's single rounding moves bfloat16 ties. (Last: it draws its inputs after
  // every other test.)
  for (const [dtype, C, hw] of [['float32', 24, 8], ['float32', 88, 20], ['bfloat16', 32, 8], ['bfloat16', 88, 12]] as const) {
    it(`${dtype}: conv → bn·relu → conv → bn·add(·relu) fused, ${C} channels on ${hw}x${hw}, matches unfused and ts`, () => {
      const x = pair([2, 3, hw, hw], 1, dtype), w1 = pair([C, 3, 3, 3], 0.5, dtype), w2 = pair([C, C, 3, 3], 0.2, dtype);
      const g = pair([C], 1, dtype), b = pair([C], 1, dtype), r = pair([2, C, hw, hw], 1, dtype);
      const args = [x, w1, w2, g, b];
      const run = (dev: 'cpu' | 'ts', fused: boolean) => {
        for (const a of args) a[dev].grad = null;
        const bn = (t: Tensor, residual: Tensor | null, withRelu: boolean) => {
          if (fused) return batchNormFused(t, null, null, g[dev], b[dev], { training: true, residual, relu: withRelu });
          const n = batchNorm(t, null, null, g[dev], b[dev], { training: true });
          const v = residual ? add(n, residual) : n;
          return withRelu ? relu(v) : v;
        };
        const y0 = conv2d(x[dev], w1[dev], null, { padding: 1 });
        const h = bn(y0, null, true);
        const z = conv2d(h, w2[dev], null, { padding: 1 });
        const s = bn(z, y0, dtype === 'float32');
        const layouts = dev === 'cpu' ? [y0, h, s].map((t) => nativeLayout(t)) : [];
        const out = sum(mul(mul(s, r[dev].detach()), s));
        out.backward();
        const last = noGrad(() => bn(z, y0, true));
        return { out, layouts, grads: args.map((a) => a[dev].grad!), last };
      };
      const fused = run('cpu', true), unfused = run('cpu', false);
      expect(fused.layouts, fused.layouts.join(' ')).toEqual(Array(3).fill(fused.layouts[0]));
      if (dtype === 'float32' || cpuHasBf16()) expect(fused.layouts[0]).not.toBe('nchw');
      const tol = dtype === 'float32' ? 1e-5 : 2e-2;
      expectClose(fused.out, unfused.out, tol, 'loss vs unfused');
      fused.grads.forEach((gr, i) => expectClose(gr, unfused.grads[i]!, tol, `grad ${GRAD_NAMES[i]} vs unfused`));
      expect(nativeLayout(fused.last)).toBe(fused.layouts[0]);
      expectClose(fused.last, unfused.last, tol, 'bn·add·relu vs unfused');
      if (dtype === 'float32') {
        const ref = run('ts', true);
        expectClose(fused.out, ref.out, 1e-4, 'loss vs ts');
        fused.grads.forEach((gr, i) => expectClose(gr, ref.grads[i]!, 1e-4, `grad ${GRAD_NAMES[i]} vs ts`));
      }
    });
  }
});
