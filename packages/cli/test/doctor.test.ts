import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { backends, getBackend } from '@nodegrad/autograd';
import { describeBuild, getNumThreads } from '@nodegrad/native';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/args.js';
import { doctor, formatDoctor, runDoctor } from '../src/commands/doctor.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const versionOf = (dir: string) => (JSON.parse(readFileSync(`${root}/${dir}/package.json`, 'utf8')) as { version: string }).version;

describe('nodegrad doctor', () => {
  const report = doctor({ torch: false });

  it('reports this process, this machine and the native build as they are', () => {
    expect(report.node).toBe(process.version);
    expect(report.platform).toBe(process.platform);
    expect(report.cpu.logicalCores).toBe(availableParallelism());
    expect(report.build).toEqual(describeBuild());
    expect(report.threads.native).toBe(getNumThreads());
    expect(report.threads.ompNumThreads).toBe(process.env.OMP_NUM_THREADS ?? null);
    const lscpu = spawnSync('lscpu', ['-p=CORE,SOCKET'], { encoding: 'utf8' });
    if (lscpu.status === 0) {
      const cores = new Set(lscpu.stdout.split('\n').filter((l) => l && !l.startsWith('#')));
      expect(report.cpu.physicalCores).toBe(cores.size);
    }
  });

  it('lists the backends backends() gives, with their reasons, and cpu only with oneDNN', () => {
    expect(report.backends.map(({ half: _h, ...b }) => b))
      .toEqual(backends().map((b) => ({ name: b.name, available: b.available, ...(b.reason ? { reason: b.reason } : {}) })));
    // Each available backend lists the families its dtype table declares for the half types ('ts' all of them).
    for (const b of report.backends.filter((x) => x.available)) {
      const { dtypes } = getBackend(b.name);
      for (const t of ['bfloat16', 'float16'] as const) {
        expect(b.half![t]).toEqual(Object.entries(dtypes).filter(([, ds]) => ds.includes(t)).map(([f]) => f));
      }
    }
    expect(report.backends[0]!.half!.float16).toHaveLength(12);
    expect(report.backends.map((b) => b.name).slice(0, 2)).toEqual(['ts', 'cpu']);
    expect(report.backends[0]!.available).toBe(true);
    // An addon without oneDNN would throw from every conv: 'cpu' is offered only with it.
    const build = describeBuild();
    const cpu = report.backends[1]!;
    expect(cpu.available).toBe(build.loaded && build.features.onednn.enabled);
    if (build.loaded && !build.features.onednn.enabled) expect(cpu.reason).toMatch(/built without oneDNN .*install libdnnl-dev and rebuild/);
  });

  it('reports only the build features that exist (oneDNN, MPI)', () => {
    expect(Object.keys(report.build.features)).toEqual(['onednn', 'mpi']);
  });

  it('gives the versions of the workspace packages', () => {
    expect(report.packages['@nodegrad/autograd']).toBe(versionOf('packages/autograd'));
    expect(report.packages['@nodegrad/nn']).toBe(versionOf('packages/nn'));
    expect(report.packages['@nodegrad/native']).toBe(versionOf('native'));
    expect(report.packages['nodegrad']).toBe(versionOf('packages/cli'));
  });

  it('prints every backend and feature, and JSON with --json', () => {
    const text = formatDoctor(report);
    for (const b of report.backends) expect(text).toMatch(new RegExp(`^  ${b.name.replace(/[:]/g, '\\$&')} +${b.available ? 'yes' : 'no '}`, 'm'));
    for (const f of Object.keys(report.build.features)) expect(text).toMatch(new RegExp(`^  ${f} +(yes|no )`, 'm'));
    let out = '';
    expect(runDoctor(['--json', '--torch=false'], { write: (s: string) => (out += s) })).toBe(0);
    const parsed = JSON.parse(out) as typeof report;
    expect(parsed.backends).toEqual(report.backends);
    expect(parsed.torch).toBeNull();
  });

  it('says why PyTorch is missing when the Python is not there', () => {
    const r = doctor({ python: '/nonexistent/python3' });
    expect(r.torch).toEqual({ available: false, python: '/nonexistent/python3', reason: '/nonexistent/python3 not found' });
  });

  it('finds PyTorch where the Python imports it', () => {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, sys; sys.stdout.write(torch.__version__)'], { encoding: 'utf8' });
    const r = doctor({ python: '/usr/bin/python3' });
    if (probe.status === 0) expect(r.torch).toEqual({ available: true, python: '/usr/bin/python3', version: probe.stdout });
    else expect(r.torch?.available).toBe(false);
  });

  it('prints its help with --help', () => {
    let out = '';
    expect(runDoctor(['--help'], { write: (s: string) => (out += s) })).toBe(0);
    expect(out).toMatch(/^nodegrad doctor: /);
    expect(out).toContain('--json');
  });

  it('refuses unknown flags with a usage error', () => {
    expect(() => runDoctor(['--verbose'])).toThrow(UsageError);
    expect(() => runDoctor(['--verbose'])).toThrow(/unknown flag --verbose/);
  });
});
