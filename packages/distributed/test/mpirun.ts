// Runs a test program under `mpirun -np N` (each rank: node with tsx, so the packages load from
// source) and parses the JSON line each rank prints. Whether MPI can run here, and why not.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeBuild } from '@nodegrad/native';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Why the MPI tests cannot run here, or '' when they can. NODEGRAD_REQUIRE_MPI=1 (CI) makes a reason a failure. */
export function mpiMissing(): string {
  const f = describeBuild().features.mpi;
  if (!f.enabled) return `the addon has no MPI: ${f.reason}`;
  const r = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `mpirun does not run (${r.error?.message ?? r.stderr}); install openmpi-bin`;
  return '';
}

export interface RankRun {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Each rank's JSON line, by rank. */
  ranks: Record<string, unknown>[];
}

/** `mpirun -np np node --import tsx <program>` from the repository root; np 0: node alone, no mpirun. */
export function mpirun(np: number, program: string, env: Record<string, string> = {}, timeoutMs = 120_000): RankRun {
  const t0 = performance.now();
  const node = [process.execPath, '--import', 'tsx', join(REPO, program)];
  const [cmd, ...args] = np === 0 ? node : ['mpirun', '-np', String(np), '--oversubscribe', '--bind-to', 'none', ...node];
  const r = spawnSync(cmd!, args, {
    cwd: REPO, encoding: 'utf8', timeout: timeoutMs,
    env: {
      ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMP_NUM_THREADS: '1',
      NODE_NO_WARNINGS: '1', ...env,
    },
  });
  const ranks: Record<string, unknown>[] = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as Record<string, unknown>;
    ranks[(o.rank as number | undefined) ?? ranks.length] = o;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0, ranks };
}
