// An addon built without oneDNN (the build a machine without libdnnl-dev gets) loads, but its conv
// and matmul throw; 'cpu' must then be unavailable with what to do, 'ts' the default device, the
// CLI must refuse --device cpu, and doctor must say why. This builds that addon for real with
// NODEGRAD_WITH_ONEDNN=OFF into native/build/no-onednn and checks it in child processes (the addon
// a process loads is fixed at its first import). The build compiles no oneDNN headers, so it is
// short (about 25 s from nothing on 2 busy cores), and incremental afterwards (under a second).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeBuild } from '@nodegrad/native';
import { runChild } from './child.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DIR = join(REPO, 'native', 'build', 'no-onednn');
const env = { ...process.env, NODEGRAD_BUILD_DIR: DIR, NODEGRAD_SKIP_CUDA: '1', NODE_NO_WARNINGS: '' };
// This build skips the 'cuda' addon (NODEGRAD_SKIP_CUDA), and 'cuda:0' says so.
const CUDA = { name: 'cuda:0', available: false, reason: 'NODEGRAD_SKIP_CUDA was set at install time' };
const REASON = 'built without oneDNN (option NODEGRAD_WITH_ONEDNN is OFF): install libdnnl-dev and rebuild (node native/scripts/build_addon.mjs)';

// Without a working toolchain the main build failed too; required_backends.test.ts fails CI then.
const main = describeBuild();
const why = main.loaded ? '' : ` (skipped: no addon builds here: ${main.reason})`;

/** Runs `node --import tsx ...args` at the repository root, loading the addon from DIR. */
const node = (args: string[]) => runChild(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO, env });

describe.skipIf(!main.loaded)(`an addon built with NODEGRAD_WITH_ONEDNN=OFF${why}`, () => {
  it('builds', async () => {
    const r = await runChild(process.execPath, [join(REPO, 'native', 'scripts', 'build_addon.mjs')],
      { env: { ...env, NODEGRAD_CMAKE_ARGS: '--CDNODEGRAD_WITH_ONEDNN=OFF --CDNODEGRAD_WITH_MPI=OFF' } });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(DIR, 'build-report.json'), 'utf8')) as { ok: boolean; reason: string | null };
    expect(report, readFileSync(join(DIR, 'build-log.txt'), 'utf8').slice(-3000)).toMatchObject({ ok: true });
  }, 300_000);

  it("leaves 'cpu' unavailable with the reason, says so once, keeps 'ts' the default, and its raw conv throws", async () => {
    const script = `
      import { backends, defaultDevice } from '@nodegrad/autograd';
      import { describeBuild, mpiBinding } from '@nodegrad/native';
      import { loadAddon } from './native/lib/load.ts';
      await import('@nodegrad/native'); // a second import says nothing more
      const a = loadAddon().addon;
      const x = a.cpu.fromArray(new Float32Array(16), [1, 1, 4, 4], 'float32');
      let conv = 'no error';
      try { a.cpu.kernels.Conv2D(x, x, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }); } catch (e) { conv = e.message; }
      console.log(JSON.stringify({ backends: backends(), device: defaultDevice(), build: describeBuild(), conv, mpi: mpiBinding() }));`;
    const r = await node(['--input-type=module', '-e', script]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { backends: unknown; device: string; build: unknown; conv: string; mpi: unknown };
    expect(out.backends).toEqual([{ name: 'ts', available: true }, { name: 'cpu', available: false, reason: REASON }, CUDA]);
    expect(out.device).toBe('ts');
    expect(out.build).toEqual({ loaded: true, origin: { kind: 'source', file: join(DIR, 'Release', 'nodegrad.node') }, features: {
      onednn: { enabled: false, reason: 'option NODEGRAD_WITH_ONEDNN is OFF' },
      mpi: { enabled: false, reason: 'option NODEGRAD_WITH_MPI is OFF' },
    } });
    expect(out.mpi).toEqual({ reason: 'the native addon was built without MPI: option NODEGRAD_WITH_MPI is OFF' });
    // The addon itself still refuses loudly, never a silent slow fallback.
    expect(out.conv).toMatch(/^Conv2D: the 'cpu' backend was built without oneDNN \(option NODEGRAD_WITH_ONEDNN is OFF\)/);
    expect(r.stderr.split(`Warning: nodegrad: the native 'cpu' backend is unavailable: ${REASON}`).length - 1).toBe(1);
  }, 60_000);

  it("makes `nodegrad train --device cpu` a usage error, and doctor says why", async () => {
    const bin = join(REPO, 'packages', 'cli', 'src', 'bin.ts');
    const train = await node([bin, 'train', '--device', 'cpu']);
    expect(train.status).toBe(2);
    expect(train.stderr).toContain(`nodegrad train: --device must be one of ts (got 'cpu'); unavailable here: cpu: ${REASON}; cuda:0: ${CUDA.reason}\n`);
    const doctor = await node([bin, 'doctor', '--json', '--torch=false']);
    expect(doctor.status, doctor.stderr).toBe(0);
    const report = JSON.parse(doctor.stdout) as { backends: unknown; defaultDevice: string };
    // doctor adds, per available backend, the kernel families it computes in the half types.
    expect(report.backends).toMatchObject([{ name: 'ts', available: true }, { name: 'cpu', available: false, reason: REASON }, CUDA]);
    expect(report.defaultDevice).toBe('ts');
  }, 60_000);
});
