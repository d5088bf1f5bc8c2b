/**
 * The registry of backends: each registered backend is wrapped once (every kernel call checked
 * against its dtype declaration, every storage it creates recorded in the open tidy scope) and
 * handed out by device name.
 */
import { KERNEL_FAMILY, OPTIONAL_KERNELS, type Backend, type KernelName, type Kernels, type Raw } from './backend.js';
import type { DType } from './dtype.js';
import { deferFree, recordCreated } from './scope.js';

export interface BackendStatus {
  name: string;
  available: boolean;
  /** Why it is not available (missing build, missing library, no device). */
  reason?: string;
}

/** The dtype a kernel call computes in: its dtype argument for creation kernels, else its first tensor's. */
function callDType(kernel: KernelName, args: unknown[]): DType | undefined {
  switch (kernel) {
    case 'Fill': case 'OneHot': return args[2] as DType;
    case 'RandomUniform': case 'RandomNormal': return args[1] as DType;
    case 'Bernoulli': return args[3] as DType;
    case 'Where': return (args[1] as Raw).dtype;
    case 'SGDStep': case 'AdamStep': case 'NonFiniteCheckAndUnscale': return (args[0] as Raw[])[0]?.dtype;
    default: {
      for (const a of args) if (a !== null && typeof a === 'object' && 'dtype' in a) return (a as Raw).dtype;
      return undefined;
    }
  }
}

/**
 * The backend as the registry hands it out, every kernel wrapped once: the call is checked
 * against the dtype declaration (so an unsupported call fails the same way on every backend,
 * naming kernel, backend and dtype), and, for a backend whose memory needs freeing, every
 * storage a kernel or an upload creates is recorded in the open tidy scope.
 */
function prepared(backend: Backend): Backend {
  const tracks = !!backend.free;
  // A family declared with no dtype may leave its kernels out ('cuda-emu' has no cuBLAS or cuDNN):
  // a call then fails the dtype check by name, not as "... is not a function". Optional kernels
  // stay absent: callers test for them.
  const declaredNone = (Object.keys(KERNEL_FAMILY) as KernelName[]).filter((k) =>
    !backend.kernels[k] && !OPTIONAL_KERNELS.has(k) && backend.dtypes[KERNEL_FAMILY[k]].length === 0);
  const all = [...Object.entries(backend.kernels), ...declaredNone.map((k) => [k, () => {
    throw new Error(`${k}: the '${backend.name}' backend has no ${KERNEL_FAMILY[k]} kernels`);
  }] as const)];
  const kernels = Object.fromEntries(all.map(([name, k]) => {
    const kernel = name as KernelName;
    const allowed = backend.dtypes[KERNEL_FAMILY[kernel]];
    const check = (dtype: DType | undefined) => {
      if (dtype !== undefined && !allowed.includes(dtype)) {
        throw new Error(`${kernel}: the '${backend.name}' backend does not compute ${KERNEL_FAMILY[kernel]} kernels in ` +
          `${dtype} (it declares ${allowed.join(', ') || 'none'})`);
      }
    };
    return [name, (...args: unknown[]) => {
      check(callDType(kernel, args));
      if (kernel === 'Cast') check(args[1] as DType); // both ends of a cast
      const r = (k as (...a: unknown[]) => unknown)(...args);
      if (tracks) recordCreated(r, self);
      return r;
    }];
  }));
  const free = backend.free;
  const self: Backend = {
    ...backend,
    // A buffer a collective still uses is freed once it lets go (pinBuffer).
    free: free && ((buf: unknown) => { if (!deferFree(buf, free)) free(buf); }),
    fromArray: tracks
      ? (data, shape, dtype) => { const r = backend.fromArray(data, shape, dtype); recordCreated(r, self); return r; }
      : backend.fromArray,
    kernels: kernels as unknown as Kernels,
  };
  return self;
}

const registry = new Map<string, Backend>();
const unavailable = new Map<string, string>();

/** Makes a backend usable as a device name ('ts', 'cpu', 'cuda:0', ...). */
export function registerBackend(backend: Backend): void {
  registry.set(backend.name, prepared(backend));
  unavailable.delete(backend.name);
}

/** Records that a backend could not be loaded, and why; `backends()` reports it. */
export function reportUnavailable(name: string, reason: string): void {
  if (!registry.has(name)) unavailable.set(name, reason);
}

export function getBackend(name: string): Backend {
  const b = registry.get(name);
  if (b) return b;
  const why = unavailable.get(name);
  throw new Error(`device '${name}' is not available` + (why ? `: ${why}` : ` (registered: ${[...registry.keys()].join(', ')})`));
}

/** Every backend known: those registered, and those that failed to load with the reason. */
export function backends(): BackendStatus[] {
  return [
    ...[...registry.keys()].map((name) => ({ name, available: true })),
    ...[...unavailable].map(([name, reason]) => ({ name, available: false, reason })),
  ];
}
