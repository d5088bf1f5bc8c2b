/**
 * Times every kernel call of a backend, by name (or by name and argument shapes), while
 * `recording` is set: bench/profile.ts on 'cpu', bench/gpu_resnet50.ts --profile on 'cuda:0'.
 * `sync` (a GPU's synchronize) runs before and after each timed call, so that a queued kernel's
 * time is its own and not the next call's.
 */
import { getBackend, type Backend } from '@nodegrad/autograd';

export interface KernelTimes {
  recording: boolean;
  /** Per kernel (or kernel and shapes): total ms and calls while recording. */
  readonly times: Map<string, { ms: number; calls: number }>;
}

export function timeKernels(device: string, opts: { byShape?: boolean; sync?: () => void } = {}): KernelTimes {
  // The backend object is shared by every tensor of the device: wrapping its table times them all.
  const backend = getBackend(device) as Backend & { kernels: Record<string, (...a: unknown[]) => unknown> };
  const t: KernelTimes = { recording: false, times: new Map() };
  for (const [name, k] of Object.entries(backend.kernels)) {
    backend.kernels[name] = (...args: unknown[]) => {
      if (!t.recording) return k(...args);
      opts.sync?.();
      const t0 = performance.now();
      const r = k(...args);
      opts.sync?.();
      const key = opts.byShape ? `${name} ${args.flatMap((a) => {
        const shape = (a as { shape?: unknown } | null)?.shape;
        return Array.isArray(shape) ? [`[${shape.join(',')}]`] : [];
      }).join(' ')}` : name;
      const e = t.times.get(key) ?? { ms: 0, calls: 0 };
      e.ms += performance.now() - t0;
      e.calls++;
      t.times.set(key, e);
      return r;
    };
  }
  return t;
}

/** The recorded times per step, the most expensive first. */
export function perStep(t: KernelTimes, steps: number): { name: string; ms: number; calls: number }[] {
  return [...t.times].map(([name, e]) => ({ name, ms: e.ms / steps, calls: e.calls / steps })).sort((a, b) => b.ms - a.ms);
}
