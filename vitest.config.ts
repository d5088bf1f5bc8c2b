import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from source, so `npm test` needs no build step first.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@nodegrad\/autograd\/testing$/, replacement: src('./packages/autograd/src/testing/index.ts') },
      { find: /^@nodegrad\/autograd\/functional$/, replacement: src('./packages/autograd/src/functional.ts') },
      { find: /^@nodegrad\/autograd$/, replacement: src('./packages/autograd/src/index.ts') },
      { find: /^@nodegrad\/nn$/, replacement: src('./packages/nn/src/index.ts') },
      { find: /^@nodegrad\/data$/, replacement: src('./packages/data/src/index.ts') },
      { find: /^@nodegrad\/native$/, replacement: src('./native/lib/index.ts') },
      { find: /^@nodegrad\/distributed$/, replacement: src('./packages/distributed/src/index.ts') },
      { find: /^nodegrad$/, replacement: src('./packages/cli/src/index.ts') },
    ],
  },
  test: {
    // vitest runs a worker per core; a second OpenMP thread per worker would oversubscribe the
    // cores, and every parallel region's barrier then waits for a descheduled thread (a tiny
    // ResNet step measured 23 ms with one thread, 713 ms with two on a busy 2-core machine).
    env: { OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' },
    include: ['packages/*/test/**/*.test.ts', 'native/test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    // Registers the native 'cpu' backend in every test file and keeps 'ts' the default device.
    setupFiles: ['./vitest.setup.ts'],
  },
});
