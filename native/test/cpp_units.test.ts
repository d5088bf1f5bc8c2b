/**
 * The C++ unit tests that need no Node or GPU (native/test/cpp, built with the 'cpu' addon as
 * nodegrad_cpp_tests): the CUDA caching allocator's bookkeeping, on host memory with a capacity.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDir } from '../lib/load.js';

const exe = join(buildDir(), 'Release', 'nodegrad_cpp_tests');
const built = existsSync(exe);

describe('C++ unit tests (nodegrad_cpp_tests)', () => {
  (built ? it : it.skip)(`the caching allocator's splits, merges, reuse over 200 steps, out-of-memory message and peaks${built ? '' : ' (skipped: the native build made no nodegrad_cpp_tests)'}`, () => {
    const r = spawnSync(exe, { encoding: 'utf8' });
    expect(r.stdout).toMatch(/caching_allocator: \d+ checks, 0 failed/);
    expect(r.status).toBe(0);
  });
});
