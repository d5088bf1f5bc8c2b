// oneDNN on the 'cpu' device: each primitive is created once per shape and cached, and the thread
// count is fixed before the first one exists. (The kernels' results against 'ts' are checked on
// every backend: packages/autograd/test/contract_matmul_conv.test.ts.)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backends, getBackend, type Conv2DParams, type Raw } from '@nodegrad/autograd';
import { describeBuild } from '@nodegrad/native'; // importing it registers the 'cpu' backend
import { buildDir, loadAddon } from '../lib/load.js';

const cpu = backends().find((b) => b.name === 'cpu');
const onednn = describeBuild().features.onednn;
const ok = cpu?.available && onednn.enabled;
const suite = ok ? describe : describe.skip;
const why = !cpu?.available ? ` (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`
  : !onednn.enabled ? ` (skipped: built without oneDNN: ${onednn.reason})` : '';
const addonFile = join(buildDir(), 'Release', 'nodegrad.node');

const k = () => getBackend('cpu').kernels;
const free = (x: Raw) => getBackend('cpu').free?.(x.buf);
const operand = (shape: number[]) =>
  getBackend('cpu').fromArray(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), shape, 'float32');

suite(`cpu backend: oneDNN primitive cache and thread count${why}`, () => {
  it('creates a primitive once per shape: repeating a call adds none', () => {
    const addon = loadAddon().addon!;
    // A grouped, strided, dilated conv where oneDNN picks blocked layouts (reorders run), and a matmul.
    const p: Conv2DParams = { stride: [2, 2], padding: [2, 2], dilation: [2, 2], groups: 2 };
    const x = operand([2, 16, 10, 9]), w = operand([32, 8, 3, 3]);
    const a = operand([2, 7, 5]), b = operand([2, 5, 3]);
    free(k().Conv2D(x, w, p));
    free(k().BatchMatMul(a, b, false, false));
    const before = addon.primitiveCacheStats();
    for (let i = 0; i < 3; i++) {
      free(k().Conv2D(x, w, p));
      free(k().BatchMatMul(a, b, false, false));
    }
    expect(addon.primitiveCacheStats().created).toBe(before.created);
    expect(before.entries).toBeGreaterThan(0);
  });

  it('refuses a new thread count once primitives exist, naming why', () => {
    const addon = loadAddon().addon!;
    expect(addon.getNumThreads()).toBeGreaterThanOrEqual(1);
    expect(() => addon.setNumThreads(1)).toThrow(/setNumThreads: the thread count must be set before the first/);
    expect(() => addon.setNumThreads(0)).toThrow(/at least 1/);
  });
});

// A fresh process, so that no primitive exists yet: OMP_NUM_THREADS is honoured, setNumThreads
// works before the first primitive and is refused after it.
suite(`cpu backend: thread count in a fresh process${why}`, () => {
  it('honours OMP_NUM_THREADS, then setNumThreads before the first primitive, and refuses it after', () => {
    const script = `
      const a = require(${JSON.stringify(addonFile)});
      const out = [a.getNumThreads()];
      a.setNumThreads(1);
      out.push(a.getNumThreads());
      const x = a.cpu.fromArray(new Float32Array(16), [1, 1, 4, 4], 'float32'), w = a.cpu.fromArray(new Float32Array(9), [1, 1, 3, 3], 'float32');
      a.cpu.kernels.Conv2D(x, w, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 });
      try { a.setNumThreads(2); out.push('not refused'); } catch (e) { out.push(e.message); }
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, OMP_NUM_THREADS: '3' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [fromEnv, set, refused] = JSON.parse(r.stdout) as [number, number, string];
    expect(fromEnv).toBe(3);
    expect(set).toBe(1);
    expect(refused).toMatch(/setNumThreads: the thread count must be set before the first matmul or convolution/);
  });
});
