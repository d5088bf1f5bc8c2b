// The addon is context-aware: it loads and computes inside worker_threads too, so training can run
// off a server's event loop.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { runChild } from './child.js';

const addonPath = fileURLToPath(new URL('../build/Release/nodegrad.node', import.meta.url));
const built = existsSync(addonPath);
const suite = built ? describe : describe.skip;

suite(`native addon in worker_threads${built ? '' : ' (skipped: the addon is not built)'}`, () => {
  it('two workers load the addon and compute exp, with their own handles', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addonPath);
      const x = addon.cpu.fromArray(Float32Array.from([0, 1, 2, workerData.k]), [4], 'float32');
      const y = addon.cpu.kernels.Exp(x);
      parentPort.postMessage({ y: Array.from(addon.cpu.readSync(y)), live: addon.cpu.memoryStats().liveHandles });
    `;
    const run = (k: number) => new Promise<{ y: number[]; live: number }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { addonPath, k } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const [a, b] = await Promise.all([run(3), run(4)]);
    a.y.forEach((v, i) => expect(Math.abs(v / Math.exp(i) - 1)).toBeLessThan(1e-6));
    expect(b.y[3]).toBeCloseTo(Math.exp(4), 4);
    expect(a.live).toBeGreaterThanOrEqual(2);
  });
});

// The example trains in a worker on the built packages (plain JS), as a deployed server would.
const distBuilt = existsSync(fileURLToPath(new URL('../../packages/nn/dist/index.js', import.meta.url)));
const trained = built && distBuilt ? describe : describe.skip;
trained(`training in a worker thread${distBuilt ? '' : ' (skipped: run npm run build first; the worker runs the built packages)'}`, () => {
  it('examples/worker_training.ts: the loss falls while the main event loop keeps ticking', { timeout: 120_000 }, async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const r = await runChild('npx', ['tsx', 'examples/worker_training.ts', '--steps', '8'], { cwd: root });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(summary.steps).toBe(8);
    expect(summary.last).toBeLessThan(summary.first * 0.5);
    expect(summary.ticks).toBeGreaterThan(0); // the main thread ran timers during training
    expect(summary.tensors).toBe(122); // the state dict crossed back: 62 parameters + 60 BN buffers
  });
});
