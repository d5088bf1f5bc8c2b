/** PyTorch-style text for extraRepr(): Python's spelling of floats, tuples, booleans and None. */

/** A float as Python's repr prints it: 0.1, 1e-05, 1.0. */
export function pyFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const e = x === 0 ? 0 : Math.floor(Math.log10(Math.abs(x)));
  // Python switches to scientific notation below 1e-4 and from 1e16, with a two-digit exponent.
  if (x !== 0 && (e < -4 || e >= 16)) {
    return x.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}

/** A boolean, null or a (tuple of) number(s) as Python prints it: True, None, (3, 3). */
export function py(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.length === 1 ? `(${py(v[0])},)` : `(${v.map(py).join(', ')})`;
  return String(v);
}
