/**
 * The training loop and non-finite losses, in process: a batch with a NaN pixel gives a NaN loss.
 * --on-nan stop ends the run naming the step; --on-nan skip leaves that batch no trace (weights,
 * optimizer state and BatchNorm statistics), so the run equals one that never saw the batch.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GradScaler } from '@nodegrad/nn';
import { DataLoader, TensorDataset } from '@nodegrad/data';
import { Progress } from '../src/report/index.js';
import { resolveConfig } from '../src/train/config.js';
import { nonFiniteTensors } from '../src/train/finite.js';
import { trainLoop, type LoopState } from '../src/train/loop.js';
import { buildModel, makeOptimizer } from '../src/train/setup.js';
import { DEVICE } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-nonfinite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const B = 4;
const PIXELS = 8 * 8;

/** `batches` batches of 4 random 1x8x8 images; the batches listed in `nan` get a NaN pixel. */
function data(batches: number, nan: number[]): { x: Float32Array; y: number[] } {
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const x = Float32Array.from({ length: batches * B * PIXELS }, rand);
  for (const b of nan) x[b * B * PIXELS + 5] = NaN;
  return { x, y: Array.from({ length: batches * B }, (_, i) => i % 2) };
}

const without = (d: { x: Float32Array; y: number[] }, batch: number) => ({
  x: Float32Array.from([...d.x.subarray(0, batch * B * PIXELS), ...d.x.subarray((batch + 1) * B * PIXELS)]),
  y: [...d.y.slice(0, batch * B), ...d.y.slice((batch + 1) * B)],
});

/** Trains one epoch in order (no shuffle, constant lr); returns the state dict and what was logged. */
async function train(d: { x: Float32Array; y: number[] }, onNan: 'stop' | 'skip', out: string) {
  const { config: cfg } = resolveConfig('train', {
    device: DEVICE, widths: '4,8,8,8', 'batch-size': B, epochs: 1, lr: 0.1, schedule: 'none', 'warmup-epochs': 0,
    threads: 1, out, 'on-nan': onNan, 'checkpoint-every': 1000,
  });
  const { model } = buildModel(cfg, { channels: 1, height: 8, width: 8 }, 2);
  const optimizer = makeOptimizer(cfg, model.parameters());
  const ds = new TensorDataset(d.x, d.y, { shape: [1, 8, 8] });
  const trainLoader = new DataLoader(ds, { batchSize: B, device: cfg.device });
  const valLoader = new DataLoader(new TensorDataset(d.x.subarray(B * PIXELS, 2 * B * PIXELS), d.y.slice(B, 2 * B), { shape: [1, 8, 8] }), { batchSize: B, device: cfg.device });
  const logged: string[] = [];
  const progress = new Progress({ epochs: 1, stream: { write: (s: string) => { logged.push(s); return true; } }, tty: false });
  const state: LoopState = { position: { epoch: 0, step: 0, globalStep: 0 }, accum: { lossSum: 0, correct: 0, seen: 0, seconds: 0 }, bestAcc: -1, history: [] };
  mkdirSync(out, { recursive: true });
  try {
    const end = await trainLoop({ cfg, model, optimizer, scheduler: null, scaler: new GradScaler({ enabled: false }), trainLoader, valLoader, numClasses: 2, progress }, state);
    return { end, dict: model.stateDict(), log: logged.join(''), optimizer };
  } finally {
    await trainLoader.close();
    await valLoader.close();
  }
}

const values = (dict: Record<string, { toTypedArray(): ArrayLike<number | bigint> }>) =>
  Object.fromEntries(Object.entries(dict).map(([k, t]) => [k, Array.from(t.toTypedArray(), Number)]));

describe('the training loop with a NaN loss', () => {
  it('--on-nan stop: stops before the bad step, naming it and the last finite loss', async () => {
    await expect(train(data(5, [2]), 'stop', join(dir, 'stop')))
      .rejects.toThrow(/^the training loss is not finite at epoch 1 step 3 of 5; the last finite loss was [\d.e+-]+ at epoch 1 step 2\. Stopped before that step's update; no checkpoint was written/);
  });

  it('--on-nan skip: a skipped batch leaves no trace; the weights equal a run without it, bit for bit', async () => {
    const d = data(5, [2]);
    const skipped = await train(d, 'skip', join(dir, 'skip'));
    expect(skipped.log).toContain('warning: skipped 1 of 5 steps of epoch 1 whose loss was NaN or Inf (--on-nan skip)');
    expect(nonFiniteTensors(skipped.dict)).toEqual([]);
    const clean = await train(without(d, 2), 'skip', join(dir, 'clean'));
    // Running statistics and num_batches_tracked included: the NaN batch's forward was undone.
    expect(values(skipped.dict)).toEqual(values(clean.dict));
    // The epoch's loss averages the steps that ran.
    expect(skipped.end.history[0]!.train_loss).toBe(clean.end.history[0]!.train_loss);
  });

  it('--on-nan skip: an epoch of nothing but non-finite steps stops the run', async () => {
    await expect(train(data(2, [0, 1]), 'skip', join(dir, 'all'))).rejects.toThrow(/^every step of epoch 1 had a non-finite loss and was skipped/);
  });
});
