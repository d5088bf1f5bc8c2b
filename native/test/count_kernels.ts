// Counts calls of named kernels of a backend while a function runs: the fused paths are checked
// by which kernels they reach, not by timing.
import { getBackend, type KernelName } from '@nodegrad/autograd';

/** Runs fn and returns its result with the number of calls of each named kernel of `device`. */
export function countKernels<T>(names: KernelName[], fn: () => T, device = 'cpu'): [T, Record<string, number>] {
  const table = getBackend(device).kernels as unknown as Record<string, (...a: unknown[]) => unknown>;
  const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const saved = names.map((n) => table[n]);
  names.forEach((n, i) => {
    const k = saved[i];
    if (k) table[n] = (...a) => { counts[n]!++; return k(...a); };
  });
  try {
    return [fn(), counts];
  } finally {
    names.forEach((n, i) => { if (saved[i]) table[n] = saved[i]!; });
  }
}
