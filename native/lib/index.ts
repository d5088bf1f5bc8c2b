/**
 * @nodegrad/native: importing it registers the 'cpu' backend and makes it the default device when
 * the addon is built, or records (and says once) why it is not.
 */
import { registerBackend, reportUnavailable, setDefaultDevice } from '@nodegrad/autograd';
import { createCpuBackend } from './cpu_backend.js';
import { loadAddon } from './load.js';
import type { FeatureStatus, NativeAddon } from './native.js';

const loaded = loadAddon();
const addon: NativeAddon | null = loaded.addon;
if (addon) {
  registerBackend(createCpuBackend(addon));
  setDefaultDevice('cpu');
} else {
  reportUnavailable('cpu', loaded.reason!);
  process.emitWarning(`nodegrad: the native 'cpu' backend is unavailable: ${loaded.reason}`, { code: 'NODEGRAD_NATIVE' });
}

export interface BuildDescription {
  /** Whether the addon loaded. */
  loaded: boolean;
  /** Why it did not. */
  reason?: string;
  features: Record<'onednn' | 'cuda' | 'nccl' | 'mpi', FeatureStatus>;
}

/** What the native build contains, and why each missing part is missing. */
export function describeBuild(): BuildDescription {
  if (!addon) {
    const off = { enabled: false, reason: loaded.reason! };
    return { loaded: false, reason: loaded.reason!, features: { onednn: off, cuda: off, nccl: off, mpi: off } };
  }
  return { loaded: true, features: { ...addon.buildInfo } };
}

/** Live native tensor handles and bytes, and what the buffer pool keeps for reuse. */
export function memoryStats(): { liveHandles: number; liveBytes: number; poolCachedBytes: number } {
  return addon ? addon.memoryStats() : { liveHandles: 0, liveBytes: 0, poolCachedBytes: 0 };
}

/**
 * Fixes the kernels' thread count; must run before the first conv or matmul creates a primitive
 * (oneDNN sizes its work for the threads at creation). Defaults to OMP_NUM_THREADS.
 */
export function setNumThreads(n: number): void {
  if (!addon) throw new Error(`setNumThreads: the native 'cpu' backend is unavailable: ${loaded.reason}`);
  addon.setNumThreads(n);
}

/**
 * Debug: the layout a 'cpu' tensor's native buffer holds: 'nchw', or oneDNN's blocked 'nChw16c'
 * ('nChw8c') that conv, batch norm and elementwise results keep between kernels. toArray and every
 * kernel without a blocked path see NCHW regardless.
 */
export function nativeLayout(t: { buf: unknown; shape: readonly number[]; dtype: string }): string {
  if (!addon) throw new Error(`nativeLayout: the native 'cpu' backend is unavailable: ${loaded.reason}`);
  return addon.layoutOf(t as Parameters<NativeAddon['layoutOf']>[0]);
}

export function getNumThreads(): number {
  return addon ? addon.getNumThreads() : 1;
}

export type { FeatureStatus, NativeAddon } from './native.js';
