// Each package's README says what it is, how to install it and what building it needs, with an
// example; every `// example:` block runs here in a process of its own against the built packages
// (as an installed user would import them), so the READMEs cannot drift from the code.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runChild } from '../../../native/test/child.js';
import { REPO } from './cli_helpers.js';

const DIRS = ['packages/autograd', 'packages/nn', 'packages/data', 'packages/distributed', 'packages/cli', 'native'];
// Under node_modules, so that the examples resolve @nodegrad/* as an installed project does.
const dir = mkdtempSync(join(REPO, 'node_modules', '.readme-examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// A tsconfig of their own: the repository's maps @nodegrad/* to the sources, and a program that
// imported one package from src and another from dist would hold two Tensor classes.
writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', target: 'es2022' } }));
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));

describe('package READMEs', () => {
  for (const pkg of DIRS) {
    const text = readFileSync(join(REPO, pkg, 'README.md'), 'utf8');
    const name = (JSON.parse(readFileSync(join(REPO, pkg, 'package.json'), 'utf8')) as { name: string }).name;
    it(`${pkg}: names the package and says how to install it`, () => {
      expect(text.startsWith(`# ${name}\n`)).toBe(true);
      expect(text).toContain(`npm install ${name}`);
    });
    const blocks = [...text.matchAll(/```ts\n(\/\/ example: (.*)\n[\s\S]*?)```/g)];
    blocks.forEach((m, i) => {
      it(`${pkg}: ${m[2]}`, async () => {
        const file = join(dir, `${pkg.replace('/', '_')}_${i}.ts`);
        writeFileSync(file, `${m[1]}\nexport {};\n`);
        const r = await runChild(process.execPath, ['--import', 'tsx', file], {
          cwd: dir, timeout: 60_000,
          env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, 'tsconfig.json'), OMPI_ALLOW_RUN_AS_ROOT: '1',
            OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', NODE_NO_WARNINGS: '1' },
        });
        expect(r.status, r.stderr).toBe(0);
      }, 90_000);
    });
  }
});
