// Runs a test program under `mpirun -np N` (each rank: node with tsx, so the packages load from
// source; in the GPU kit, NODEGRAD_KIT_RANKS names the folder of the rank programs bundled as
// .mjs) and reads the JSON each rank reports (ranks/report.ts). Whether MPI can run here, and why
// not; the suites of two ranks on one device, skipped where it is missing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backends } from '@nodegrad/autograd';
import { describeBuild, registerCudaEmulation } from '@nodegrad/native';
import { describe } from 'vitest';
import { runChild } from '../../../native/test/child.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let mpiReason: string | undefined;

/** Why the MPI tests cannot run here, or '' when they can. NODEGRAD_REQUIRE_MPI=1 (CI) makes a reason a failure. */
export function mpiMissing(): string {
  mpiReason ??= (() => {
    const f = describeBuild().features.mpi;
    if (!f.enabled) return `the addon has no MPI: ${f.reason}`;
    const r = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `mpirun does not run (${r.error?.message ?? r.stderr}); install openmpi-bin`;
    return '';
  })();
  return mpiReason;
}

/**
 * Registers `title [device]`, a suite of 2 ranks whose tensors live on `device`: skipped, naming
 * why, where MPI or the device is missing ('cuda:0' needs a GPU; the GPU kit runs it). 'cpu' and
 * 'cuda-emu' (the host's emulation of a GPU) are this host's own: under NODEGRAD_REQUIRE_MPI (CI)
 * their suites run, and fail, rather than skip.
 */
export function describeOnDevice(device: string, title: string, fn: () => void): void {
  let why = mpiMissing();
  if (!why) {
    if (device === 'cuda-emu') registerCudaEmulation();
    const b = backends().find((x) => x.name === device);
    if (!b?.available) why = `'${device}' is unavailable: ${b?.reason ?? 'not registered'}`;
  }
  const required = process.env.NODEGRAD_REQUIRE_MPI === '1' && (device === 'cpu' || device === 'cuda-emu');
  const skip = why !== '' && !required;
  (skip ? describe.skip : describe)(`${title} [${device}]${skip ? ` (skipped: ${why})` : ''}`, fn);
}

export interface RankRun {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Each rank's report, by rank. */
  ranks: Record<string, unknown>[];
}

/** `mpirun -np np node --import tsx <program>` from the repository root; np 0: node alone, no mpirun. */
export async function mpirun(np: number, program: string, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<RankRun> {
  const t0 = performance.now();
  const reports = mkdtempSync(join(tmpdir(), 'nodegrad-ranks-'));
  const kit = process.env.NODEGRAD_KIT_RANKS;
  const node = kit ? [process.execPath, join(kit, basename(program).replace(/\.ts$/, '.mjs'))]
    : [process.execPath, '--import', 'tsx', join(REPO, program)];
  const [cmd, ...args] = np === 0 ? node : ['mpirun', '-np', String(np), '--oversubscribe', '--bind-to', 'none', ...node];
  const r = await runChild(cmd!, args, {
    cwd: REPO, timeout: timeoutMs,
    env: {
      ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMP_NUM_THREADS: '1',
      NODE_NO_WARNINGS: '1', NODEGRAD_RANK_REPORTS: reports, ...env,
    },
  });
  const ranks: Record<string, unknown>[] = [];
  for (const f of readdirSync(reports)) ranks[Number(/\d+/.exec(f)![0])] = JSON.parse(readFileSync(join(reports, f), 'utf8')) as Record<string, unknown>;
  rmSync(reports, { recursive: true, force: true });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0, ranks };
}
