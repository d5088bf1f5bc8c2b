/**
 * The 'cuda:N' backends: build-cuda/Release/nodegrad_cuda.node, an addon apart from the 'cpu' one
 * (it links cuDNN, cuBLAS and NCCL, and must never keep 'cpu' from loading). Importing
 * @nodegrad/native registers 'cuda:0'.. (registerCuda) when the addon loads and finds GPUs;
 * otherwise 'cuda:0' is reported unavailable with the reason: the loader's message, the driver's
 * error (cudaGetDeviceCount), or why the addon was not built.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerBackend, reportUnavailable, type Conv2DParams } from '@nodegrad/autograd';
import { CUDA_DTYPES, createBackend } from './backend.js';
import { isDilated, undilatedConv } from './dilated_conv.js';
import { buildDir } from './load.js';
import type { CudaAddon, CudaMemoryStats, CudaVersions, NcclAddon } from './native.js';

/** Where scripts/build_addon.mjs built the 'cuda' addon (NODEGRAD_CUDA_BUILD_DIR, as there). */
export function cudaBuildDir(): string {
  const dir = process.env.NODEGRAD_CUDA_BUILD_DIR;
  if (dir) return resolve(dir);
  return process.env.NODEGRAD_BUILD_DIR ? `${buildDir()}-cuda` : join(buildDir(), '..', 'build-cuda');
}

const ADDON = join(cudaBuildDir(), 'Release', 'nodegrad_cuda.node');
const SCRIPTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts');

/** Why the addon was not built (its build report's reason), or null when it was. */
function notBuilt(): string | null {
  if (existsSync(ADDON)) return null;
  const report = join(cudaBuildDir(), 'build-report.json');
  const why = existsSync(report) ? (JSON.parse(readFileSync(report, 'utf8')) as { reason: string | null }).reason : null;
  // No report: the install script never ran (pnpm skips dependencies' scripts unless approved).
  return why ?? `the 'cuda' addon was never built (no ${ADDON}; the install script did not run): it builds from source ` +
    `with a CUDA toolchain: \`bash ${join(SCRIPTS, 'cuda-toolchain.sh')}\`, then \`node ${join(SCRIPTS, 'build_addon.mjs')}\``;
}

// Loading the addon maps cuDNN, cuBLAS and NCCL: 154 MiB of resident memory, measured on a machine
// without a GPU, where it finds none. Without the NVIDIA driver's device files there is no GPU to
// find, so the addon is loaded then only for what asks for its libraries (`cuda.describe()`).
const DRIVER_FILES = ['/dev/nvidiactl', '/proc/driver/nvidia/version'];
const noDriver = DRIVER_FILES.some((f) => existsSync(f)) ? null : `no NVIDIA driver on this machine (none of ${DRIVER_FILES.join(', ')} exists)`;

/** Loads the built addon (callers have checked `notBuilt()`), or says why it failed to load. */
function loadCuda(): { addon: CudaAddon | null; reason?: string } {
  try {
    return { addon: createRequire(import.meta.url)(ADDON) as CudaAddon };
  } catch (e) {
    // Typically a library the loader cannot find (libcudnn.so.9): LD_LIBRARY_PATH is read when
    // node starts, so it has to be set before that.
    return { addon: null, reason: `the 'cuda' addon failed to load: ${(e as Error).message}` };
  }
}

const unbuilt = notBuilt();
const loaded = unbuilt ? { addon: null, reason: unbuilt } : noDriver ? { addon: null, reason: noDriver } : loadCuda();
const addon = loaded.addon;
const reason = addon ? (addon.available ? undefined : addon.reason) : loaded.reason;

/** cuda.setDeterministic's setting, read by every dilated convolution. */
let deterministic = false;

/** Registers 'cuda:0'.. as backends, or reports 'cuda:0' unavailable with the reason. */
export function registerCuda(): void {
  if (!addon?.available) return reportUnavailable('cuda:0', reason!);
  for (const device of Object.values(addon.devices)) {
    const backend = createBackend(device, CUDA_DTYPES);
    // In deterministic mode a dilated convolution's backward passes run undilated over a stuffed
    // weight (dilated_conv.ts); the forward's algorithms are all deterministic.
    const k = backend.kernels, direct = { ...k }, stuffed = undilatedConv(direct, backend.free!);
    const pick = (p: Conv2DParams) => (deterministic && isDilated(p) ? stuffed : direct);
    k.Conv2DBackpropInput = (dy, w, s, p) => pick(p).Conv2DBackpropInput(dy, w, s, p);
    k.Conv2DBackpropFilter = (x, dy, s, p, dt) => pick(p).Conv2DBackpropFilter(x, dy, s, p, dt);
    registerBackend(backend);
  }
}

function index(device: string | number | undefined): number {
  if (device === undefined) return 0;
  if (typeof device === 'number') return device;
  const m = /^cuda:(\d+)$/.exec(device);
  if (!m) throw new Error(`cuda: '${device}' is not a CUDA device name (cuda:N)`);
  return Number(m[1]);
}

function need(op: string): CudaAddon {
  if (!addon?.available) throw new Error(`cuda.${op}: CUDA is unavailable: ${reason}`);
  return addon;
}

/** The NCCL process group's binding (@nodegrad/distributed uses it), or why there is none. */
export function ncclBinding(): { nccl: NcclAddon } | { reason: string } {
  if (!addon?.available) return { reason: `CUDA is unavailable: ${reason}` };
  return { nccl: addon.nccl };
}

/** What nodegrad's CUDA build holds here, for `nodegrad doctor`: versions and GPUs, or why not. */
export interface CudaDescription {
  available: boolean;
  reason?: string;
  /** The libraries' versions as loaded (absent when the addon did not load). */
  versions?: CudaVersions;
  devices: { name: string; gpu: string; computeCapability: string; totalMemory: number }[];
}

/** The CUDA side of the process: torch.cuda's counterparts. */
export const cuda = {
  isAvailable: (): boolean => addon?.available ?? false,
  /** Why CUDA is unavailable, or undefined. */
  reason: (): string | undefined => reason,
  deviceCount: (): number => (addon?.available ? addon.deviceCount : 0),
  /** Waits for every kernel queued on the device (default cuda:0). */
  synchronize: (device?: string | number): void => need('synchronize').synchronize(index(device)),
  /** The caching allocator's counters: allocated, reserved, their peaks, and how often the cache served. */
  memoryStats: (device?: string | number): CudaMemoryStats => need('memoryStats').memoryStats(index(device)),
  resetPeakMemoryStats: (device?: string | number): void => need('resetPeakMemoryStats').resetPeakMemoryStats(index(device)),
  /** Returns every cached, unused segment to the driver (torch.cuda.empty_cache). */
  emptyCache: (device?: string | number): void => {
    const a = need('emptyCache');
    a.devices[`cuda:${index(device)}`]!.trimPool();
  },
  /** torch.backends.cudnn.benchmark: measure convolution algorithms per shape, and cache the fastest. */
  setCudnnBenchmark: (on: boolean): void => void need('setCudnnBenchmark').setFlags({ cudnnBenchmark: on }),
  /**
   * Only deterministic cuDNN algorithms (torch.backends.cudnn.deterministic); dilated convolutions
   * then run undilated over a zero-stuffed weight, for which cuDNN has deterministic ones.
   */
  setDeterministic: (on: boolean): void => {
    deterministic = need('setDeterministic').setFlags({ deterministic: on }).deterministic;
  },
  /** TF32 tensor cores for float32 matmul (default off) and cuDNN convolutions (default on), as PyTorch. */
  setAllowTF32: (o: { matmul?: boolean; cudnn?: boolean }): void => {
    const flags: Record<string, boolean> = {};
    if (o.matmul !== undefined) flags.tf32Matmul = o.matmul;
    if (o.cudnn !== undefined) flags.tf32Cudnn = o.cudnn;
    need('setAllowTF32').setFlags(flags);
  },
  flags: () => need('flags').setFlags({}),
  /** Convolution algorithms chosen by measurement so far (one per direction, shape, dtype and math mode). */
  cudnnAlgorithmCacheSize: (): number => need('cudnnAlgorithmCacheSize').cudnnAlgorithmCacheSize(),
  describe(): CudaDescription {
    // Without a driver the addon is loaded here, for its libraries' versions alone.
    if (!addon && noDriver && !unbuilt) {
      const late = loadCuda().addon;
      return { available: false, reason, ...(late ? { versions: late.versions() } : {}), devices: [] };
    }
    if (!addon) return { available: false, reason, devices: [] };
    const devices = [];
    for (let i = 0; i < (addon.available ? addon.deviceCount : 0); i++) {
      const p = addon.deviceProperties(i);
      devices.push({ name: `cuda:${i}`, gpu: p.name, computeCapability: p.computeCapability, totalMemory: p.totalMemory });
    }
    return { available: addon.available, ...(reason ? { reason } : {}), versions: addon.versions(), devices };
  },
};
