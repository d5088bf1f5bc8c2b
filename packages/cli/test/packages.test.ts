// Every workspace package is publishable as far as its package.json goes (issue 15): not private,
// a license with its text, engines, a build before packing, types for every export (and for
// TypeScript's node10 resolution of subpaths); and `npm pack` ships what each needs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runChild } from '../../../native/test/child.js';
import { REPO } from './cli_helpers.js';

interface Pkg {
  name: string; private?: boolean; license?: string; engines?: { node?: string }; files?: string[];
  repository?: { type: string; url: string; directory: string }; publishConfig?: { access?: string };
  scripts?: Record<string, string>; exports?: Record<string, { types?: string; default?: string }>;
  typesVersions?: Record<string, Record<string, string[]>>; bin?: Record<string, string>;
}

const DIRS = ['packages/autograd', 'packages/nn', 'packages/data', 'packages/distributed', 'packages/cli', 'native'];
const read = (dir: string) => JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as Pkg;
const license = readFileSync(join(REPO, 'LICENSE'), 'utf8');

/** What each package must ship besides package.json, LICENSE and its entry points. */
const SHIPS: Record<string, string[]> = {
  'packages/autograd': ['dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/functional.js', 'dist/functional.d.ts'],
  'packages/cli': ['bin/nodegrad.js', 'dist/bin.js', 'dist/reexports/nn.js', 'dist/reexports/testing.d.ts'],
  'native': ['CMakeLists.txt', 'scripts/build_addon.mjs', 'src/addon.cc'],
};

describe('publishable packages', () => {
  for (const dir of DIRS) {
    it(`${dir}: not private, MIT with its LICENSE, engines, built before packing, types for every export`, () => {
      const p = read(dir);
      expect(p.private).toBeUndefined();
      expect(p.license).toBe('MIT');
      expect(readFileSync(join(REPO, dir, 'LICENSE'), 'utf8')).toBe(license);
      expect(p.engines?.node).toBe('>=20');
      expect(p.repository?.directory).toBe(dir);
      // A scoped package is private on the registry unless published with public access.
      if (p.name.startsWith('@')) expect(p.publishConfig?.access).toBe('public');
      expect(p.scripts?.prepack).toBe('tsc -b');
      expect(p.files).toContain('dist');
      for (const [sub, e] of Object.entries(p.exports ?? {})) {
        expect(e.types, `${p.name} exports '${sub}'`).toMatch(/^\.\/dist\/.*\.d\.ts$/);
        // node10 resolution ignores exports: typesVersions maps each subpath to its types.
        if (sub !== '.') expect(p.typesVersions?.['*']?.[sub.slice(2)]).toEqual([e.types!.slice(2)]);
      }
    });
  }

  it('npm pack ships each package\'s LICENSE, README, entry points and what it needs (from the built tree)', async () => {
    for (const dir of DIRS) {
      const r = await runChild('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: join(REPO, dir) });
      expect(r.status, r.stderr).toBe(0);
      const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
      const p = read(dir);
      for (const f of ['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', ...(SHIPS[dir] ?? [])]) {
        expect(files, `${p.name} ships ${f}`).toContain(f);
      }
      expect(files.some((f) => f.startsWith('test/'))).toBe(false);
    }
  }, 120_000);

  it("the prebuilt platform package: linux x64 glibc only, MIT, an optional dependency of @nodegrad/native at the same version", () => {
    const p = JSON.parse(readFileSync(join(REPO, 'packages/native-linux-x64-gnu/package.json'), 'utf8')) as Pkg &
      { os: string[]; cpu: string[]; libc: string[]; version: string };
    expect([p.os, p.cpu, p.libc]).toEqual([['linux'], ['x64'], ['glibc']]);
    expect(p.license).toBe('MIT');
    expect(readFileSync(join(REPO, 'packages/native-linux-x64-gnu/LICENSE'), 'utf8')).toBe(license);
    expect(p.publishConfig?.access).toBe('public');
    expect(p.scripts?.prepack).toBe('node ../../native/scripts/prebuild.mjs');
    const native = JSON.parse(readFileSync(join(REPO, 'native/package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
    expect(native.optionalDependencies[p.name]).toBe(p.version);
  });
});
