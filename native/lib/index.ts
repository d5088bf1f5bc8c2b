/**
 * @nodegrad/native: importing it registers the 'cpu' backend and makes it the default device when
 * the addon is built with oneDNN, or records (and says once) why 'cpu' is unavailable; and it
 * registers 'cuda:0'.. when the 'cuda' addon loads and finds GPUs, else reports why not (cuda.ts).
 */
import { registerBackend, reportUnavailable, setDefaultDevice } from '@nodegrad/autograd';
import { CPU_DTYPES, createBackend } from './backend.js';
import { registerCuda } from './cuda.js';
import { loadAddon, type AddonOrigin } from './load.js';
import type { FeatureStatus, MemoryStats, MpiAddon, NativeAddon } from './native.js';

const loaded = loadAddon();
const addon: NativeAddon | null = loaded.addon;
const cpuUnavailable = whyCpuUnavailable();
if (cpuUnavailable === null) {
  registerBackend(createBackend(addon!.cpu, CPU_DTYPES));
  setDefaultDevice('cpu');
} else {
  reportUnavailable('cpu', cpuUnavailable);
  process.emitWarning(`nodegrad: the native 'cpu' backend is unavailable: ${cpuUnavailable}`, { code: 'NODEGRAD_NATIVE' });
}
registerCuda();

/**
 * Why 'cpu' cannot be offered, or null when it can. An addon built without oneDNN loads, but its
 * conv and matmul throw: registering it would make 'cpu' the default device and fail the first
 * model, so 'cpu' is unavailable then, with what to do about it.
 */
function whyCpuUnavailable(): string | null {
  if (!addon) return loaded.reason!;
  const onednn = addon.buildInfo.onednn;
  if (onednn.enabled) return null;
  return `built without oneDNN (${onednn.reason}): install libdnnl-dev and rebuild (node native/scripts/build_addon.mjs)`;
}

export interface BuildDescription {
  /** Whether the addon loaded. */
  loaded: boolean;
  /** Why it did not. */
  reason?: string;
  /** Where the loaded addon came from: built from source here, or a platform package's prebuilt. */
  origin?: AddonOrigin;
  /** The optional parts of the build, each with why it is missing. */
  features: Record<'onednn' | 'mpi', FeatureStatus>;
}

/** What the native build contains, and why each missing part is missing. */
export function describeBuild(): BuildDescription {
  if (!addon) {
    const missing = { enabled: false, reason: loaded.reason! };
    return { loaded: false, reason: loaded.reason!, features: { onednn: missing, mpi: missing } };
  }
  return { loaded: true, origin: { ...loaded.origin! }, features: { onednn: { ...addon.buildInfo.onednn }, mpi: mpiStatus() } };
}

/** Whether MPI is built in; a prebuilt addon never has it (a prebuilt cannot assume Open MPI), so say how to get it. */
function mpiStatus(): FeatureStatus {
  const mpi = addon!.buildInfo.mpi;
  if (mpi.enabled || loaded.origin!.kind !== 'prebuilt') return { ...mpi };
  return { enabled: false, reason: `the prebuilt addon (${loaded.origin!.package}) has no MPI process group: install Open MPI ` +
    '(Debian: libopenmpi-dev openmpi-bin) and build from source with `NODEGRAD_BUILD_FROM_SOURCE=1 npm rebuild @nodegrad/native`' };
}

/** The MPI process group's binding (@nodegrad/distributed uses it), or why there is none. */
export function mpiBinding(): { mpi: MpiAddon } | { reason: string } {
  if (!addon) return { reason: `the native addon did not load: ${loaded.reason}` };
  if (!addon.mpi) return { reason: `the native addon was built without MPI: ${mpiStatus().reason}` };
  return { mpi: addon.mpi };
}

/** Live native tensor handles and bytes, and what the buffer pool keeps for reuse. */
export function memoryStats(): MemoryStats {
  return addon ? addon.cpu.memoryStats() : { liveHandles: 0, liveBytes: 0, poolCachedBytes: 0 };
}

/**
 * Gives the buffers the 'cpu' pool keeps for reuse back to the system, as torch.cuda.empty_cache()
 * does on a GPU: after a one-time phase (loading, fusing) whose freed tensors the steady state will
 * not reuse, so they stop counting into the process's memory.
 */
export function emptyCache(): void {
  addon?.cpu.trimPool();
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
 * ('nChw8c') or channels-last 'nhwc', which conv, batch norm and elementwise results keep between
 * kernels. toArray and every kernel without a blocked path see NCHW regardless.
 */
export function nativeLayout(t: { buf: unknown; shape: readonly number[]; dtype: string }): string {
  if (!addon) throw new Error(`nativeLayout: the native 'cpu' backend is unavailable: ${loaded.reason}`);
  return addon.cpu.layoutOf(t as Parameters<NativeAddon['cpu']['layoutOf']>[0]);
}

export function getNumThreads(): number {
  return addon ? addon.getNumThreads() : 1;
}

export { cuda, cudaBuildDir, ncclBinding, type CudaDescription } from './cuda.js';
export type { MpiAddon, MpiReduceOp, MpiTensor, MpiWork, NcclAddon, NcclComm, NcclWork } from './native.js';
export { registerCudaEmulation } from './emulation.js';
export type { AddonOrigin } from './load.js';
export type { CudaFlags, CudaMemoryStats, CudaVersions, FeatureStatus, MemoryStats, NativeAddon, NativeDevice } from './native.js';
