/**
 * The table the ops_backends*.test.ts suites run: each case is one op (with its options) on
 * inputs of given shapes, checked with checkParity on every native backend against the 'ts'
 * backend's float64 run, forward and backward. Inputs are float32 (checkParity promotes the
 * reference), generated from a seed derived from the case's title so each case is reproducible
 * on its own.
 */
import { describe, expect, it } from 'vitest';
import { fromTypedArray, manualSeed, randn, type DType, type HalfDType, type KernelName, type Tensor } from '@nodegrad/autograd';
import { checkParity, describeBackends } from '@nodegrad/autograd/testing';

/**
 * An input: a shape (standard normal, requires grad), or a spec.
 * - pos: in [0.5, 2), requires grad: for log, sqrt, rsqrt, pow's base, divisors.
 * - int: small integers (ties on purpose) as float32, no grad: comparisons and eq.
 * - index: int64 class indices in [0, n), no grad.
 * - data: the given values as float32, no grad unless `grad`.
 */
export type Input = number[] | { shape: number[]; pos?: boolean; int?: boolean; index?: number; data?: number[];
  grad?: boolean };

export interface Case {
  /** The op and its options: with the input shapes, the test's title. */
  name: string;
  inputs: Input[];
  fn: (...t: Tensor[]) => Tensor | Tensor[];
  /** Tolerances for checkParity when a float32 sum over many terms needs more than the defaults. */
  atol?: number;
  rtol?: number;
  /** Tolerances for the half-type runs, where a case needs more than the type's defaults. */
  half?: { atol?: number; rtol?: number };
}

const shapeOf = (i: Input) => (Array.isArray(i) ? i : i.shape);

function title(c: Case): string {
  return `${c.name}: ${c.inputs.map((i) => `[${shapeOf(i).join(', ')}]`).join(', ')}`;
}

/** A seed from the title, so adding a case does not change the inputs of the others. */
function seedOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function make(input: Input): Tensor {
  if (Array.isArray(input)) return randn(input, { requiresGrad: true });
  const n = input.shape.reduce((a, b) => a * b, 1);
  const z = randn([n], { dtype: 'float64' }).toTypedArray();
  if (input.index !== undefined) {
    const k = input.index;
    return fromTypedArray(Float64Array.from(z, (v) => Math.min(k - 1, Math.floor((0.5 + Math.atan(v) / Math.PI) * k))),
      input.shape, { dtype: 'int64' });
  }
  let data: Float32Array;
  if (input.data) data = Float32Array.from(input.data);
  else if (input.pos) data = Float32Array.from(z, (v) => 0.5 + 1.5 * (0.5 + Math.atan(v) / Math.PI));
  else if (input.int) data = Float32Array.from(z, (v) => Math.round(2 * v));
  else data = Float32Array.from(z);
  const grad = input.grad ?? (input.pos === true);
  return fromTypedArray(data, input.shape, { dtype: 'float32', requiresGrad: grad });
}

/** The half types every parity table is also run in, on the backends that declare them. */
export const HALF_TYPES = ['bfloat16', 'float16'] as const;

/** A float32 input in a half type: the same values rounded, a leaf that requires grad as the original. */
function inDType(t: Tensor, dtype: HalfDType | undefined): Tensor {
  if (!dtype || t.dtype !== 'float32') return t;
  const h = t.detach().to(dtype);
  h.requiresGrad = t.requiresGrad;
  return h;
}

/**
 * Registers `suite [device]` for every backend but 'ts' (the reference), with one test per case:
 * checkParity of the case's function on ['ts', device]. `needs`: the kernels and dtypes the suite
 * computes (describeBackends skips a backend lacking one). With `half`, float inputs are rounded
 * to that type and each backend is compared with the 'ts' emulation of it, within the type's
 * default tolerance (parity.ts DEFAULT_TOLERANCE) unless the case states its own.
 */
export function paritySuite(suite: string, cases: readonly Case[], needs: readonly (readonly [KernelName, DType])[] = [],
  half?: HalfDType): void {
  const titles = cases.map(title);
  const dup = titles.find((t, i) => titles.indexOf(t) !== i);
  if (dup) throw new Error(`paritySuite '${suite}': two cases are titled '${dup}'`);
  describeBackends(describe, suite, (device) => {
    cases.forEach((c, i) => {
      it(titles[i]!, () => {
        manualSeed(seedOf(titles[i]!));
        const inputs = c.inputs.map((i) => inDType(make(i), half));
        const tol = half ? c.half ?? {} : c;
        expect(checkParity(c.fn, inputs, { backends: ['ts', device], atol: tol.atol, rtol: tol.rtol })).toBe(true);
      });
    });
  }, { skip: { ts: 'the reference backend' }, needs });
}
