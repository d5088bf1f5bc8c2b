/**
 * The GPU kit (scripts/gpu) on a machine without a GPU: its bundles build and load, the dry run
 * reports no device, its test program (the repository's suites under mini_test.ts instead of
 * vitest) passes on 'cpu', and its host part (pack_host.sh: the 'cpu' addon and Open MPI, run from
 * a folder of their own through host_env.sh) runs the 2-rank suites on 'cuda-emu' with the kit's
 * mpirun and libraries, so a kit run on the GPU machine fails only for what the GPU does.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@nodegrad/autograd';
import { buildDir } from '../lib/load.js';
import { mpiMissing } from '../../packages/distributed/test/mpirun.js';
import { runChild } from './child.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'nodegrad-kit-'));
const cpu = backends().find((b) => b.name === 'cpu');
const cudaReason = backends().find((b) => b.name === 'cuda:0')?.reason ?? '';
const noMpi = process.env.NODEGRAD_REQUIRE_MPI === '1' ? '' : mpiMissing();
const run = (program: string, env: Record<string, string> = {}) => runChild(process.execPath, [join(dir, program)], {
  cwd: REPO, timeout: 300_000,
  env: { ...process.env, NODEGRAD_KIT_ROOT: REPO, OUT: dir, NODE_NO_WARNINGS: '1', ...env },
});

describe('the GPU kit without a GPU', () => {
  beforeAll(async () => {
    const r = await runChild(process.execPath, [join(REPO, 'scripts', 'gpu', 'bundle.mjs'), dir]);
    expect(r.status, r.stderr).toBe(0);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('dry run: the checks and the benchmark load and report that CUDA is unavailable, with the reason', async () => {
    const checks = await run('kit_checks.mjs');
    expect(checks.status, checks.stderr).toBe(0);
    expect(checks.stdout).toContain(`kit checks: cuda unavailable: ${cudaReason}`);
    const bench = await run('gpu_bench.mjs');
    expect(JSON.parse(bench.stdout)).toEqual({ impl: 'nodegrad', error: `cuda unavailable: ${cudaReason}` });
  }, 60_000);

  (cpu?.available ? it : it.skip)(`its test program runs the bundled parity suites on 'cpu' with 0 failures${cpu?.available ? '' : ` (skipped: 'cpu' is unavailable: ${cpu?.reason})`}`, async () => {
    // Less the autocast cases of one file (NODEGRAD_KIT_EXCLUDE, as the sanitize step leaves out
    // the 2-rank suites); the same file's other cases still run.
    const r = await run('kit_tests.mjs', { NODEGRAD_KIT_DEVICES: 'cpu', NODEGRAD_BUILD_DIR: buildDir(),
      NODEGRAD_KIT_EXCLUDE: ",autocast on 'cpu': the step matches the unfused" });
    const summary = JSON.parse(readFileSync(join(dir, 'tests.json'), 'utf8')) as { passed: number; failed: number; failures: string[] };
    expect(summary.failures).toEqual([]);
    expect(summary.passed).toBeGreaterThan(300);
    expect(r.stdout).toMatch(/^ok {3}fuseForTraining > BasicBlock ResNet on 'cpu' float32/m);
    expect(r.stdout).not.toContain("autocast on 'cpu': the step matches the unfused");
    expect(r.status).toBe(0);
  }, 300_000);

  (noMpi ? it.skip : it)(`its host part runs the 2-rank suites on 'cuda-emu' under the kit's own mpirun and libraries${noMpi ? ` (skipped: ${noMpi})` : ''}`, async () => {
    const host = join(dir, 'host');
    const pack = await runChild('bash', [join(REPO, 'scripts', 'gpu', 'pack_host.sh'), host], { cwd: REPO, env: { ...process.env, NODEGRAD_BUILD_DIR: buildDir() } });
    expect(pack.status, pack.stderr).toBe(0);
    // The emulated GPU, which the kit itself does not carry.
    copyFileSync(join(buildDir(), 'Release', 'nodegrad_cuda_emu.node'), join(host, 'addon', 'Release', 'nodegrad_cuda_emu.node'));
    const script = `source scripts/gpu/host_env.sh "$1" && exec "$2" "$3"`;
    const r = await runChild('bash', ['-c', script, 'kit', host, process.execPath, join(dir, 'kit_tests.mjs')], {
      cwd: REPO, timeout: 120_000,
      env: { ...process.env, NODEGRAD_KIT_ROOT: REPO, OUT: dir, NODE_NO_WARNINGS: '1', NODEGRAD_KIT_DEVICES: 'cuda-emu',
        NODEGRAD_KIT_MATCH: '2 ranks', NODEGRAD_KIT_RANKS: join(dir, 'ranks') },
    });
    const summary = JSON.parse(readFileSync(join(dir, 'tests.json'), 'utf8')) as { passed: number; failed: number; failures: string[] };
    expect(summary.failures, r.stdout + r.stderr).toEqual([]);
    // Collectives (which also check that libmpi and its shared-memory transport came from the
    // kit's folder) and SyncBatchNorm.
    expect(summary.passed).toBe(2);
    expect(r.status).toBe(0);
  }, 180_000);
});
