// Bundles the GPU kit's programs with esbuild, each into one .mjs that needs no node_modules:
// workspace packages from their sources (as vitest.config.ts aliases them), 'vitest' replaced by
// mini_test.ts. A bundle is one module, so each source file's `import.meta.url` is rewritten to
// the URL that file has in the working tree (NODEGRAD_KIT_ROOT at run time): fixtures, the MNIST
// files and the addons are then found where the repository keeps them.
//   node scripts/gpu/bundle.mjs OUTDIR
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.argv[2];
if (!out) throw new Error('usage: node scripts/gpu/bundle.mjs OUTDIR');

const alias = {
  'vitest': join(repo, 'scripts/gpu/mini_test.ts'),
  '@nodegrad/autograd/testing': join(repo, 'packages/autograd/src/testing/index.ts'),
  '@nodegrad/autograd': join(repo, 'packages/autograd/src/index.ts'),
  '@nodegrad/nn': join(repo, 'packages/nn/src/index.ts'),
  '@nodegrad/data': join(repo, 'packages/data/src/index.ts'),
  '@nodegrad/native': join(repo, 'native/lib/index.ts'),
  '@nodegrad/distributed': join(repo, 'packages/distributed/src/index.ts'),
  'nodegrad': join(repo, 'packages/cli/src/index.ts'),
};

const metaUrl = {
  name: 'import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.(ts|mts|mjs|js)$/ }, async (args) => {
      if (args.path.includes('node_modules')) return undefined;
      const src = await readFile(args.path, 'utf8');
      if (!src.includes('import.meta.url')) return undefined;
      const rel = relative(repo, args.path);
      return { contents: src.replaceAll('import.meta.url', `__ngKitUrl(${JSON.stringify(rel)})`), loader: args.path.endsWith('s') && !args.path.endsWith('.mjs') ? 'ts' : 'js' };
    });
  },
};

const banner = [
  "import { pathToFileURL as __ngToUrl } from 'node:url';",
  "import { createRequire as __ngCreateRequire } from 'node:module';",
  'const require = __ngCreateRequire(import.meta.url);',
  "const __ngKitRoot = __ngToUrl((process.env.NODEGRAD_KIT_ROOT ?? process.cwd()) + '/').href;",
  'const __ngKitUrl = (rel) => new URL(rel, __ngKitRoot).href;',
].join('\n');

const entries = {
  'kit_tests': 'scripts/gpu/kit_tests.ts',
  'kit_checks': 'scripts/gpu/kit_checks.ts',
  'gpu_bench': 'bench/gpu_resnet50.ts',
  'nodegrad': 'packages/cli/src/bin.ts',
  // The programs two ranks run under mpirun (test/mpirun.ts finds them through NODEGRAD_KIT_RANKS).
  'ranks/collectives': 'packages/distributed/test/ranks/collectives.ts',
  'ranks/sync_bn': 'packages/distributed/test/ranks/sync_bn.ts',
  'ranks/ddp': 'packages/distributed/test/ranks/ddp.ts',
  'ranks/nccl_watchdog': 'packages/distributed/test/ranks/nccl_watchdog.ts',
};
for (const [name, entry] of Object.entries(entries)) {
  await build({
    entryPoints: [join(repo, entry)], outfile: join(out, `${name}.mjs`), bundle: true, platform: 'node', format: 'esm',
    target: 'node20', alias, plugins: [metaUrl], banner: { js: banner }, logLevel: 'warning',
    // The shebang of bin.ts would land after the banner.
    ...(name === 'nodegrad' ? { define: {} } : {}),
  });
}
