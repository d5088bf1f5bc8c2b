/**
 * A small flag parser: `--name value`, `--name=value` and bare boolean flags, checked against a
 * table of specs. Every problem is a UsageError naming the flag, what it accepts and what it got,
 * which bin.ts prints with a usage hint and exit code 2.
 */

/** A bad command line: printed as `nodegrad <command>: <message>`, exit code 2. */
export class UsageError extends Error {
  constructor(readonly command: string, message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An expected failure (a missing or corrupt file, ...): its message only, no stack trace, exit code 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** What a flag accepts. `min` bounds numbers; `choices` makes a string flag an enum. */
export type FlagSpec =
  | { type: 'int'; min?: number; help: string; placeholder?: string }
  | { type: 'number'; min?: number; max?: number; help: string; placeholder?: string }
  | { type: 'string'; choices?: readonly string[]; help: string; placeholder?: string }
  | { type: 'bool'; help: string };

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValue = number | string | boolean;

const quote = (s: string) => `'${s}'`;

/** Converts and checks one raw value; throws a UsageError that names the flag. */
function convert(command: string, name: string, spec: FlagSpec, raw: string): FlagValue {
  const fail = (what: string) => { throw new UsageError(command, `--${name} must be ${what} (got ${quote(raw)})`); };
  switch (spec.type) {
    case 'bool':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      return fail('true or false');
    case 'string':
      if (spec.choices && !spec.choices.includes(raw)) fail(`one of ${spec.choices.join(', ')}`);
      if (raw === '') fail('a non-empty string');
      return raw;
    case 'int': {
      const min = spec.min ?? -Infinity;
      const what = min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : 'an integer';
      if (!/^[+-]?\d+$/.test(raw.trim())) fail(what);
      const v = Number(raw);
      if (!Number.isSafeInteger(v) || v < min) fail(what);
      return v;
    }
    case 'number': {
      const v = raw.trim() === '' ? NaN : Number(raw);
      const min = spec.min ?? -Infinity;
      const max = spec.max ?? Infinity;
      const what = Number.isFinite(min) && Number.isFinite(max) ? `a number in [${min}, ${max}]`
        : min === 0 ? 'a non-negative number' : 'a number';
      if (!Number.isFinite(v) || v < min || v > max) fail(what);
      return v;
    }
  }
}

/**
 * Parses `argv` against `specs`; returns only the flags given (callers apply defaults, so a
 * resumed run can tell which flags were repeated). Positional arguments are refused.
 */
export function parseFlags(command: string, specs: FlagSpecs, argv: readonly string[]): Record<string, FlagValue> {
  const out: Record<string, FlagValue> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      throw new UsageError(command, `unexpected argument ${quote(arg)} (flags start with --)`);
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) {
      const near = Object.keys(specs).filter((k) => k.startsWith(name.slice(0, 3)));
      throw new UsageError(command, `unknown flag --${name}${near.length ? ` (did you mean ${near.map((k) => `--${k}`).join(', ')}?)` : ''}`);
    }
    if (name in out) throw new UsageError(command, `--${name} is given twice`);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (spec.type === 'bool') raw = 'true';
    else {
      const next = argv[i + 1];
      // A value may itself start with '-' (a negative number), but not with '--' (the next flag).
      if (next === undefined || next.startsWith('--')) throw new UsageError(command, `--${name} needs a value`);
      raw = next;
      i++;
    }
    out[name] = convert(command, name, spec, raw);
  }
  return out;
}

/** The flag table as help text, one line per flag. */
export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const value = s.type === 'bool' ? '' : ` ${s.placeholder ?? (s.type === 'string' && s.choices ? s.choices.join('|') : s.type === 'int' ? 'N' : 'X')}`;
    return [`  --${name}${value}`, s.help] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, h]) => l.padEnd(width) + h).join('\n');
}
