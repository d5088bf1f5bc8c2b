/**
 * The part of vitest's API the GPU kit's suites use (describe, it, it.each, hooks, expect with the
 * matchers those files call), so the kit runs the repository's own test files on a machine with
 * no node_modules: bundle.mjs aliases 'vitest' to this file. Tests run in registration order, one
 * at a time; run() prints a line per test and returns the counts.
 */
type Fn = () => unknown;
interface Suite { name: string; skip: boolean; tests: Test[]; children: Suite[]; before: Fn[]; after: Fn[] }
interface Test { name: string; skip: boolean; fn: Fn }

const root: Suite = { name: '', skip: false, tests: [], children: [], before: [], after: [] };
let current = root;

function addSuite(name: string, fn: Fn, skip: boolean): void {
  const s: Suite = { name, skip: skip || current.skip, tests: [], children: [], before: [], after: [] };
  current.children.push(s);
  const parent = current;
  current = s;
  try {
    fn();
  } finally {
    current = parent;
  }
}

/** vitest's %s %j %d and $name placeholders. */
function title(name: string, args: unknown[]): string {
  let i = 0;
  let t = name.replace(/%[sjdio]/g, (m) => {
    const v = args[i++];
    return m === '%j' ? JSON.stringify(v) : String(v);
  });
  const o = args[0];
  if (o && typeof o === 'object') t = t.replace(/\$(\w+)/g, (_, k: string) => String((o as Record<string, unknown>)[k]));
  return t;
}

function each(skip: boolean) {
  return (rows: readonly unknown[]) => (name: string, fn: (...a: never[]) => unknown) => {
    for (const row of rows) {
      const args = Array.isArray(row) ? row : [row];
      current.tests.push({ name: title(name, args), skip: skip || current.skip, fn: () => (fn as (...a: unknown[]) => unknown)(...args) });
    }
  };
}

export const describe = Object.assign((name: string, fn: Fn) => addSuite(name, fn, false), {
  skip: (name: string, fn: Fn) => addSuite(name, fn, true),
});
// vitest's forms: it(name, fn, timeout?) and it(name, options, fn); timeouts are the kit step's.
export const it = Object.assign((name: string, a: Fn | object, b?: Fn | number) => {
  const fn = typeof a === 'function' ? a : b as Fn;
  current.tests.push({ name, skip: current.skip, fn });
}, {
  skip: (name: string, fn: Fn = () => {}) => void current.tests.push({ name, skip: true, fn }),
  each: each(false),
});
export const test = it;
export const beforeAll = (fn: Fn) => void current.before.push(fn);
export const afterAll = (fn: Fn) => void current.after.push(fn);

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (a.constructor !== b.constructor) return false;
    const x = a as unknown as ArrayLike<unknown>, y = b as unknown as ArrayLike<unknown>;
    return x.length === y.length && Array.from(x).every((v, i) => Object.is(v, y[i]) || v === y[i]);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  // vitest's toEqual ignores properties whose value is undefined.
  const keys = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const ka = keys(a), kb = keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const show = (v: unknown) => {
  try {
    return JSON.stringify(v, (_, x) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x))?.slice(0, 300);
  } catch {
    return String(v);
  }
};

function matchers(actual: unknown, negate: boolean, message?: string) {
  const check = (ok: boolean, what: string) => {
    if (ok === negate) throw new Error(`${message ? `${message}: ` : ''}expected ${show(actual)} ${negate ? 'not ' : ''}${what}`);
  };
  return {
    toBe: (e: unknown) => check(Object.is(actual, e), `to be ${show(e)}`),
    toEqual: (e: unknown) => check(deepEqual(actual, e), `to equal ${show(e)}`),
    toBeCloseTo: (e: number, digits = 2) => check(Math.abs((actual as number) - e) < 10 ** -digits / 2, `to be close to ${e}`),
    toBeGreaterThan: (e: number) => check((actual as number) > e, `to be > ${e}`),
    toBeGreaterThanOrEqual: (e: number) => check((actual as number) >= e, `to be >= ${e}`),
    toBeLessThan: (e: number) => check((actual as number) < e, `to be < ${e}`),
    toBeLessThanOrEqual: (e: number) => check((actual as number) <= e, `to be <= ${e}`),
    toBeNaN: () => check(Number.isNaN(actual), 'to be NaN'),
    toBeNull: () => check(actual === null, 'to be null'),
    toBeDefined: () => check(actual !== undefined, 'to be defined'),
    toContain: (e: unknown) => check((actual as { includes(v: unknown): boolean }).includes(e), `to contain ${show(e)}`),
    toHaveLength: (n: number) => check((actual as { length: number }).length === n, `to have length ${n}`),
    toMatch: (e: RegExp | string) => check(typeof e === 'string' ? String(actual).includes(e) : e.test(String(actual)), `to match ${e}`),
    toThrow: (e?: RegExp | string) => {
      let thrown: unknown = undefined, threw = false;
      try {
        (actual as () => unknown)();
      } catch (err) {
        threw = true;
        thrown = err;
      }
      const msg = thrown instanceof Error ? thrown.message : String(thrown);
      const ok = threw && (e === undefined || (typeof e === 'string' ? msg.includes(e) : e.test(msg)));
      if (ok === negate) throw new Error(`expected a throw${e ? ` matching ${e}` : ''}${negate ? ' not' : ''}; got ${threw ? msg : 'no throw'}`);
    },
  };
}

export function expect(actual: unknown, message?: string) {
  return Object.assign(matchers(actual, false, message), { not: matchers(actual, true, message) });
}

export interface RunResult { passed: number; failed: number; skipped: number; failures: string[] }

/** Runs every registered test; `filter` keeps tests whose full name contains it. */
export async function run(log: (line: string) => void, filter?: (name: string) => boolean): Promise<RunResult> {
  const r: RunResult = { passed: 0, failed: 0, skipped: 0, failures: [] };
  async function visit(s: Suite, path: string): Promise<void> {
    const prefix = path ? `${path} > ` : '';
    const live = !s.skip;
    try {
      if (live) for (const f of s.before) await f();
    } catch (e) {
      r.failed++;
      r.failures.push(`${prefix}(beforeAll): ${(e as Error).message}`);
      log(`FAIL ${prefix}(beforeAll): ${(e as Error).message}`);
      return;
    }
    for (const t of s.tests) {
      const name = `${prefix}${t.name}`;
      if (filter && !filter(name)) continue;
      if (t.skip) {
        r.skipped++;
        log(`skip ${name}`);
        continue;
      }
      const t0 = performance.now();
      try {
        await t.fn();
        r.passed++;
        log(`ok   ${name} (${(performance.now() - t0).toFixed(0)} ms)`);
      } catch (e) {
        r.failed++;
        r.failures.push(`${name}: ${(e as Error).message}`);
        log(`FAIL ${name}: ${(e as Error).message}`);
      }
    }
    for (const c of s.children) await visit(c, `${prefix}${c.name}`);
    if (live) for (const f of s.after) await f();
  }
  // Hooks a test file registers outside any describe belong to the root (a golden suite's
  // afterAll prints its error report there).
  for (const f of root.before) await f();
  for (const c of root.children) await visit(c, c.name);
  for (const f of root.after) await f();
  return r;
}
