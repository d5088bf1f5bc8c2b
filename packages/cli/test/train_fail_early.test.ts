/**
 * Training that fails loudly and early: a diverged run exits 1 and never saves non-finite weights;
 * an unusable --out, a broken data file or an unusable image folder fails before the first step
 * in one line; too many threads are lowered with a warning; a resumed run that cannot or need not
 * continue says why.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensor } from '@nodegrad/autograd';
import { loadSafetensors, parseSafetensors, serializeSafetensors } from '@nodegrad/nn';
import { checkResumeFlags, resolveConfig } from '../src/train/config.js';
import { nonFiniteTensors } from '../src/train/finite.js';
import { BIN, SMALL, runCli, type Result } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-fail-early-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY = [...SMALL, '--limit-train', '128', '--limit-val', '64', '--epochs', '1', '--batch-size', '32'];
const noStack = (r: Result) => expect(r.stderr).not.toMatch(/\n\s+at /);
const weights = async (f: string) => (await loadSafetensors(f, { device: 'ts' })).tensors;

describe('a diverging run (lr 1e6)', () => {
  const DIVERGE = [...SMALL, '--limit-train', '512', '--limit-val', '128', '--batch-size', '32', '--epochs', '1', '--lr', '1e6'];

  it('stops at the first non-finite loss, exit 1, naming the step and the last finite loss; nothing is left behind', async () => {
    const out = join(dir, 'diverge');
    const r = await runCli(['train', ...DIVERGE, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nodegrad train: the training loss is not finite at epoch 1 step \d+ of 16; the last finite loss was [\d.e+]+ at epoch 1 step \d+\. Stopped before that step's update; no checkpoint was written\. Lower --lr/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).not.toContain('(best)');
    // The folder was created for the run and stayed empty: it is removed.
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('never writes a checkpoint with non-finite weights; eval refuses such weights', async () => {
    const out = join(dir, 'diverge-ckpt');
    const r = await runCli(['train', ...DIVERGE, '--checkpoint-every', '2', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nodegrad train: the model's weights hold NaN or Inf at epoch 1 step \d+ \(conv1\.weight, .* and \d+ more\); they were not saved: \S+last\.safetensors holds the checkpoint of epoch 1 step \d+\./);
    noStack(r);
    expect(existsSync(join(out, 'best.safetensors'))).toBe(false);
    const last = await weights(join(out, 'last.safetensors'));
    expect(nonFiniteTensors(last)).toEqual([]);
    // eval on a file with one NaN says so, exit 1.
    const bad = join(dir, 'nan.safetensors');
    const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(out, 'last.safetensors'))));
    const w = Float32Array.from(tensors['layer2.0.conv1.weight']!.toTypedArray() as Float32Array);
    w[3] = NaN;
    tensors['layer2.0.conv1.weight'] = tensor(Array.from(w), { device: 'ts' }).reshape(tensors['layer2.0.conv1.weight']!.shape);
    writeFileSync(bad, serializeSafetensors(tensors));
    const e = await runCli(['eval', '--weights', bad, ...SMALL, '--limit-val', '64']);
    expect(e.code).toBe(1);
    expect(e.stderr.trim()).toBe(`nodegrad eval: cannot evaluate ${bad}: 1 of ${Object.keys(tensors).length} tensors hold NaN or Inf (layer2.0.conv1.weight); the run that wrote it diverged`);
  }, 60_000);
});

describe('--out is checked before training, and created only once the inputs check out', () => {
  const early = (r: Result) => {
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('training resnet18');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    noStack(r);
  };

  it('a file, or a path through a file', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await runCli(['train', ...TINY, '--out', file]);
    early(r);
    expect(r.stderr.trim()).toBe(`nodegrad train: --out ${file}: it is a file, not a folder`);
    const r2 = await runCli(['train', ...TINY, '--out', join(file, 'run')]);
    early(r2);
    expect(r2.stderr.trim()).toBe(`nodegrad train: --out ${join(file, 'run')}: its parent ${file} is a file, not a folder`);
  }, 60_000);

  it('a failing input (missing --weights) leaves no folder behind', async () => {
    const out = join(dir, 'never');
    const r = await runCli(['train', ...TINY, '--weights', join(dir, 'missing.safetensors'), '--out', out]);
    expect(r.code).toBe(1);
    noStack(r);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  // Root writes into a read-only folder; the test then runs the command as 'nobody', if it can.
  const root = process.getuid?.() === 0;
  const nobody = { uid: 65534, gid: 65534 };
  const nobodyCanRun = !root || spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)})`], nobody).status === 0;
  it.skipIf(!nobodyCanRun)(`a read-only folder${nobodyCanRun ? '' : ' (skipped: running as root, and user nobody cannot read the repository)'}`, async () => {
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    chmodSync(dir, 0o755);
    chmodSync(ro, 0o555);
    const r = await runCli(['train', ...TINY, '--out', join(ro, 'run')], undefined, root ? nobody : undefined);
    early(r);
    expect(r.stderr.trim()).toBe(`nodegrad train: --out ${join(ro, 'run')}: its parent ${ro} is not writable (EACCES)`);
  }, 60_000);
});

describe('expected failures are one line (a stack trace only with --verbose)', () => {
  const cifar = join(dir, 'cifar');
  beforeAll(() => {
    mkdirSync(cifar);
    for (const f of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) {
      writeFileSync(join(cifar, `${f}.bin`), new Uint8Array(f === 'data_batch_2' ? 100 : 3073));
    }
  });

  it('a CIFAR-10 file of the wrong size', async () => {
    const r = await runCli(['train', ...TINY, '--dataset', `cifar10:${cifar}`, '--out', join(dir, 'c1')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`nodegrad train: cifar10: ${join(cifar, 'data_batch_2.bin')} has 100 bytes, not a multiple of 3073 (1 label byte + 3072 pixel bytes per image)`);
    const v = await runCli(['train', '--verbose', ...TINY, '--dataset', `cifar10:${cifar}`, '--out', join(dir, 'c2')]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/^nodegrad train: cifar10: .* has 100 bytes[^\n]*\nDataError: [^\n]*\n\s+at /);
  }, 60_000);
});

describe('--threads beyond the cores', () => {
  it('is lowered to the core count with a warning that says why', async () => {
    const cores = availableParallelism();
    const r = await runCli(['train', ...TINY.filter((a, i, all) => a !== '--threads' && all[i - 1] !== '--threads'), '--threads', '64', '--out', join(dir, 'threads')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: --threads 64 is more than the ${cores} cores this process may use; using ${cores}`);
    expect(r.stdout).toContain(`, ${cores} threads,`);
  }, 60_000);
});

describe('image folders with broken files', () => {
  const root = join(dir, 'images');
  const png = (v: number) => sharp(Buffer.alloc(8 * 8 * 3, v), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
  beforeAll(async () => {
    for (const split of ['train', 'val']) {
      for (const cls of ['a', 'b']) {
        mkdirSync(join(root, split, cls), { recursive: true });
        for (let i = 0; i < (split === 'train' ? 3 : 2); i++) writeFileSync(join(root, split, cls, `${i}.png`), await png(cls === 'a' ? 40 + i : 200 - i));
      }
    }
    const jpeg = await sharp(Buffer.alloc(64 * 64 * 3, 90), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    writeFileSync(join(root, 'train', 'b', 'broken.jpg'), jpeg.subarray(0, jpeg.length - 40));
    writeFileSync(join(root, 'train', 'b', 'notes.txt'), 'not an image');
  });
  const run = (extra: string[], out: string) => runCli(['train', ...SMALL, '--dataset', `folder:${root}`, '--image-size', '8', '--batch-size', '2',
    '--epochs', '1', '--out', join(dir, out), ...extra]);

  it('by default, trains to the end without the truncated file, naming it and the non-image file in one warning each', async () => {
    const r = await run([], 'folder-skip');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: left out 1 of 11 images that cannot be used (--on-bad-image skip): ${join(root, 'train', 'b', 'broken.jpg')} is a truncated JPEG (no end-of-image marker)`);
    expect(r.stderr).toContain(`note: ignored 1 files that are not .png/.jpg/.jpeg: ${join(root, 'train', 'b', 'notes.txt')}`);
    expect(r.stdout).toContain('6 training / 4 validation images');
  }, 60_000);

  it('--on-bad-image fail: fails before the first step, in one line naming the file', async () => {
    const r = await run(['--on-bad-image', 'fail'], 'folder-fail');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe(`nodegrad train: ImageFolder: 1 file under ${join(root, 'train')} cannot be used: ${join(root, 'train', 'b', 'broken.jpg')} is a truncated JPEG (no end-of-image marker)`);
    expect(existsSync(join(dir, 'folder-fail'))).toBe(false);
  }, 60_000);

  it('a file that passes the scan but does not decode stops the run in one line naming it; an empty class folder is named', async () => {
    const other = join(dir, 'images-2');
    cpSync(root, other, { recursive: true });
    rmSync(join(other, 'train', 'b', 'broken.jpg'));
    rmSync(join(other, 'train', 'b', 'notes.txt'));
    // A JPEG's start and end markers around garbage: the scan passes it, the decoder cannot.
    writeFileSync(join(other, 'train', 'a', 'garbage.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 0xff, 0xd9]));
    const r = await runCli(['train', ...SMALL, '--dataset', `folder:${other}`, '--image-size', '8', '--batch-size', '7', '--epochs', '1', '--out', join(dir, 'g')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(new RegExp(`^nodegrad train: ImageFolder: cannot decode ${join(other, 'train', 'a', 'garbage.jpg')}: [^\\n]+$`));
    rmSync(join(other, 'train', 'a', 'garbage.jpg'));
    mkdirSync(join(other, 'train', 'c'));
    const e = await runCli(['train', ...SMALL, '--dataset', `folder:${other}`, '--image-size', '8', '--out', join(dir, 'g2')]);
    expect(e.code).toBe(1);
    expect(e.stderr.trim()).toBe(`nodegrad train: ImageFolder: no .png/.jpg/.jpeg file in the class folder ${join(other, 'train', 'c')} (every class needs at least one image, as in torchvision)`);
  }, 60_000);
});

describe('--resume edges', () => {
  const good = join(dir, 'good');
  const trained = runCli(['train', ...TINY, '--out', good]);
  const copy = async (name: string) => {
    expect((await trained).code).toBe(0);
    const d = join(dir, name);
    cpSync(good, d, { recursive: true });
    return d;
  };

  it('a run killed during its first checkpoint: resume says to start again, and starting again works', async () => {
    const d = await copy('first-write');
    // What a kill between the state file and the weights file's rename leaves.
    rmSync(join(d, 'last.safetensors'));
    for (const f of ['best.safetensors', 'metrics.jsonl', 'metrics.csv', 'plot.png']) rmSync(join(d, f));
    copyFileSync(join(good, 'last.safetensors'), join(d, '.last.safetensors.123.abcd.tmp'));
    const r = await runCli(['train', '--resume', d]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`nodegrad train: --resume ${d}: no checkpoint was completed there (the run stopped before writing its first one); ` +
      `start the run again with the same flags and --out ${d}`);
    const again = await runCli(['train', ...TINY, '--out', d]);
    expect(again.code).toBe(0);
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);

  it('a finished run says so and exits 0; a larger --epochs extends it on a schedule recomputed for the new length', async () => {
    const d = await copy('finished');
    const r = await runCli(['train', '--resume', d]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/is finished: 1 of 1 epochs done, best validation accuracy [\d.]+% at epoch 1\. To train on, resume with --epochs N \(N > 1\)\./);
    expect(r.stdout).not.toContain('epoch 1/1');
    const x = await runCli(['train', '--resume', d, '--epochs', '2']);
    expect(x.code).toBe(0);
    expect(x.stdout).toContain('extending the run from 1 to 2 epochs');
    const rows = readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; lr: number });
    expect(rows.map((row) => row.epoch)).toEqual([1, 2]);
    // The cosine schedule for 2 epochs ends at 0; the 1-epoch one, run on, would be back at its peak.
    expect(rows[1]!.lr).toBeLessThan(1e-9);
    const again = await runCli(['train', '--resume', d]);
    expect(again.stdout).toContain('is finished: 2 of 2 epochs done');
  }, 60_000);

  it('a smaller --epochs is refused', () => {
    const { config } = resolveConfig('train', { epochs: 3, device: 'ts' });
    expect(() => checkResumeFlags('train', config, { epochs: 2 }, 'runs/x')).toThrow("--epochs 2 is fewer than the resumed run's 3 (recorded in runs/x); a run can be extended, not shortened");
    expect(checkResumeFlags('train', config, { epochs: 5 }, 'runs/x').epochs).toBe(5);
  });
});
