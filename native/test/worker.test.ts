// The addon is context-aware: it loads and computes inside worker_threads too, so training can run
// off a server's event loop.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

const addonPath = fileURLToPath(new URL('../build/Release/nodegrad.node', import.meta.url));
const built = existsSync(addonPath);
const suite = built ? describe : describe.skip;

suite(`native addon in worker_threads${built ? '' : ' (skipped: the addon is not built)'}`, () => {
  it('two workers load the addon and compute exp, with their own handles', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addonPath);
      const x = addon.fromArray(Float32Array.from([0, 1, 2, workerData.k]), [4], 'float32');
      const y = addon.unary('Exp', x);
      parentPort.postMessage({ y: Array.from(addon.toArray(y)), live: addon.memoryStats().liveHandles });
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
