/**
 * describeBackends: a test suite written once and run on every backend. The test framework's own
 * `describe` is passed in, so this module imports no test runner and works with vitest, jest or
 * mocha alike (each has `describe` and `describe.skip`).
 */
import { supports, type KernelName } from '../backend.js';
import { backends, getBackend } from '../registry.js';
import type { DType } from '../dtype.js';

/** The part of a test framework's `describe` that describeBackends uses. */
export interface DescribeFn {
  (name: string, fn: () => void): unknown;
  skip(name: string, fn: () => void): unknown;
}

export interface DescribeBackendsOptions {
  /** Known gaps: backend name -> reason. The suite is registered as skipped with the reason in its name. */
  skip?: Record<string, string>;
  /**
   * Kernels and dtypes the suite runs: a backend that does not declare one (Backend.dtypes) gets a
   * skipped suite saying which, rather than failing on what it never claimed to compute.
   */
  needs?: readonly (readonly [KernelName, DType])[];
}

/** Why `device` cannot run a suite needing `needs`, or undefined when it declares them all. */
export function undeclared(device: string, needs: readonly (readonly [KernelName, DType])[] = []): string | undefined {
  const b = getBackend(device);
  const missing = needs.filter(([k, d]) => !supports(b, k, d)).map(([k, d]) => `${k} in ${d}`);
  return missing.length ? `'${device}' does not declare ${missing.join(', ')}` : undefined;
}

/**
 * Registers `name [device]` once per backend known to `backends()`: a live suite for each
 * available one, a skipped suite naming the reason for each unavailable or skip-listed one.
 * `fn` runs at collection time for skipped suites too (so their tests are listed as skipped):
 * touch the device inside tests, not in `fn`'s body.
 *
 * @example describeBackends(describe, 'relu', (device) => { it('...', () => { ... }) })
 */
export function describeBackends(describe: DescribeFn, name: string, fn: (device: string) => void,
  opts: DescribeBackendsOptions = {}): void {
  for (const b of backends()) {
    const device = b.name;
    const why = !b.available ? `unavailable: ${b.reason ?? 'not registered'}` : opts.skip?.[device] ?? undeclared(device, opts.needs);
    if (why) describe.skip(`${name} [${device}] (skipped: ${why})`, () => fn(device));
    else describe(`${name} [${device}]`, () => fn(device));
  }
}
