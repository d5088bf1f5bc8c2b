import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/args.js';
import { benchInvocation, findBenchRoot, runBench } from '../src/commands/bench.js';

const root = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');

describe('nodegrad bench', () => {
  it('finds the checkout that holds bench/resnet.ts', () => {
    expect(findBenchRoot()).toBe(root);
    expect(findBenchRoot('/')).toBeNull();
  });

  it('passes the flags through and keeps the report out of docs/ unless asked', () => {
    const inv = benchInvocation({ quick: true, cases: 'A,C18', threads: 2 }, root, '/tmp/somewhere');
    expect(inv).toEqual({
      command: process.execPath,
      args: ['--import', 'tsx', join(root, 'bench', 'resnet.ts'), '--quick', '--cases', 'A,C18', '--threads', '2',
        '--out', '/tmp/somewhere/bench-report.md'],
      cwd: root,
    });
    expect(benchInvocation({ out: 'r.md' }, root, '/home/u').args.slice(-2)).toEqual(['--out', '/home/u/r.md']);
  });

  it('runs the real script: an unknown case is its error, exit code 1', () => {
    const inv = benchInvocation({ cases: 'Z', out: '/nonexistent/never-written.md' }, root);
    const r = spawnSync(inv.command, inv.args, { cwd: inv.cwd, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toContain('bench: --cases: unknown case "Z"');
    expect(r.status).toBe(1);
    expect(existsSync('/nonexistent/never-written.md')).toBe(false);
  });

  it('refuses bad flags before starting anything', async () => {
    await expect(runBench(['--threads', '0'])).rejects.toThrow(UsageError);
    await expect(runBench(['--threads', '0'])).rejects.toThrow(/--threads must be a positive integer \(got '0'\)/);
    await expect(runBench(['--fast'])).rejects.toThrow(/unknown flag --fast/);
  });
});
