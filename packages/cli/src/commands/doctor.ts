/**
 * `nodegrad doctor`: what this machine and this install can run, and why not where something is
 * missing — Node, the CPU (and its half-type instructions), each backend (ts, cpu) with the reason it
 * is absent or the kernel families it computes in bfloat16 and float16, the native build's
 * features (oneDNN, MPI), threads, package versions, and whether PyTorch is there to compare against.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backends, defaultDevice, getBackend, KERNEL_FAMILY, type HalfDType, type KernelFamily } from '@nodegrad/autograd';
import { cuda, describeBuild, getNumThreads, type AddonOrigin, type BuildDescription, type CudaDescription } from '@nodegrad/native';
import { formatFlags, parseFlags, type FlagSpecs } from '../args.js';

export interface BackendReport {
  name: string;
  available: boolean;
  /** Why it is not available. */
  reason?: string;
  /** Available ones: the kernel families it computes in each half type (mixed precision). */
  half?: Record<HalfDType, KernelFamily[]>;
}

export interface DoctorReport {
  node: string;
  platform: string;
  arch: string;
  kernel: string;
  cpu: { model: string; logicalCores: number; physicalCores: number | null; halfFlags: string[] };
  memoryGiB: number;
  /** Every backend registered or reported unavailable, as `backends()` gives them. */
  backends: BackendReport[];
  defaultDevice: string;
  build: BuildDescription;
  threads: { native: number; ompNumThreads: string | null };
  /** The 'cuda' addon: GPUs and library versions, or why not. */
  cuda: CudaDescription;
  /** Version of each @nodegrad package found, or why it was not. */
  packages: Record<string, string>;
  /** PyTorch through `python -c 'import torch'`; null when not checked. */
  torch: { available: boolean; version?: string; python: string; reason?: string } | null;
}

export interface DoctorOptions {
  /** Look for PyTorch (a Python start-up, a few seconds); default true. */
  torch?: boolean;
  python?: string;
  torchTimeoutMs?: number;
}

export const NODEGRAD_PACKAGES = ['@nodegrad/autograd', '@nodegrad/nn', '@nodegrad/native', '@nodegrad/data', '@nodegrad/distributed', 'nodegrad'];

/** Physical cores from /proc/cpuinfo (Linux); null where it cannot tell. */
function physicalCores(): number | null {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const cores = new Set<string>();
    let phys = '';
    for (const line of text.split('\n')) {
      const [k, v] = line.split(':').map((s) => s.trim());
      if (k === 'physical id') phys = v ?? '';
      else if (k === 'core id') cores.add(`${phys}/${v}`);
    }
    return cores.size > 0 ? cores.size : null;
  } catch {
    return null;
  }
}

/** The CPU's instructions for the half types, from /proc/cpuinfo (Linux): what oneDNN's bf16/f16 kernels need. */
const HALF_FLAGS = ['avx512_bf16', 'amx_bf16', 'avx512_fp16', 'amx_fp16', 'f16c'];
function halfFlags(): string[] {
  try {
    const flags = new Set(/^flags\s*: (.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(' ') ?? []);
    return HALF_FLAGS.filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

/** Every backend `backends()` knows ('ts', and 'cpu' once @nodegrad/native is imported), with why not. */
function backendReports(): BackendReport[] {
  return backends().map((b) => {
    if (!b.available) return { name: b.name, available: false, ...(b.reason ? { reason: b.reason } : {}) };
    const { dtypes } = getBackend(b.name);
    const families = (t: HalfDType) => (Object.keys(dtypes) as KernelFamily[]).filter((f) => dtypes[f].includes(t));
    return { name: b.name, available: true, half: { bfloat16: families('bfloat16'), float16: families('float16') } };
  });
}

/** 'all' when a half type covers every family, else the families it covers. */
function formatHalf(h: BackendReport['half']): string {
  if (!h) return '';
  const all = (fs: KernelFamily[]) => (fs.length === new Set(Object.values(KERNEL_FAMILY)).size ? 'all kernels' : fs.join(' ') || 'none');
  return `bfloat16: ${all(h.bfloat16)}; float16: ${all(h.float16)}`;
}

/** This module's folder; package lookups walk up from it, as Node's resolution does. */
const here = dirname(fileURLToPath(import.meta.url));

/**
 * Finds `name`'s package.json the way Node resolves it from here (node_modules folders upwards),
 * without importing it; the packages' `exports` maps do not expose package.json to require.
 */
function packageVersion(name: string): string {
  for (let dir = here; ; dir = dirname(dir)) {
    const self = join(dir, 'package.json');
    if (existsSync(self)) {
      try {
        const pkg = JSON.parse(readFileSync(self, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? 'no version field';
      } catch { /* an unreadable package.json is not ours; keep looking */ }
    }
    const file = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(file)) {
      try {
        return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'no version field';
      } catch (e) {
        return `unreadable package.json: ${(e as Error).message}`;
      }
    }
    if (dirname(dir) === dir) return 'not installed';
  }
}

function torchReport(python: string, timeoutMs: number): NonNullable<DoctorReport['torch']> {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? `${python} not found`
      : code === 'ETIMEDOUT' ? `import torch took over ${timeoutMs / 1000} s` : r.error.message;
    return { available: false, python, reason };
  }
  if (r.status !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? `exit code ${r.status}`;
    return { available: false, python, reason: last };
  }
  return { available: true, python, version: r.stdout.trim() };
}

/** Collects the report; synchronous (the PyTorch probe waits for its child process). */
export function doctor(opts: DoctorOptions = {}): DoctorReport {
  const build = describeBuild();
  const cpuList = cpus();
  return {
    node: process.version,
    platform: platform(),
    arch: arch(),
    kernel: release(),
    cpu: {
      model: cpuList[0]?.model.trim() ?? 'unknown', logicalCores: availableParallelism(), physicalCores: physicalCores(),
      halfFlags: halfFlags(),
    },
    memoryGiB: totalmem() / 2 ** 30,
    backends: backendReports(),
    defaultDevice: defaultDevice(),
    build,
    threads: { native: getNumThreads(), ompNumThreads: process.env.OMP_NUM_THREADS ?? null },
    cuda: cuda.describe(),
    packages: Object.fromEntries(NODEGRAD_PACKAGES.map((p) => [p, packageVersion(p)])),
    torch: opts.torch === false ? null : torchReport(opts.python ?? '/usr/bin/python3', opts.torchTimeoutMs ?? 30_000),
  };
}

const mark = (ok: boolean) => (ok ? 'yes' : 'no ');

/** The report as the command prints it. */
export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`node      ${r.node} (${r.platform} ${r.arch}, kernel ${r.kernel})`);
  lines.push(`cpu       ${r.cpu.model}: ${r.cpu.logicalCores} logical cores` +
    `${r.cpu.physicalCores !== null ? `, ${r.cpu.physicalCores} physical` : ''}; ${r.memoryGiB.toFixed(1)} GiB memory; ` +
    `half-type instructions: ${r.cpu.halfFlags.join(' ') || 'none'}`);
  lines.push('backends');
  for (const b of r.backends) {
    lines.push(`  ${b.name.padEnd(Math.max(8, b.name.length + 1))}${mark(b.available)} ${b.available ? formatHalf(b.half) : b.reason ?? ''}`.trimEnd());
  }
  lines.push(`  default device: ${r.defaultDevice}`);
  lines.push(`native    ${r.build.loaded ? `addon loaded: ${formatOrigin(r.build.origin!)}` : `addon not loaded: ${r.build.reason}`}`);
  for (const [name, f] of Object.entries(r.build.features)) {
    lines.push(`  ${name.padEnd(8)}${mark(f.enabled)} ${f.enabled ? '' : f.reason ?? ''}`.trimEnd());
  }
  lines.push(`threads   native kernels ${r.threads.native}; OMP_NUM_THREADS ${r.threads.ompNumThreads ?? 'unset'}`);
  lines.push(...formatCuda(r.cuda));
  lines.push('packages');
  const width = Math.max(0, ...Object.keys(r.packages).map((n) => n.length)) + 2;
  for (const [name, v] of Object.entries(r.packages)) lines.push(`  ${name.padEnd(width)}${v}`);
  if (r.torch) {
    lines.push(`pytorch   ${r.torch.available ? `${r.torch.version} (${r.torch.python})` : `not available: ${r.torch.reason}`}`);
  }
  return lines.join('\n');
}

/** Where the addon came from, as `doctor` prints it. */
function formatOrigin(o: AddonOrigin): string {
  return o.kind === 'prebuilt' ? `prebuilt, from ${o.package} (${o.file})` : `built from source (${o.file})`;
}

/** CUDA versions as CUDA writes them: 13000 -> 13.0, cuDNN 91900 -> 9.19.0, NCCL 22809 -> 2.28.9. */
function formatCuda(c: CudaDescription): string[] {
  const lines = [`cuda      ${c.available ? `${c.devices.length} GPU${c.devices.length === 1 ? '' : 's'}` : `unavailable: ${c.reason}`}`];
  for (const d of c.devices) {
    lines.push(`  ${d.name.padEnd(8)}${d.gpu}, compute ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB`);
  }
  const v = c.versions;
  if (v) {
    const cudaVer = (n?: number) => (n ? `${Math.floor(n / 1000)}.${(n % 1000) / 10}` : 'none');
    const dotted = (n: number | undefined, a: number, b: number) =>
      n === undefined ? 'unknown' : `${Math.floor(n / a)}.${Math.floor((n % a) / b)}.${n % b}`;
    lines.push(`  driver ${cudaVer(v.driver)}, runtime ${cudaVer(v.runtime)}, cuDNN ${dotted(v.cudnn, 10000, 100)}, ` +
      `cuBLAS ${v.cublas}, NCCL ${dotted(v.nccl, 10000, 100)}`);
  }
  return lines;
}

export const DOCTOR_FLAGS: FlagSpecs = {
  json: { type: 'bool', help: 'print the report as JSON' },
  torch: { type: 'bool', help: 'look for PyTorch with python -c "import torch" (default true; --torch=false skips it)' },
  python: { type: 'string', help: 'the Python to look for PyTorch with (default /usr/bin/python3)', placeholder: 'PATH' },
};

export const DOCTOR_HELP = `nodegrad doctor: what this machine and install can run

Prints Node's version, the platform, the CPU model, cores and half-type instructions
(avx512_bf16, amx_bf16, avx512_fp16, ...), each backend (ts, cpu) and why one is missing or which
kernel families it computes in bfloat16 and float16 (for --amp), the native build's features (oneDNN, MPI) with the reason one is missing,
the kernel thread count and OMP_NUM_THREADS, the @nodegrad package versions, and PyTorch's
version where \`python -c 'import torch'\` works (checked with a 30 s timeout).

${formatFlags(DOCTOR_FLAGS)}`;

/** `nodegrad doctor [--json] [--torch=false] [--python PATH]`; returns the exit code. */
export function runDoctor(argv: readonly string[], out: { write(s: string): unknown } = process.stdout): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(`${DOCTOR_HELP}\n`);
    return 0;
  }
  const flags = parseFlags('doctor', DOCTOR_FLAGS, argv);
  const report = doctor({ torch: flags.torch !== false, ...(typeof flags.python === 'string' ? { python: flags.python } : {}) });
  out.write(`${flags.json ? JSON.stringify(report, null, 2) : formatDoctor(report)}\n`);
  return 0;
}
