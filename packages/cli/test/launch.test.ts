// `nodegrad launch` on this host: 2 ranks of a script (test/fixtures/launch_rank.ts) form one job
// and see each other; when one rank is killed, or throws, mid-job the launcher exits non-zero
// within 10 s instead of hanging; the mpirun command line; usage errors.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mpirunArgs } from '../src/mpirun.js';
import { BIN, REPO } from './cli_helpers.js';
import { mpiMissing } from '../../distributed/test/mpirun.js';
import { runChild } from '../../../native/test/child.js';

const missing = mpiMissing();
const skip = missing !== '' && process.env.NODEGRAD_REQUIRE_MPI !== '1';
const SCRIPT = join(REPO, 'packages/cli/test/fixtures/launch_rank.ts');

/** `nodegrad launch ...args`; the ranks load TypeScript through NODE_OPTIONS, which mpirun passes on. */
async function launch(args: string[]) {
  const t0 = performance.now();
  const r = await runChild(process.execPath, ['--import', 'tsx', BIN, 'launch', ...args], {
    cwd: REPO, timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '--import tsx', NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '' },
  });
  return { ...r, ms: performance.now() - t0, lines: r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

(skip ? describe.skip : describe)(`nodegrad launch${skip ? ` (skipped: ${missing})` : ''}`, () => {
  it('runs 2 ranks of the script, passing its arguments; they all-reduce together', async () => {
    const r = await launch(['--nproc-per-node', '2', SCRIPT, 'a', '--b']);
    expect(r.status, r.stderr).toBe(0);
    const ranks = r.lines.sort((x, y) => (x.rank as number) - (y.rank as number));
    expect(ranks.map((o) => [o.rank, o.worldSize, o.sum])).toEqual([[0, 2, 3], [1, 2, 3]]);
    expect(ranks[0]!.args).toEqual(['a', '--b']);
  });

  it('exits non-zero within 10 s when a rank is killed while the other waits for it', async () => {
    const r = await launch(['--nproc-per-node', '2', SCRIPT, 'die']);
    expect(r.status).not.toBe(0);
    expect(r.ms).toBeLessThan(10_000);
    expect(r.stderr + r.stdout).toMatch(/process rank 1 .* exited on signal 9/);
  });

  it('SIGKILL of the launcher stops the ranks within 10 s; SIGINT stops them and exits 130', async () => {
    for (const sig of ['SIGKILL', 'SIGINT'] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'launch', '--nproc-per-node', '2', SCRIPT, 'linger'], {
        cwd: REPO, env: { ...process.env, NODE_OPTIONS: '--import tsx', NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '' },
      });
      let out = '', err = '';
      child.stderr.on('data', (d) => { err += String(d); });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      const pids = await new Promise<number[]>((resolve) => child.stdout.on('data', (d) => {
        out += String(d);
        const ranks = out.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { pid: number }).pid);
        if (ranks.length === 2) resolve(ranks);
      }));
      const t0 = performance.now();
      child.kill(sig);
      const code = await exited;
      const alive = () => pids.filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
      while (alive().length && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
      const left = alive();
      for (const p of left) process.kill(p, 'SIGKILL');
      expect(left, `${sig}: ${err}`).toEqual([]);
      if (sig === 'SIGINT') {
        expect(code).toBe(130);
        expect(err).toContain('nodegrad: stopped by SIGINT');
      }
    }
  }, 40_000);

  // The failing rank leaves without MPI_Finalize, which would wait for rank 0 in its barrier.
  it("exits non-zero within 10 s with the rank's error when a rank throws while the other waits for it", async () => {
    const r = await launch(['--nproc-per-node', '2', SCRIPT, 'throw']);
    expect(r.status).not.toBe(0);
    expect(r.ms).toBeLessThan(10_000);
    expect(r.stderr).toContain('Error: rank 1 gives up');
  });
});

describe('nodegrad launch: command line', () => {
  it('builds the mpirun command: root flag, binding, oversubscription, hostfile, exported variables', () => {
    expect(mpirunArgs(2, null, ['s.js', 'x'], true, 4, { OMP_NUM_THREADS: '2' })).toEqual([
      '--allow-run-as-root', '-np', '2', '--bind-to', 'none', '-x', 'OMP_NUM_THREADS', process.execPath, 's.js', 'x']);
    expect(mpirunArgs(8, 'hosts', ['s.js'], false, 4, {})).toEqual([
      '--hostfile', 'hosts', '--npernode', '8', '--bind-to', 'none', '--oversubscribe', process.execPath, 's.js']);
  });

  it('refuses a missing script and bad flags', async () => {
    const none = await runChild(process.execPath, ['--import', 'tsx', BIN, 'launch', '--nproc-per-node', '2'], { cwd: REPO });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('nodegrad launch: SCRIPT is required');
    const bad = await runChild(process.execPath, ['--import', 'tsx', BIN, 'launch', '--nproc-per-node', '0', 'x.js'], { cwd: REPO });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--nproc-per-node must be a positive integer (got '0')");
    const absent = await runChild(process.execPath, ['--import', 'tsx', BIN, 'launch', '--nproc-per-node', '2', 'absent.js'], { cwd: REPO });
    expect([absent.status, absent.stderr.trim()]).toEqual([1, 'nodegrad launch: SCRIPT absent.js: no such file']);
  });
});
