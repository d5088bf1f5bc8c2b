/**
 * Exact resume: a run SIGKILLed mid-epoch and continued with --resume ends with the same weights,
 * bit for bit, as the same run uninterrupted, and the same metrics (timings aside).
 */
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors } from '@nodegrad/nn';
import { SMALL, runCli } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// 3 epochs of 16 steps, a checkpoint every 5 steps (so mid-epoch ones exist), a step schedule
// with warm-up and Adam-free SGD momentum state: everything a resume has to restore.
const RUN = [...SMALL, '--limit-train', '512', '--limit-val', '200', '--epochs', '3', '--batch-size', '32',
  '--lr', '0.05', '--checkpoint-every', '5', '--seed', '7'];

const rows = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => { const { seconds: _s, images_per_s: _i, ...rest } = JSON.parse(l); return rest; });

async function expectSameWeights(a: string, b: string): Promise<void> {
  const ta = (await loadSafetensors(join(a, 'last.safetensors'), { device: 'ts' })).tensors;
  const tb = (await loadSafetensors(join(b, 'last.safetensors'), { device: 'ts' })).tensors;
  expect(Object.keys(tb).sort()).toEqual(Object.keys(ta).sort());
  const differing = Object.keys(ta).filter((k) => {
    const x = ta[k]!.toTypedArray();
    const y = tb[k]!.toTypedArray();
    // Compare the bytes: bit for bit, NaN and -0 included.
    return Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) !== 0;
  });
  expect(differing).toEqual([]);
}

describe('nodegrad train --resume', () => {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const uninterrupted = runCli(['train', ...RUN, '--out', a]);

  it('continues a run killed mid-epoch (SIGKILL) to the same final weights, bit for bit', async () => {
    let killedAt = '';
    // Kill right after the first mid-epoch checkpoint of epoch 2: later steps of that epoch are lost.
    const killed = await runCli(['train', ...RUN, '--out', b], (all, child) => {
      const m = /checkpoint: epoch 2 step (\d+)\/16/.exec(all);
      if (m && !killedAt) { killedAt = m[0]; child.kill('SIGKILL'); }
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAt).not.toBe('');
    expect(rows(b).map((r) => r.epoch)).toEqual([1]);

    const resumed = await runCli(['train', '--resume', b, '--seed', '7']);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    // Checkpoints fall every 5 global steps: epoch 2's are its steps 4, 9 and 14.
    const at = /resuming .* at epoch 2, step (\d+) of 16/.exec(resumed.stdout);
    expect(killedAt).toContain(`step ${at?.[1]}/16`);

    const full = await uninterrupted;
    expect(full.code).toBe(0);
    await expectSameWeights(a, b);
    expect(rows(b)).toEqual(rows(a));
    const bestA = await loadSafetensors(join(a, 'best.safetensors'), { device: 'ts' });
    const bestB = await loadSafetensors(join(b, 'best.safetensors'), { device: 'ts' });
    expect(bestB.metadata).toEqual(bestA.metadata);
  }, 180_000);

  it('ignores what a kill during a checkpoint write leaves behind (a newer state file, a temp file)', async () => {
    await uninterrupted;
    const c = join(dir, 'c');
    rmSync(c, { recursive: true, force: true });
    // Kill in epoch 3, then fake the debris of a checkpoint write killed half-way.
    const killed = await runCli(['train', ...RUN, '--out', c], (all, child) => {
      if (/checkpoint: epoch 3 step/.test(all)) child.kill('SIGKILL');
    });
    expect(killed.signal).toBe('SIGKILL');
    const state = readdirSync(c).find((f) => f.startsWith('last.state.'))!;
    copyFileSync(join(c, state), join(c, 'last.state.e3s99.safetensors'));
    writeFileSync(join(c, 'last.state.e3s98.safetensors'), 'half a file');
    writeFileSync(join(c, '.last.safetensors.123.abcd.tmp'), 'half a file');
    const resumed = await runCli(['train', '--resume', c]);
    expect(resumed.code).toBe(0);
    await expectSameWeights(a, c);
    expect(readdirSync(c).filter((f) => f.endsWith('.tmp') || f.startsWith('last.state.'))).toEqual(['last.state.e3s0.safetensors']);
  }, 180_000);
});
