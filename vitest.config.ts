import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from source, so `npm test` needs no build step first.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@nodegrad\/autograd\/testing$/, replacement: src('./packages/autograd/src/testing/index.ts') },
      { find: /^@nodegrad\/autograd$/, replacement: src('./packages/autograd/src/index.ts') },
      { find: /^@nodegrad\/nn$/, replacement: src('./packages/nn/src/index.ts') },
      { find: /^@nodegrad\/native$/, replacement: src('./native/lib/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'native/test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    // Registers the native 'cpu' backend in every test file and keeps 'ts' the default device.
    setupFiles: ['./vitest.setup.ts'],
  },
});
