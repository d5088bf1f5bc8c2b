/**
 * `nodegrad bench`: runs the repository's benchmark, bench/resnet.ts (nodegrad's native 'cpu'
 * backend against PyTorch on ResNet training and inference), as a child process through tsx.
 * The script is part of the source checkout, not of the published packages, so the command
 * finds it by walking up from this module and says so when it is not there.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, formatFlags, parseFlags, type FlagSpecs } from '../args.js';

export const BENCH_FLAGS: FlagSpecs = {
  quick: { type: 'bool', help: 'fewer warm-up and timed repeats (about a third of the time; noisier numbers)' },
  cases: { type: 'string', help: 'comma-separated cases: A, B, C (= C18 + C50), C18, C50, BF16 (default A,B,C,BF16)', placeholder: 'A,B,C' },
  threads: { type: 'int', min: 1, help: 'threads for each side (default: all logical cores)' },
  gemm: { type: 'int', min: 1, help: 'size N of the N^3 float32 matmul measured as peak GEMM (default 1024)' },
  peers: { type: 'string', help: 'the folder bench/peers.sh fills with PyTorch and ONNX Runtime (default ~/.cache/nodegrad-peers)', placeholder: 'DIR' },
  python: { type: 'string', help: "the Python with PyTorch (default: the peers' venv, else /usr/bin/python3)", placeholder: 'PATH' },
  out: { type: 'string', help: 'where to write the Markdown report (default ./bench-report.md)', placeholder: 'FILE' },
};

export const BENCH_HELP = `nodegrad bench: nodegrad's native 'cpu' backend against PyTorch and ONNX Runtime on ResNets

Runs the benchmark of the repository (bench/resnet.ts, the one \`npm run bench\` runs):
  A    ResNet-18, small-image stem, training step, batch 32 of 3x32x32
  B    ResNet-50, training step, batch 8 of 3x224x224
  C18  ResNet-18, inference, batch 8 of 3x224x224
  C50  ResNet-50, inference, batch 8 of 3x224x224
and their bfloat16 twins (BF16), plus a peak-sgemm measurement. Each side (nodegrad; PyTorch
NCHW and channels-last; ONNX Runtime for float32 inference; peers from bench/peers.sh) runs in a
fresh child process per case with the same thread count; timed blocks alternate between the
sides. It prints per-case times, images/s, GFLOP/s and the ratio to the fastest peer, peak
memory, and writes a Markdown report. The full run takes several minutes on a 2-core machine;
--quick about a third of that. Needs the source checkout (bench/ is not in the npm packages).

${formatFlags(BENCH_FLAGS)}`;

/** The checkout's root: the first folder above `from` that holds bench/resnet.ts, or null. */
export function findBenchRoot(from = dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bench', 'resnet.ts'))) return dir;
    if (dirname(dir) === dir) return null;
  }
}

export interface BenchInvocation {
  command: string;
  args: string[];
  cwd: string;
}

/**
 * The child process `nodegrad bench` starts for parsed flags: node with tsx's loader on
 * bench/resnet.ts in the checkout, flags passed through; --out is made absolute against the
 * caller's folder (the script resolves it against the checkout), and defaults there to
 * bench-report.md rather than the script's docs/benchmarks.md, which holds the published numbers.
 */
export function benchInvocation(flags: Record<string, unknown>, root: string, cwd = process.cwd()): BenchInvocation {
  const args = ['--import', 'tsx', join(root, 'bench', 'resnet.ts')];
  if (flags.quick === true) args.push('--quick');
  for (const name of ['cases', 'threads', 'gemm', 'peers', 'python'] as const) {
    if (flags[name] !== undefined) args.push(`--${name}`, String(flags[name]));
  }
  args.push('--out', resolve(cwd, typeof flags.out === 'string' ? flags.out : 'bench-report.md'));
  return { command: process.execPath, args, cwd: root };
}

/** `nodegrad bench [--quick] [--cases A,B,C] ...`; resolves to the benchmark's exit code. */
export async function runBench(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${BENCH_HELP}\n`);
    return 0;
  }
  const flags = parseFlags('bench', BENCH_FLAGS, argv);
  const root = findBenchRoot();
  if (!root) {
    throw new CliError('nodegrad bench: bench/resnet.ts was not found above this install; the benchmark ships with ' +
      'the source checkout (git clone the repository, npm install, then run nodegrad bench there)');
  }
  if (!existsSync(join(root, 'node_modules', 'tsx'))) {
    throw new CliError(`nodegrad bench: tsx is not installed in ${root}/node_modules; run npm install in the checkout`);
  }
  const inv = benchInvocation(flags, root);
  return new Promise((done, fail) => {
    const child = spawn(inv.command, inv.args, { cwd: inv.cwd, stdio: 'inherit' });
    child.on('error', (e) => fail(new CliError(`nodegrad bench: cannot start ${inv.command}: ${e.message}`)));
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 + signalNumber(signal) : 1)));
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 1;
}
