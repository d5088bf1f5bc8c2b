/**
 * A tensor as PyTorch prints it (torch/_tensor_str.py): `tensor([[1., 2.]], dtype=float64,
 * requires_grad=True)`. Values use 4 decimals, or scientific notation when they span more than
 * three orders of magnitude; integer-valued floats print as `1.`; more than 1,000 elements are
 * summarised to the first and last 3 along each dimension; lines wrap at 80 characters. The dtype
 * is named unless it is float32 or int64, the device unless it is the default one.
 */
import { inspect } from 'node:util';
import { isFloat, type DType } from './dtype.js';
import { defaultDevice } from './ops/creation.js';
import { Tensor } from './tensor.js';

const PRECISION = 4;
const THRESHOLD = 1000;
const EDGE = 3;
const LINEWIDTH = 80;

/** The values to print as nested arrays; ELLIPSIS stands where a dimension was summarised. */
type Nested = number | Nested[];
const ELLIPSIS: Nested[] = [];

function nest(data: ArrayLike<number>, shape: readonly number[], offset: number, summarize: boolean): Nested[] {
  const [n, ...rest] = shape as [number, ...number[]];
  const stride = rest.reduce((a, b) => a * b, 1);
  const at = (i: number): Nested => (rest.length === 0 ? data[offset + i]! : nest(data, rest, offset + i * stride, summarize));
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => at(from + k));
  return summarize && n > 2 * EDGE ? [...range(0, EDGE), ELLIPSIS, ...range(n - EDGE, n)] : range(0, n);
}

/**
 * Python's rounding of v to `digits` decimals: JavaScript rounds an exact tie away from zero where
 * Python rounds it to even (0.03125 is 0.0312 there), and drops the sign of -0. `exact` writes the
 * decimal expansion (exact to 100 digits, more than any double in these modes has), `rounded` the
 * JavaScript rounding; a tie whose kept digit is even is truncated instead.
 */
function pyRound(v: number, exact: (a: number) => string, rounded: (a: number) => string, digits: number): string {
  const a = Math.abs(v);
  const sign = v < 0 || Object.is(v, -0) ? '-' : '';
  const e = exact(a);
  const [mantissa, exponent = ''] = e.split('e');
  const dot = mantissa!.indexOf('.');
  const frac = mantissa!.slice(dot + 1);
  const tie = frac[digits] === '5' && /^0*$/.test(frac.slice(digits + 1));
  const keptDigit = Number(digits === 0 ? mantissa![dot - 1] : frac[digits - 1]);
  if (!tie || keptDigit % 2 === 1) return sign + rounded(a);
  const truncated = mantissa!.slice(0, digits === 0 ? dot : dot + 1 + digits);
  return sign + truncated + (exponent ? `e${exponent}` : '');
}

/** Python's `{:.Nf}`. */
function fixed(v: number, digits: number): string {
  return pyRound(v, (a) => a.toFixed(100), (a) => a.toFixed(digits), digits);
}

/** Python's `{:.Ne}`: a two-digit exponent with its sign. */
function sci(v: number): string {
  if (!Number.isFinite(v)) return special(v);
  return pyRound(v, (a) => a.toExponential(100), (a) => a.toExponential(PRECISION), PRECISION)
    .replace(/e([+-])(\d)$/, 'e$10$2');
}
const special = (v: number) => (Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf');

/** PyTorch's _Formatter: the mode and the width, from the values printed. */
function formatter(values: number[], floating: boolean): { format: (v: number) => string; width: number } {
  let width = 1;
  if (!floating) {
    for (const v of values) width = Math.max(width, String(v).length);
    return { format: (v) => String(v).padStart(width), width };
  }
  const finite = values.filter((v) => Number.isFinite(v) && v !== 0);
  let mode: 'int' | 'sci' | 'fixed' = 'int';
  if (finite.length > 0) {
    const abs = finite.map(Math.abs);
    const min = Math.min(...abs);
    const max = Math.max(...abs);
    const integral = finite.every((v) => v === Math.ceil(v));
    if (integral) mode = max / min > 1000 || max > 1e8 ? 'sci' : 'int';
    else mode = max / min > 1000 || max > 1e8 || min < 1e-4 ? 'sci' : 'fixed';
  }
  const one = (v: number) => {
    if (!Number.isFinite(v)) return special(v);
    return mode === 'sci' ? sci(v) : mode === 'int' ? `${fixed(v, 0)}.` : fixed(v, PRECISION);
  };
  // The width counts the nonzero finite values only, as PyTorch's does.
  for (const v of finite) width = Math.max(width, one(v).length);
  return { format: (v) => one(v).padStart(width), width };
}

function flat(n: Nested, out: number[]): number[] {
  if (Array.isArray(n)) { if (n !== ELLIPSIS) for (const x of n) flat(x, out); } else out.push(n);
  return out;
}

function body(n: Nested[], dims: number, indent: number, format: (v: number) => string, width: number): string {
  // PyTorch's _vector_str and _tensor_str_with_formatter.
  if (dims === 1) {
    const perLine = Math.max(1, Math.floor((LINEWIDTH - indent) / (width + 2)));
    const items = n.map((v) => (v === ELLIPSIS ? ' ...' : format(v as number)));
    const lines: string[] = [];
    for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(', '));
    return `[${lines.join(`,\n${' '.repeat(indent + 1)}`)}]`;
  }
  const slices = n.map((s) => (s === ELLIPSIS ? '...' : body(s as Nested[], dims - 1, indent + 1, format, width)));
  return `[${slices.join(`,${'\n'.repeat(dims - 1)}${' '.repeat(indent + 1)}`)}]`;
}

const DEFAULT_DTYPES: readonly DType[] = ['float32', 'int64'];

/** The string PyTorch's repr would give for a tensor with these values. */
export function formatTensor(t: Tensor): string {
  const prefix = 'tensor(';
  const indent = prefix.length;
  const suffixes: string[] = [];
  if (t.device !== defaultDevice()) suffixes.push(`device='${t.device}'`);
  let text: string;
  if (t.size === 0 && t.shape.length !== 1) {
    text = '[]';
    suffixes.push(`size=(${t.shape.join(', ')})`);
  } else if (t.size === 0) {
    text = '[]';
  } else {
    const data = t.toTypedArray() as ArrayLike<number>;
    const floating = isFloat(t.dtype);
    if (t.shape.length === 0) {
      text = formatter([data[0]!], floating).format(data[0]!);
    } else {
      const nested = nest(data, t.shape, 0, t.size > THRESHOLD);
      const { format, width } = formatter(flat(nested, []), floating);
      text = body(nested, t.shape.length, indent, format, width);
    }
  }
  // An empty tensor names any dtype but float32: there are no values to tell int64 by.
  if (t.size === 0 ? t.dtype !== 'float32' : !DEFAULT_DTYPES.includes(t.dtype)) suffixes.push(`dtype=${t.dtype}`);
  if (t.tangent) suffixes.push(`tangent=${formatTensor(t.tangent)}`);
  if (t.gradFn) suffixes.push(`grad_fn=<${t.gradFn.name}>`);
  else if (t.requiresGrad) suffixes.push('requires_grad=True');
  // PyTorch's _add_suffixes: a suffix that would pass the line width starts a line of its own.
  let out = prefix + text;
  let last = out.length - out.lastIndexOf('\n') + 1;
  for (const s of suffixes) {
    if (last + s.length + 2 > LINEWIDTH) {
      out += `,\n${' '.repeat(indent)}${s}`;
      last = indent + s.length;
    } else {
      out += `, ${s}`;
      last += s.length + 2;
    }
  }
  return `${out})`;
}

Object.defineProperty(Tensor.prototype, 'toString', {
  value(this: Tensor): string {
    try {
      return formatTensor(this);
    } catch (e) {
      // A disposed tensor (or one whose device cannot be read) still names itself.
      return `tensor(<${(e as Error).message}>, shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device='${this.device}')`;
    }
  },
  writable: true,
  configurable: true,
});
Object.defineProperty(Tensor.prototype, inspect.custom, {
  value(this: Tensor): string { return this.toString(); },
  writable: true,
  configurable: true,
});
