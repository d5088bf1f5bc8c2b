/**
 * The pieces that bench/resnet.ts (nodegrad against PyTorch) and bench/compare.ts (nodegrad
 * against an earlier checkout of itself) share: flags, case selection, starting a nodegrad worker
 * from a given checkout, the warm-up plus alternating timed blocks, statistics, the CPU model.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CASES, type CaseSpec, type Schedule } from './cases.js';
import { Worker } from './worker_client.js';

export function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench: ${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * The cases `--cases` names, case-insensitively: groups (A, B, C, BF16) or single cases (C18, C50,
 * A-bf16, ...), in the order of CASES.
 */
export function selectCases(list: string): CaseSpec[] {
  const wanted = list.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  const names = (c: CaseSpec) => [c.group.toUpperCase(), c.id.toUpperCase()];
  for (const w of wanted) {
    if (!CASES.some((c) => names(c).includes(w))) {
      throw new Error(`bench: --cases: unknown case ${JSON.stringify(w)}; known: A, B, C (= C18 + C50), C18, C50, ` +
        'BF16 (= A-bf16 + B-bf16 + C18-bf16 + C50-bf16) and each of those');
    }
  }
  return CASES.filter((c) => names(c).some((n) => wanted.includes(n)));
}

/**
 * The environment of every worker: the same thread count on each side. OMP_NUM_THREADS also
 * reaches the OpenMP runtimes of oneDNN (nodegrad) and of ATen's own parallel loops (PyTorch),
 * which set_num_threads covers too.
 */
export function workerEnv(threads: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: String(threads), ...extra };
}

/**
 * Starts bench/nodegrad_cases.ts of the checkout at `root`, with `root` as its working directory:
 * tsx then resolves @nodegrad/* through that checkout's tsconfig paths and node_modules links, so
 * the worker runs that checkout's packages and native addon. Resolves to the reason when it cannot.
 */
export function startNodegrad(root: string, threads: number, name = 'nodegrad', extraEnv: NodeJS.ProcessEnv = {}):
  Promise<Worker | string> {
  const script = join(root, 'bench', 'nodegrad_cases.ts');
  return Worker.start(name, process.execPath, ['--import', 'tsx', script, String(threads)],
    { cwd: root, env: workerEnv(threads, extraEnv) });
}

/** A started worker, or the error that says why the `side` cannot run. */
export function mustStart(w: Worker | string, side: string): Worker {
  if (typeof w === 'string') throw new Error(`bench: the ${side} side cannot run: ${w}`);
  return w;
}

/**
 * Prints what went wrong and exits. Exiting, rather than setting an exit code, matters: a worker
 * still running would keep this process alive; once it exits, the worker's stdin closes and it ends too.
 */
export function fail(e: unknown): never {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sends one `run` request and checks the reply has one time per iteration, whatever the worker's version. */
async function runBlock(w: Worker, iters: number): Promise<number[]> {
  const { seconds } = await w.request({ cmd: 'run', iters });
  if (!Array.isArray(seconds) || seconds.length !== iters || !seconds.every(Number.isFinite)) {
    throw new Error(`bench: ${w.name} answered run(${iters}) with ${JSON.stringify(seconds)}, not ${iters} times in seconds`);
  }
  return seconds;
}

/**
 * Untimed warm-up, then `schedule.repeats` rounds in which each side in turn runs one timed block
 * (side 0, side 1, side 0, ...), so that load from elsewhere on the machine hits all sides alike.
 * Returns, per side, each block's mean seconds per iteration; calls `onRound` after every round.
 */
export async function alternateBlocks(sides: Worker[], schedule: Schedule, onRound?: () => void): Promise<number[][]> {
  for (let i = 0; i < schedule.warmup; i++) for (const w of sides) await runBlock(w, 1);
  const blocks: number[][] = sides.map(() => []);
  for (let r = 0; r < schedule.repeats; r++) {
    for (let s = 0; s < sides.length; s++) blocks[s]!.push(mean(await runBlock(sides[s]!, schedule.iters)));
    onRound?.();
  }
  return blocks;
}

/** The /proc/cpuinfo flags that decide which low-precision kernels oneDNN can use. */
export const CPU_FLAGS = ['avx512f', 'avx512_bf16', 'amx_bf16', 'avx512_fp16'] as const;
export type CpuFlags = Record<(typeof CPU_FLAGS)[number], boolean>;

export function cpuInfo(): { cpu: string; physicalCores: number | null; flags: CpuFlags } {
  const text = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name: string) => [...text.matchAll(new RegExp(`^${name}\\s*: (.*)$`, 'gm'))].map((m) => m[1]!.trim());
  const perSocket = Number(field('cpu cores')[0]);
  const sockets = new Set(field('physical id')).size;
  const have = new Set((field('flags')[0] ?? '').split(/\s+/));
  return {
    cpu: field('model name')[0] ?? 'unknown',
    physicalCores: Number.isFinite(perSocket) && sockets > 0 ? perSocket * sockets : null,
    flags: Object.fromEntries(CPU_FLAGS.map((f) => [f, have.has(f)])) as CpuFlags,
  };
}

/** "avx512_bf16 yes, amx_bf16 yes, avx512_fp16 no". */
export function describeFlags(flags: CpuFlags): string {
  return CPU_FLAGS.map((f) => `${f} ${flags[f] ? 'yes' : 'no'}`).join(', ');
}
