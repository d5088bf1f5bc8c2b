// The addon's 'cpu' device: its kernels object is the Kernels interface itself, keyed by the
// KernelNames of backend.ts (no other names, none missing), and its memory functions count
// tensors to the byte.
import { describe, expect, it } from 'vitest';
import { backends, getBackend, KERNEL_FAMILY, randn, type KernelName, type Raw } from '@nodegrad/autograd';
import { describeBuild, memoryStats } from '@nodegrad/native';
import { loadAddon } from '../lib/load.js';

const loaded = loadAddon();
const status = backends().find((b) => b.name === 'cpu');
const suite = status?.available ? describe : describe.skip;
const why = status?.available ? '' : ` (skipped: ${status?.reason ?? 'cpu backend not registered'})`;

suite(`the addon's cpu device${why}`, () => {
  const cpu = () => loaded.addon!.cpu;

  it('exports exactly the KernelNames as its kernels, each a function', () => {
    const names = Object.keys(KERNEL_FAMILY) as KernelName[];
    const table = cpu().kernels as unknown as Record<string, unknown>;
    expect(Object.keys(table).sort()).toEqual([...names].sort());
    for (const k of Object.keys(table)) expect(typeof table[k], k).toBe('function');
    expect(cpu().name).toBe('cpu');
  });

  it('counts each tensor and its bytes from upload or kernel to free, and frees once', () => {
    const d = cpu();
    const before = d.memoryStats();
    const x = d.fromArray(new Float32Array(10), [2, 5], 'float32');
    const y = d.kernels.Cast(x, 'float64');
    expect(d.memoryStats().liveHandles - before.liveHandles).toBe(2);
    expect(d.memoryStats().liveBytes - before.liveBytes).toBe(40 + 80);
    d.free(y.buf);
    d.free(y.buf);
    expect(d.memoryStats().liveBytes - before.liveBytes).toBe(40);
    expect(() => d.kernels.Exp(y)).toThrow(/^Exp: argument 'x' was disposed/);
    d.free(x.buf);
    expect(d.memoryStats()).toMatchObject({ liveHandles: before.liveHandles, liveBytes: before.liveBytes });
  });

  it('is what @nodegrad/native reports: its build, and its live tensors through the ops', () => {
    expect(describeBuild().loaded).toBe(true);
    const before = memoryStats().liveHandles;
    const x = randn([1000], { device: 'cpu' });
    expect(memoryStats().liveHandles).toBe(before + 1);
    expect(cpu().memoryStats().liveHandles).toBe(before + 1);
    x.dispose();
    expect(memoryStats().liveHandles).toBe(before);
  });

  it('names the kernel and the argument when a handle is not a tensor', () => {
    const d = cpu();
    const x = d.fromArray(new Float32Array([1, 2]), [2], 'float32');
    expect(() => d.kernels.Add(x, { buf: 1, shape: [2], dtype: 'float32' })).toThrow(/^Add: argument 'b' is not a native tensor handle/);
    expect(() => d.kernels.Sum({ ...x, shape: [3] }, [0])).toThrow(/^Sum: argument 'x' has a shape that does not match its buffer/);
    expect(() => d.kernels.Add(x, d.fromArray(new Float64Array([1, 2]), [2], 'float64'))).toThrow(/^Add: 'a' is float32 \[.*\] but 'b' is float64 \[.*\]; both operands must have one dtype/);
  });

  // The backend's table passes a tensor as its bare handle with its dtype and shape in a slot of the
  // argument scratch (lib/backend.ts): the same results, the same errors, and no handle read without its slot.
  it('gives the same results and errors through the argument scratch as through Raw objects', () => {
    const d = cpu();
    const k = getBackend('cpu').kernels as unknown as Record<string, (...a: unknown[]) => Raw>;
    const x = d.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], 'float32');
    const y = d.fromArray(new Float32Array([10, 20, 30]), [3], 'float32');
    const fast = k.Add!(x, y), slow = d.kernels.Add(x, y);
    expect(fast.shape).toEqual([2, 3]);
    expect(Array.from(d.readSync(fast) as Float32Array)).toEqual(Array.from(d.readSync(slow) as Float32Array));
    // Rank 9 has no slot: it crosses as its Raw object.
    const deep = d.fromArray(new Float64Array([1, 2]), [1, 1, 1, 1, 1, 1, 1, 1, 2], 'float64');
    expect(Array.from(d.readSync(k.Exp!(deep)) as Float64Array)).toEqual([Math.exp(1), Math.exp(2)]);
    expect(() => k.Sum!({ ...x, shape: [4] }, [0])).toThrow(/^Sum: argument 'x' has a shape that does not match its buffer/);
    expect(() => k.Add!(x, d.fromArray(new Float64Array([1, 2, 3]), [3], 'float64'))).toThrow(/^Add: 'a' is float32 \[.*\] but 'b' is float64 \[.*\]; both operands must have one dtype/);
    expect(() => k.Add!(x, { ...y, dtype: 'float33' })).toThrow(/^Add: unknown dtype 'float33'/);
    d.free(y.buf);
    expect(() => k.Exp!(y)).toThrow(/^Exp: argument 'x' was disposed/);
    // A bare handle with no slot written for it is refused, not read with another call's shape.
    expect(() => (d.handleKernels.Exp as (a: unknown) => unknown)(x.buf)).toThrow(/^Exp: argument 'x' must be a tensor \(a bare handle crosses with its shape and dtype/);
    for (const t of [x, fast, slow, deep]) d.free(t.buf);
  });
});
