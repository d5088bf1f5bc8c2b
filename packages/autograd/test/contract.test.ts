/**
 * The backend contract on every backend: device-side creation (Copy, Fill, random draws equal to
 * the 'ts' reference), reads (readSync, read, sync), typed uploads, dtype declarations, OneHot's
 * ignore index, and reference-counted storage.
 */
import { describe, expect, it } from 'vitest';
import {
  backends, conv2d, dropout, full, getBackend, getRngState, manualSeed, ones, rand, randn, registerBackend,
  registerPostAccumulateGradHook, setRngState, supports, tensor, tsBackend, zeros, type Raw,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';

const host = (device: string, r: Raw) => Array.from(getBackend(device).readSync(r));

describeBackends(describe, 'creation kernels', (device) => {
  const K = () => getBackend(device).kernels;

  it('Fill and Copy give what ts gives, in every declared dtype', () => {
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as const) {
      if (!supports(getBackend(device), 'Fill', dtype)) continue;
      const f = K().Fill([2, 3], 2.5, dtype);
      const want = dtype.startsWith('int') ? 2 : 2.5;
      expect(f.dtype).toBe(dtype);
      expect(host(device, f)).toEqual(new Array(6).fill(want));
      const c = K().Copy(f);
      expect(c.buf).not.toBe(f.buf);
      expect(c.shape).toEqual([2, 3]);
      expect(host(device, c)).toEqual(host(device, f));
    }
    expect(host(device, K().Fill([], -0.1, 'float32'))).toEqual([Math.fround(-0.1)]);
    expect(K().Fill([0, 4], 1, 'float32').shape).toEqual([0, 4]);
  });

  it('a copy is storage of its own: writing into it leaves the source alone', () => {
    const x = tensor([1, 2, 3], { device });
    const y = x.clone();
    y.add_(10);
    expect(Array.from(x.dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(y.dataSync())).toEqual([11, 12, 13]);
  });

  it('random draws equal the ts reference for the same seed and offset', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const shape = [3, 5, 7];
      const u = K().RandomUniform(shape, dtype, 1234, 99);
      expect(host(device, u)).toEqual(host('ts', tsBackend.kernels.RandomUniform(shape, dtype, 1234, 99)));
      const b = K().Bernoulli(shape, 0.3, 2, dtype, 7, 5);
      expect(host(device, b)).toEqual(host('ts', tsBackend.kernels.Bernoulli(shape, 0.3, 2, dtype, 7, 5)));
      // Box-Muller's log and cos may differ in the last bit between math libraries.
      const n = host(device, K().RandomNormal(shape, dtype, 2 ** 40 + 3, 2 ** 33));
      const ref = host('ts', tsBackend.kernels.RandomNormal(shape, dtype, 2 ** 40 + 3, 2 ** 33));
      n.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThanOrEqual(4e-15 * Math.max(1, Math.abs(ref[i]!)) +
        (dtype === 'float32' ? 2 ** -23 * Math.abs(ref[i]!) : 0)));
    }
  });

  it('a draw of n + m elements is a draw of n followed by one of m at offset + n', () => {
    const whole = host(device, K().RandomUniform([10], 'float64', 3, 20));
    const a = host(device, K().RandomUniform([4], 'float64', 3, 20));
    const b = host(device, K().RandomUniform([6], 'float64', 3, 24));
    expect([...a, ...b]).toEqual(whole);
  });

  it('OneHot leaves a zero row at ignoreIndex and refuses any other index outside the classes', () => {
    const idx = tensor([2, -100, 0], { dtype: 'int64', device });
    expect(host(device, K().OneHot(idx, 3, 'float32', -100))).toEqual([0, 0, 1, 0, 0, 0, 1, 0, 0]);
    expect(() => K().OneHot(idx, 3, 'float32')).toThrow(/OneHot.*-100/);
    expect(() => K().OneHot(tensor([3], { dtype: 'int64', device }), 3, 'float32', -100)).toThrow(/OneHot.*3/);
  });
});

describeBackends(describe, 'reads, uploads and dtype declarations', (device) => {
  it('readSync, read and sync give the elements; read resolves to the same copy', async () => {
    const x = tensor([[1, 2], [3, 4]], { device }).mul(2);
    getBackend(device).sync();
    expect(Array.from(x.dataSync())).toEqual([2, 4, 6, 8]);
    expect(Array.from(await x.data())).toEqual([2, 4, 6, 8]);
  });

  it('an upload must be the array type of its dtype: bits are never reinterpreted', () => {
    const b = getBackend(device);
    expect(() => b.fromArray(new Int32Array([1, 2]), [2], 'float32')).toThrow(/float32 data must be a Float32Array/);
    expect(() => b.fromArray(new Float32Array([1, 2]), [2], 'int64')).toThrow(/int64 data must be a Float64Array/);
    expect(() => b.fromArray(new Float64Array([1, 2]), [2], 'int32')).toThrow(/int32 data must be a Int32Array/);
    expect(Array.from(b.readSync(b.fromArray(new Float64Array([5, 6]), [2], 'int64')))).toEqual([5, 6]);
  });

  it('a call in an undeclared dtype throws naming kernel, backend and dtype', () => {
    const b = getBackend(device);
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as const) {
      if (supports(b, 'Exp', dtype)) continue;
      const x = b.kernels.Fill([2], 1, dtype);
      expect(() => b.kernels.Exp(x)).toThrow(new RegExp(`^Exp: the '${device}' backend does not compute elementwise kernels in ${dtype}`));
      // Through the op layer too: arithmetic on such a tensor names the kernel it reached.
      const t = tensor([1, 2], { dtype, device });
      expect(() => t.add(t)).toThrow(new RegExp(`^Add: the '${device}' backend does not compute elementwise kernels in ${dtype}`));
    }
    expect(() => rand([2], { dtype: 'int64', device })).toThrow(/RandomUniform: .* does not compute random kernels in int64/);
  });

  it('disposing a view drops its reference; the storage goes with the last one', () => {
    const freed: unknown[] = [];
    const b = getBackend(device);
    const name = `${device}-refcount`;
    if (!backends().some((s) => s.name === name)) {
      registerBackend({ ...b, name, free: (buf: unknown) => { freed.push(buf); b.free?.(buf); } });
    }
    const x = tensor([1, 2, 3, 4], { device: name });
    const v = x.reshape([2, 2]);
    v.dispose();
    expect(freed).toEqual([]);
    expect(Array.from(x.dataSync())).toEqual([1, 2, 3, 4]);
    v.dispose(); // a second dispose of the same tensor drops nothing more
    expect(freed).toEqual([]);
    x.dispose();
    expect(freed).toEqual([x.buf]);
    // The result of a reduction is its own storage, even when it is reshaped internally.
    const s = tensor([1, 2], { device: name }).sum();
    s.dispose();
    expect(freed).toContain(s.buf);
  });
});

describe('the backend registry', () => {
  it("a family declared with no dtype may leave its kernels out: a call names kernel and backend ('cuda-emu' has no cuBLAS)", () => {
    const { BatchMatMul: _left, Conv2D: _out, ...kernels } = tsBackend.kernels;
    registerBackend({ ...tsBackend, name: 'ts-partial', kernels: kernels as typeof tsBackend.kernels,
      dtypes: { ...tsBackend.dtypes, matmul: [], conv: [] } });
    const x = tensor([[1, 2], [3, 4]], { device: 'ts-partial' });
    expect(() => x.matmul(x)).toThrow("BatchMatMul: the 'ts-partial' backend does not compute matmul kernels in float32 (it declares none)");
    const image = zeros([1, 1, 2, 2], { device: 'ts-partial' });
    expect(() => conv2d(image, image)).toThrow("Conv2D: the 'ts-partial' backend does not compute conv kernels in float32");
    expect(x.add(x).toArray()).toEqual([[2, 4], [6, 8]]); // the rest works
  });
});

describe('the seeded streams', () => {
  it('rand, randn and dropout follow manualSeed and resume from getRngState', () => {
    manualSeed(11);
    const a = [rand([5]).dataSync(), randn([4]).dataSync(), dropout(ones([6]), 0.5).dataSync()].map((t) => Array.from(t));
    manualSeed(11);
    rand([5]);
    const state = getRngState();
    const b1 = Array.from(randn([4]).dataSync());
    manualSeed(999);
    setRngState(state);
    expect(Array.from(randn([4]).dataSync())).toEqual(b1);
    expect(b1).toEqual(a[1]);
    expect(Array.from(dropout(ones([6]), 0.5).dataSync())).toEqual(a[2]);
    expect(() => setRngState([1, 2, 3, 4])).toThrow(/setRngState: expected the 8 numbers/);
  });

  it('draws look uniform and normal: moments of 200,000 samples', () => {
    manualSeed(5);
    const u = rand([200_000], { dtype: 'float64' }).dataSync();
    const z = randn([200_000], { dtype: 'float64' }).dataSync();
    const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(0.003);
    expect(Math.abs(mean(Array.from(u, (v) => v * v)) - 1 / 3)).toBeLessThan(0.003);
    expect(Math.abs(mean(z))).toBeLessThan(0.01);
    expect(Math.abs(mean(Array.from(z, (v) => v * v)) - 1)).toBeLessThan(0.01);
    const kept = dropout(full([100_000], 1, { dtype: 'float64' }), 0.25).dataSync();
    const frac = Array.from(kept).filter((v) => v !== 0).length / kept.length;
    expect(Math.abs(frac - 0.75)).toBeLessThan(0.01);
    expect(new Set(kept)).toEqual(new Set([0, 1 / 0.75]));
  });
});

describe('registerPostAccumulateGradHook', () => {
  it('runs after the gradient is accumulated, once per backward, and can be removed', () => {
    const w = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const seen: number[][] = [];
    const remove = registerPostAccumulateGradHook(w, (p) => { seen.push(Array.from(p.grad!.dataSync())); });
    // w is used twice: the hook sees the summed gradient, after both contributions.
    w.mul(2).add(w.mul(w)).sum().backward();
    expect(seen).toEqual([[4, 6, 8]]);
    w.sum().backward();
    expect(seen).toEqual([[4, 6, 8], [5, 7, 9]]);
    remove();
    w.sum().backward();
    expect(seen.length).toBe(2);
    expect(() => registerPostAccumulateGradHook(w.mul(2), () => {})).toThrow(/only leaf tensors/);
    expect(() => registerPostAccumulateGradHook(zeros([2]), () => {})).toThrow(/doesn't require grad/);
  });
});
