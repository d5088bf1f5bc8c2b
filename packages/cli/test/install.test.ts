// What a user gets from the registry (issue 15), tried with the tarballs the registry would hold:
// every workspace package is packed as `npm publish` would pack it (prepack builds it; the platform
// package's prepack compiles the prebuilt 'cpu' addon and bundles oneDNN), the tarballs are
// installed into projects outside the repository, with npm and with pnpm (which skips install
// scripts by default, so only the prebuilt can give it 'cpu'), and used there: each package
// imported, gradcheck on a custom op, a resnet18 training step on the prebuilt 'cpu' against 'ts',
// oneDNN resolved from the package (ldd), and `npx nodegrad --version` / `doctor`.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChild, type ChildResult } from '../../../native/test/child.js';
import { REPO } from './cli_helpers.js';

const DIRS = ['packages/autograd', 'packages/nn', 'packages/data', 'packages/distributed', 'packages/cli', 'native',
  'packages/native-linux-x64-gnu'];
const name = (dir: string) => (JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as { name: string }).name;
// pnpm, a devDependency of the repository (its exports hide bin/, so the path is built).
const PNPM = join(REPO, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
const CHECK = join(REPO, 'packages/cli/test/install/check.mjs');

/**
 * The environment of the package managers: without the npm_* variables `npm test` sets (a nested
 * npm would read the repository's config from them), and without the 'cuda' build, which would
 * compile for minutes wherever a CUDA toolchain is found and is not what is tested here.
 */
function env(): NodeJS.ProcessEnv {
  const e = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...e, NODEGRAD_SKIP_CUDA: '1', NO_UPDATE_NOTIFIER: '1', OMP_NUM_THREADS: '1', NODE_NO_WARNINGS: '1' };
}

async function run(cmd: string, args: string[], cwd: string): Promise<ChildResult> {
  const r = await runChild(cmd, args, { cwd, env: env() });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${cwd} exited with ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

let work: string;
/** Each package's tarball, and the files npm packed into it. */
const packed = new Map<string, { file: string; files: string[] }>();

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nodegrad-install-'));
  const r = await run('npm', ['pack', '--workspaces', '--pack-destination', work, '--json'], REPO);
  // prepack scripts may print before npm's JSON, which starts with a line '[' and then '  {'.
  const json = r.stdout.slice(r.stdout.search(/^\[\n\s*\{/m));
  for (const p of JSON.parse(json) as { name: string; filename: string; files: { path: string }[] }[]) {
    packed.set(p.name, { file: join(work, p.filename), files: p.files.map((f) => f.path) });
  }
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A project outside the repository whose `direct` dependencies, and every package they pull in, come from the tarballs. */
function project(label: string, direct: string[]): string {
  const dir = join(work, label);
  const specs = Object.fromEntries([...packed].map(([n, p]) => [n, `file:${p.file}`]));
  const pkg = {
    name: `user-project-${label}`, private: true, type: 'module',
    dependencies: Object.fromEntries(direct.map((n) => [n, specs[n]])),
    overrides: specs, pnpm: { overrides: specs },
  };
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  return dir;
}

interface CheckOutput {
  imports: Record<string, string>;
  gradcheck: boolean;
  build: { loaded: boolean; origin?: { kind: string; file: string; package?: string }; features: Record<string, { enabled: boolean; reason?: string }> };
  mnist: number;
  step: { device: string; lossCpu: number; lossTs: number; fcMaxDiff: number; fcMaxAbs: number };
}

/** What every installed project must show, from check.mjs run as `how` and from the command. */
async function expectWorking(dir: string, how: 'scoped' | 'nodegrad'): Promise<void> {
  // A copy inside the project: an import resolves from the importing file's folder, not the cwd.
  copyFileSync(CHECK, join(dir, 'check.mjs'));
  const out = JSON.parse((await run(process.execPath, ['check.mjs', how], dir)).stdout.trim().split('\n').pop()!) as CheckOutput;
  expect(out.imports).toEqual({ DistributedDataParallel: 'function', vjp: 'function', parseFlags: 'function' });
  expect(out.gradcheck).toBe(true);
  expect(out.mnist).toBe(20);

  // The addon is the platform package's, inside this project, with oneDNN and without MPI.
  const { build } = out;
  expect(build.loaded, JSON.stringify(build)).toBe(true);
  expect(build.origin!.kind, JSON.stringify(build.origin)).toBe('prebuilt');
  expect(build.origin!.package).toBe('@nodegrad/native-linux-x64-gnu@0.1.0');
  const addon = realpathSync(build.origin!.file);
  expect(addon.startsWith(realpathSync(dir) + '/')).toBe(true);
  expect(build.features.onednn!.enabled).toBe(true);
  expect(build.features.mpi!.reason).toMatch(/prebuilt addon .* has no MPI process group/);

  // oneDNN and what it needs resolve to the files beside the addon, never to /usr or /lib.
  const ldd = (await run('ldd', [addon], dir)).stdout;
  for (const lib of ['libdnnl.so.2', 'libgomp.so.1', 'libOpenCL.so.1']) {
    const line = ldd.split('\n').find((l) => l.includes(`${lib} =>`));
    expect(line, ldd).toBeDefined();
    expect(realpathSync(line!.split('=>')[1]!.trim().split(' ')[0]!)).toBe(join(dirname(addon), lib));
  }

  // One SGD step of resnet18 on the prebuilt 'cpu' equals the same step on 'ts'.
  expect(out.step.device).toBe('cpu');
  expect(Math.abs(out.step.lossCpu - out.step.lossTs)).toBeLessThan(1e-5 * Math.abs(out.step.lossTs));
  expect(out.step.fcMaxDiff).toBeLessThan(1e-5);
  expect(out.step.fcMaxAbs).toBeGreaterThan(1e-3);

  const version = await run('npx', ['--no-install', 'nodegrad', '--version'], dir);
  expect(version.stdout).toMatch(/^nodegrad 0\.1\.0 \(Node v\d+/);
  const doctor = await run('npx', ['--no-install', 'nodegrad', 'doctor', '--torch=false'], dir);
  expect(doctor.stdout).toContain('addon loaded: prebuilt, from @nodegrad/native-linux-x64-gnu@0.1.0');

  // --verbose stack traces go through the source maps to TypeScript files the package ships.
  const failed = await runChild('npx', ['--no-install', 'nodegrad', 'eval', '--weights', 'missing.safetensors', '--verbose'], { cwd: dir, env: env() });
  expect(failed.status).toBe(1);
  const frame = /\((\/[^():]+\.ts):\d+:\d+\)/.exec(failed.stderr);
  expect(frame, failed.stderr).not.toBeNull();
  expect(realpathSync(frame![1]!).startsWith(realpathSync(dir) + '/')).toBe(true);
}

describe('installed from the packed tarballs, outside the repository', () => {
  it('npm install of every package: nothing compiles, and each package works through the prebuilt addon', async () => {
    const dir = project('npm', DIRS.map(name).filter((n) => n !== '@nodegrad/native-linux-x64-gnu'));
    const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], dir);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/did not build/);
    expect(existsSync(join(dir, 'node_modules/@nodegrad/native/build/Release/nodegrad.node'))).toBe(false);
    await expectWorking(dir, 'scoped');
  }, 600_000);

  it('pnpm add of only `nodegrad`, whose install scripts pnpm skips: the prebuilt addon and nodegrad/* work', async () => {
    const dir = project('pnpm', ['nodegrad']);
    const r = await run(process.execPath, [PNPM, 'install'], dir);
    expect(`${r.stdout}${r.stderr}`).toMatch(/Ignored build scripts/);
    await expectWorking(dir, 'nodegrad');
  }, 600_000);
});

describe('publishing', () => {
  it('npm pack ships the built JavaScript with its sources (the source maps point there), and the prebuilt addon with oneDNN', () => {
    for (const dir of DIRS) {
      const { files } = packed.get(name(dir))!;
      expect(files, name(dir)).toContain('LICENSE');
      expect(files, name(dir)).toContain('README.md');
      if (dir === 'packages/native-linux-x64-gnu') {
        for (const f of ['nodegrad.node', 'libdnnl.so.2', 'libgomp.so.1', 'libOpenCL.so.1', 'build-info.json', 'licenses/libdnnl2.txt']) {
          expect(files, f).toContain(f);
        }
        continue;
      }
      expect(files).toContain('dist/index.js');
      expect(files).toContain('dist/index.js.map');
      const src = dir === 'native' ? 'lib/index.ts' : 'src/index.ts';
      expect(files, `${name(dir)} ships ${src}`).toContain(src);
      expect(files.some((f) => f.startsWith('test/'))).toBe(false);
    }
  });

  it('npm publish --dry-run passes for every package', async () => {
    for (const dir of DIRS) {
      const r = await run('npm', ['publish', '--dry-run', '--ignore-scripts'], join(REPO, dir));
      expect(`${r.stdout}${r.stderr}`, name(dir)).toContain(`+ ${name(dir)}@0.1.0`);
      if (name(dir).startsWith('@')) expect(`${r.stderr}`).toMatch(/with tag latest and public access/);
    }
  }, 120_000);
});
