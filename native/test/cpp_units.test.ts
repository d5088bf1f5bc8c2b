/**
 * The C++ unit tests that need no Node or GPU (native/test/cpp, built with the 'cpu' addon as
 * nodegrad_cpp_tests): the CUDA caching allocator's bookkeeping, on host memory with a capacity;
 * and the 'cuda' kernels' index division by multiply-high (nodegrad_cpp_extent_test).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDir } from '../lib/load.js';

const exe = join(buildDir(), 'Release', 'nodegrad_cpp_tests');
const built = existsSync(exe);
const extentExe = join(buildDir(), 'Release', 'nodegrad_cpp_extent_test');
const extentBuilt = existsSync(extentExe);

describe('C++ unit tests (nodegrad_cpp_tests)', () => {
  (built ? it : it.skip)(`the caching allocator's splits, merges, reuse over 200 steps, out-of-memory message, peaks, and blocks of their own without caching${built ? '' : ' (skipped: the native build made no nodegrad_cpp_tests)'}`, () => {
    const r = spawnSync(exe, { encoding: 'utf8' });
    expect(r.stdout).toMatch(/caching_allocator: \d+ checks, 0 failed/);
    expect(r.status).toBe(0);
  });

  (extentBuilt ? it : it.skip)(`cuda/extent.h divides as plain division: every divisor below 70,000, powers of two, random 32-bit divisors, every dividend below 2^26 for six, and sizes and indices past 32 bits${extentBuilt ? '' : ' (skipped: the native build made no nodegrad_cpp_extent_test)'}`, () => {
    const r = spawnSync(extentExe, { encoding: 'utf8' });
    expect(r.stdout).toMatch(/extent: \d+ checks, 0 failed/);
    expect(r.status).toBe(0);
  });
});
