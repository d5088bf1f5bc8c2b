/**
 * End to end: `nodegrad train` on a slice of MNIST through the 'cpu' backend (when built) learns
 * (validation accuracy far above the 10% of chance), and writes parseable metrics, a valid PNG
 * and checkpoints that load into a fresh model. Then `nodegrad eval` agrees with the run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, resnet18 } from '@nodegrad/nn';
import { readPngInfo } from '../src/report/index.js';
import { METRIC_KEYS } from '../src/train/files.js';
import { DEVICE, SMALL, runCli } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('nodegrad train (end to end)', () => {
  const out = join(dir, 'run');
  const trained = runCli(['train', ...SMALL, '--limit-train', '1024', '--limit-val', '300', '--epochs', '2',
    '--batch-size', '32', '--lr', '0.1', '--out', out]);

  it('trains to well above chance and says where the outputs went', async () => {
    const r = await trained;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`plot:       ${join(out, 'plot.png')}`);
    expect(r.stdout).toContain(join(out, 'best.safetensors'));
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r.epoch)).toEqual([1, 2]);
    for (const row of rows) expect(Object.keys(row)).toEqual([...METRIC_KEYS]);
    // 300 validation digits, 10 classes: chance is 10%; this run measured 85%.
    expect(rows[1].val_acc).toBeGreaterThan(0.5);
    expect(rows[1].train_loss).toBeLessThan(rows[0].train_loss);
    const csv = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe(METRIC_KEYS.join(','));
    expect(csv.slice(1).map((l) => l.split(',').map(Number))).toEqual(rows.map((r) => METRIC_KEYS.map((k) => r[k])));
  }, 120_000);

  it('writes a valid PNG plot', async () => {
    await trained;
    const info = readPngInfo(readFileSync(join(out, 'plot.png')));
    expect(info.width).toBeGreaterThan(100);
    expect(info.height).toBeGreaterThan(100);
  }, 120_000);

  it('saves best.safetensors, which loads strictly into a fresh model and scores the best val_acc', async () => {
    await trained;
    const { tensors, metadata } = await loadSafetensors(join(out, 'best.safetensors'));
    const model = resnet18({ numClasses: 10, inChannels: 1, smallImageStem: true, widths: [8, 16, 32, 64] });
    expect(() => model.loadStateDict(tensors)).not.toThrow();
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const best = Math.max(...rows.map((r) => r.val_acc));
    expect(Number(metadata!.val_acc)).toBe(best);
    // Both files record the architecture, so eval rebuilds the model without --model, --widths or --small-stem.
    expect(metadata).toMatchObject({ model: 'resnet18', widths: '8,16,32,64', small_stem: 'on' });
    expect((await loadSafetensors(join(out, 'last.safetensors'))).metadata).toMatchObject({ model: 'resnet18', widths: '8,16,32,64', small_stem: 'on' });
    // eval recomputes the accuracy from the file: the same 300 digits, the same weights.
    const ev = await runCli(['eval', '--weights', join(out, 'best.safetensors'), '--device', DEVICE, '--limit-val', '300', '--json']);
    expect(ev.code).toBe(0);
    const res = JSON.parse(ev.stdout.trim().split('\n').at(-1)!);
    expect(res.samples).toBe(300);
    expect(res.accuracy).toBeCloseTo(best, 6);
    const m: number[][] = res.confusion;
    expect(m.flat().reduce((a, b) => a + b, 0)).toBe(300);
    expect(m.reduce((a, r, i) => a + r[i]!, 0)).toBe(Math.round(best * 300));
  }, 120_000);
});
