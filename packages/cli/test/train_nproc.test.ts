// `nodegrad train --nproc 2`: the command runs itself as 2 ranks under mpirun, data-parallel with
// SyncBatchNorm; rank 0 alone prints and writes one set of outputs. Killing a rank mid-epoch ends
// the job non-zero within 10 s, and `--resume` (which relaunches with the recorded --nproc)
// finishes the run with the same metrics and weights as a run never interrupted.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mpiMissing } from '../../distributed/test/mpirun.js';
import { runCli } from './cli_helpers.js';

const missing = mpiMissing();
const skip = missing !== '' && process.env.NODEGRAD_REQUIRE_MPI !== '1';
const ROOT = mkdtempSync(join(tmpdir(), 'nodegrad-nproc-'));
const RUN = ['--nproc', '2', '--sync-bn', '--widths', '8,16,32,64', '--limit-train', '1280', '--limit-val', '301',
  '--epochs', '2', '--batch-size', '32', '--checkpoint-every', '5', '--device', 'cpu'];

/** The pid of rank `rank` of the job writing to `out` (its environment names the rank). */
function rankPid(out: string, rank: number): number | null {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(out)) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return Number(pid);
    } catch { /* gone */ }
  }
  return null;
}

const rows = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

(skip ? describe.skip : describe)(`nodegrad train --nproc 2${skip ? ` (skipped: ${missing})` : ''}`, () => {
  const whole = join(ROOT, 'whole');
  it('trains on 2 ranks and writes one set of outputs, from rank 0', async () => {
    const r = await runCli(['train', ...RUN, '--out', whole]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/^done: best validation accuracy/gm)).toHaveLength(1);
    expect(r.stdout).toContain('2 ranks of 16 images, SyncBatchNorm');
    // The output is a pipe here: the log form, with no terminal codes (mpirun gives rank 0 a pty).
    expect(r.stdout).not.toContain('\x1b[');
    expect(readdirSync(whole).sort()).toEqual(['best.safetensors', 'last.safetensors', 'last.state.e2s0.safetensors',
      'metrics.csv', 'metrics.jsonl', 'plot.png']);
    const m = rows(whole);
    expect(m.map((x) => x.epoch)).toEqual([1, 2]);
    // Validation over all 301 images, sharded 151 + 150: a multiple of 1/301.
    expect(Math.abs(m[1]!.val_acc! * 301 - Math.round(m[1]!.val_acc! * 301))).toBeLessThan(1e-9);
    expect(m[1]!.val_acc).toBeGreaterThan(0.5);
  }, 120_000);

  it('a killed rank ends the job non-zero within 10 s; --resume finishes it as if never stopped', async () => {
    const out = join(ROOT, 'killed');
    let killedAt = 0;
    const r = await runCli(['train', ...RUN, '--out', out], (all) => {
      if (killedAt || !/checkpoint: epoch 1 step 10\//.test(all)) return;
      const pid = rankPid(out, 1);
      if (pid) { killedAt = performance.now(); process.kill(pid, 'SIGKILL'); }
    });
    expect(killedAt).toBeGreaterThan(0);
    expect(r.code).not.toBe(0);
    expect(performance.now() - killedAt).toBeLessThan(10_000);
    const resumed = await runCli(['train', '--resume', out]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming .* at epoch 1, step (10|15) of 40/);
    expect(rows(out)).toEqual(rows(whole).map((x) => ({ ...x, seconds: expect.any(Number), images_per_s: expect.any(Number) })));
    expect(readFileSync(join(out, 'last.safetensors')).equals(readFileSync(join(whole, 'last.safetensors')))).toBe(true);
  }, 180_000);
});
