/**
 * Kernel-level parity for the contract_*.test.ts suites: a backend's kernel runs in float32 on
 * data rounded to float32, the 'ts' kernel in float64 on the same data is the reference, and each
 * element must lie within RTOL times a bound: the same ts kernel applied to |inputs| (Σ|terms|, the
 * forward-error bound of a float32 sum, so that cancellation cannot make a correct value fail),
 * or one number for all elements, or 0 for kernels that must agree exactly (max, indices).
 */
import { expect } from 'vitest';
import { getBackend, type Raw, type Shape } from '@nodegrad/autograd';

export const RTOL = 1e-5;

/** A deterministic generator of values in [-1, 1) (an LCG), so every backend gets the same data. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 * 2 - 1;
  };
}

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** The same float32 values on the device under test, as float64 on 'ts', and their |values| as float64. */
export interface Operand { dev: Raw; ref: Raw; abs: Raw }

/** The kernel-level helpers for one device. */
export function kernelParity(device: string) {
  const backend = () => getBackend(device);
  const host = (r: Raw): number[] => Array.from(backend().readSync(r));
  return {
    kernels: () => backend().kernels,
    host,
    operand(shape: Shape, f: (i: number) => number): Operand {
      const f32 = Float32Array.from({ length: size(shape) }, (_, i) => f(i));
      return {
        dev: backend().fromArray(f32, shape, 'float32'),
        ref: { buf: Float64Array.from(f32), shape, dtype: 'float64' },
        abs: { buf: Float64Array.from(f32, Math.abs), shape, dtype: 'float64' },
      };
    },
    /** got (float32 on the device) within RTOL · bound of ref; equal values and NaN against NaN pass. Frees got. */
    expectClose(got: Raw, ref: Raw, bound: Raw | number, what = ''): void {
      expect(got.shape, what).toEqual(ref.shape);
      expect(got.dtype, what).toBe('float32');
      const g = host(got), r = ref.buf as Float64Array;
      expect(g.length, what).toBe(r.length);
      for (let i = 0; i < g.length; i++) {
        const b = typeof bound === 'number' ? bound : (bound.buf as Float64Array)[i]!;
        const err = Math.abs(g[i]! - r[i]!);
        if (!(err <= RTOL * b + 1e-30) && !(Number.isNaN(r[i]!) && Number.isNaN(g[i]!)) && g[i] !== r[i]) {
          throw new Error(`${what} element ${i}: got ${g[i]}, expected ${r[i]} (error ${err}, bound ${b})`);
        }
      }
      backend().free?.(got.buf);
    },
  };
}
