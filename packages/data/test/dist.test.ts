import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

// The worker entry must also run from the compiled package (plain Node, no tsx), as the CLI uses it.
const pkg = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe('compiled dist', () => {
  it('loads the same batches with workers 0 and 1 in plain Node', () => {
    execFileSync(process.execPath, [tsc, '-b', pkg], { stdio: 'pipe' });
    const dir = mkdtempSync(join(tmpdir(), 'nodegrad-dist-'));
    try {
      const script = join(dir, 'run.mjs');
      writeFileSync(script, `
        import { mnist, DataLoader } from ${JSON.stringify(pathToFileURL(join(pkg, 'dist/index.js')).href)};
        const ds = mnist('val', { limit: 70, transform: [{ name: 'randomCrop', size: 28, padding: 3 }] });
        const out = [];
        for (const workers of [0, 1]) {
          const dl = new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 5, workers, device: 'ts' });
          dl.setEpoch(2);
          const sums = [];
          for await (const b of dl.batches()) sums.push([b.indices, Array.from(b.x.toTypedArray()).join(','), Array.from(b.y.toTypedArray())]);
          await dl.close();
          out.push(sums);
        }
        console.log(JSON.stringify({ batches: out[0].length, same: JSON.stringify(out[0]) === JSON.stringify(out[1]) }));
      `);
      const res = JSON.parse(execFileSync(process.execPath, [script], { encoding: 'utf8' })) as { batches: number; same: boolean };
      expect(res).toEqual({ batches: 5, same: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
