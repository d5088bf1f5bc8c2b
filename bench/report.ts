/**
 * The benchmark's results as data, and their two renderings: a summary for the console and
 * docs/benchmarks.md.
 */
import { BF16_TARGET, float32Id, type CaseSpec, type Schedule } from './cases.js';
import { describeFlags, type CpuFlags } from './harness.js';
import type { NativeMemory } from './worker_client.js';

export interface SideResult {
  /** Seconds per iteration of each timed block (the block's mean). */
  blocks: number[];
  median: number;
  best: number;
  params: number;
  /** Forward MACs per image, counted by the worker's hooks. */
  macs: number;
  /** Peak RSS after start-up (imports, before any model), and over the whole case. */
  startRssKB: number;
  maxRssKB: number;
  /** nodegrad only: native tensors alive and pooled at the end of the case. */
  native?: NativeMemory;
}

export interface CaseResult {
  spec: CaseSpec;
  schedule: Schedule;
  /** FLOPs of one iteration, from the architecture (bench/flops.ts). */
  flops: number;
  analyticMacs: number;
  nodegrad: SideResult;
  torch: SideResult | null;
}

/** A case that could not run, with the worker's message (e.g. a kernel missing in bfloat16). */
export interface CaseFailure {
  spec: CaseSpec;
  error: string;
}

export interface GemmResult {
  n: number;
  median: number;
  best: number;
  gflops: number;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  threads: number;
  caseIds: string[];
  warnings: string[];
  /** Why the PyTorch side did not run, or null when it did. */
  torchSkipped: string | null;
  machine: {
    cpu: string; logicalCpus: number; physicalCores: number | null; memGiB: number; kernel: string;
    /** avx512_bf16, amx_bf16, avx512_fp16 in /proc/cpuinfo. */
    flags: CpuFlags;
  };
  versions: {
    node: string; nodegrad: string; onednn: string;
    torch: string | null; torchvision: string | null; python: string | null; torchBlas: string | null;
  };
  gemm: { nodegrad: GemmResult; torch: GemmResult | null };
  cases: CaseResult[];
  failures: CaseFailure[];
}

const imgPerSec = (c: CaseResult, s: SideResult, t = s.median) => c.spec.batch / t;
const mib = (kb: number) => (kb / 1024).toFixed(0);
const f = (x: number, digits = 2) => x.toFixed(digits);

/** The machine's measured sgemm peak: the faster of the two sides' matmuls. */
function peakGflops(r: BenchReport): number {
  return Math.max(r.gemm.nodegrad.gflops, r.gemm.torch?.gflops ?? 0);
}

function ratio(c: CaseResult): number | null {
  return c.torch ? c.torch.median / c.nodegrad.median : null;
}

/** nodegrad's bfloat16 speed over its float32 twin's, when that ran in the same invocation. */
export function overFloat32(c: CaseResult, all: readonly CaseResult[]): number | null {
  if (c.spec.precision === 'float32') return null;
  const twin = all.find((o) => o.spec.id === float32Id(c.spec));
  return twin ? twin.nodegrad.median / c.nodegrad.median : null;
}

function verdict(ok: boolean | null): string {
  return ok === null ? 'n/a' : ok ? 'met' : 'not met';
}

function describeCase(s: CaseSpec): string {
  const what = s.mode === 'train'
    ? 'forward + cross-entropy + backward + SGD(momentum 0.9) step'
    : 'inference (no grad; nodegrad on its fuseForInference copy, PyTorch in eval mode)';
  const precision = s.precision === 'float32'
    ? 'float32'
    : s.mode === 'train'
      ? 'bfloat16 autocast on both sides (float32 parameters and SGD; PyTorch in channels_last)'
      : 'bfloat16 (nodegrad: fused model and input cast once to bfloat16; PyTorch: autocast, channels_last)';
  return `Batch ${s.batch}, 3x${s.size}x${s.size}, ${s.numClasses} classes; ${what}; ${precision}`;
}

/** One line per case for the terminal, as soon as it is measured (`earlier`: the cases measured before). */
export function caseLine(c: CaseResult, earlier: readonly CaseResult[] = []): string {
  const q = overFloat32(c, earlier);
  const ng = `nodegrad ${f(imgPerSec(c, c.nodegrad))} img/s${q === null ? '' : ` (${f(q)}x its float32)`}`;
  if (!c.torch) return ng;
  return `${ng}, PyTorch ${f(imgPerSec(c, c.torch))} img/s: ${f(ratio(c)!)}x (target >= ${c.spec.target})`;
}

/** A plain-text table for the terminal. */
export function consoleSummary(r: BenchReport): string {
  const peak = peakGflops(r);
  const out = [
    '',
    `sgemm ${r.gemm.nodegrad.n}^3: nodegrad ${f(r.gemm.nodegrad.gflops, 1)} GFLOP/s` +
      (r.gemm.torch ? `, PyTorch ${f(r.gemm.torch.gflops, 1)} GFLOP/s` : ''),
    `CPU flags: ${describeFlags(r.machine.flags)}`,
    '',
    'case      side      img/s   best  ms/iter  GFLOP/s  %peak  peak RSS MiB',
  ];
  for (const c of r.cases) {
    const row = (label: string, s: SideResult, id: string) => {
      const gflops = c.flops / s.median / 1e9;
      out.push(`${id.padEnd(9)} ${label.padEnd(8)} ${f(imgPerSec(c, s)).padStart(6)} ${f(imgPerSec(c, s, s.best)).padStart(6)} ` +
        `${f(s.median * 1e3, 0).padStart(8)} ${f(gflops, 1).padStart(8)} ${f(100 * gflops / peak, 0).padStart(6)} ` +
        `${mib(s.maxRssKB).padStart(13)}`);
    };
    row('nodegrad', c.nodegrad, c.spec.id);
    if (c.torch) {
      row('PyTorch', c.torch, '');
      out.push(`          nodegrad/PyTorch ${f(ratio(c)!)} (target >= ${c.spec.target}: ${verdict(ratio(c)! >= c.spec.target)}), ` +
        `peak RSS ${mib(c.nodegrad.maxRssKB)} vs ${mib(c.torch.maxRssKB)} MiB ` +
        `(target <=: ${verdict(c.nodegrad.maxRssKB <= c.torch.maxRssKB)})`);
    }
    const q = overFloat32(c, r.cases);
    if (q !== null) out.push(`          nodegrad bfloat16/float32 ${f(q)}`);
  }
  for (const x of r.failures) out.push(`${x.spec.id.padEnd(9)} FAILED: ${firstLines(x.error, 3)}`);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}

/** The first `n` lines of an error message, for a table or a summary (the full message is printed as it happens). */
function firstLines(text: string, n: number): string {
  return text.split('\n').slice(0, n).join(' / ').slice(0, 600);
}

function sideRow(r: BenchReport, c: CaseResult, label: string, s: SideResult): string {
  const gflops = c.flops / s.median / 1e9;
  return `| ${label} | ${f(imgPerSec(c, s))} | ${f(imgPerSec(c, s, s.best))} | ${f(s.median * 1e3, 0)} | ` +
    `${f(gflops, 1)} | ${f(100 * gflops / peakGflops(r), 0)}% | ${mib(s.maxRssKB)} | ${mib(s.startRssKB)} |`;
}

function caseSection(r: BenchReport, c: CaseResult): string[] {
  const lines = [
    `### ${c.spec.id}: ${c.spec.title}`,
    '',
    `${describeCase(c.spec)}. ${f(c.analyticMacs / 1e9, 3)} GMAC forward per image, ` +
      `${f(c.flops / 1e9, 1)} GFLOP per iteration; ${c.nodegrad.params.toLocaleString('en-US')} parameters.`,
    '',
    '| side | img/s (median) | img/s (best) | ms/iteration | GFLOP/s | of sgemm peak | peak RSS MiB | RSS after imports MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    sideRow(r, c, 'nodegrad', c.nodegrad),
  ];
  if (c.torch) {
    const against = c.spec.precision === 'float32' ? '' : ' (both bfloat16)';
    lines.push(sideRow(r, c, 'PyTorch', c.torch), '',
      `nodegrad/PyTorch${against}: **${f(ratio(c)!)}x** (target >= ${c.spec.target}).`);
  }
  const q = overFloat32(c, r.cases);
  if (q !== null) lines.push('', `nodegrad bfloat16 against its own float32 (${float32Id(c.spec)}, this run): ${f(q)}x.`);
  const n = c.nodegrad.native;
  if (n) {
    lines.push('', `nodegrad's native memory at the end of the case: ${n.liveHandles} live tensors holding ` +
      `${mib(n.liveBytes / 1024)} MiB, ${mib(n.poolCachedBytes / 1024)} MiB cached in the buffer pool.`);
  }
  return [...lines, ''];
}

/** docs/benchmarks.md. */
export function markdownReport(r: BenchReport): string {
  const v = r.versions, m = r.machine, peak = peakGflops(r);
  const cores = m.physicalCores ? `${m.physicalCores} cores, ` : '';
  const lines = [
    '# Benchmarks: nodegrad \'cpu\' against PyTorch',
    '',
    `Written by \`npm run bench\` (bench/resnet.ts) on ${r.date.slice(0, 16).replace('T', ' ')} UTC` +
      `${r.quick ? ', a **quick run** (`--quick`: fewer repeats, for development; not the figures to quote)' : ''}. ` +
      `Cases: ${r.caseIds.join(', ')}.`,
    '',
    '## Machine and versions',
    '',
    `- CPU: ${m.cpu}, ${cores}${m.logicalCpus} logical CPUs; ${f(m.memGiB, 1)} GiB memory; Linux ${m.kernel}.`,
    `- Threads: ${r.threads} on each side (nodegrad \`setNumThreads(${r.threads})\`, PyTorch ` +
      `\`torch.set_num_threads(${r.threads})\`, \`OMP_NUM_THREADS=${r.threads}\` for both).`,
    `- CPU flags (/proc/cpuinfo): ${describeFlags(m.flags)}.`,
    `- nodegrad ${v.nodegrad} on Node ${v.node}, native 'cpu' backend, oneDNN ${v.onednn}.`,
    v.torch
      ? `- PyTorch ${v.torch}, torchvision ${v.torchvision}, Python ${v.python} (BLAS: ${v.torchBlas}; convolutions through its oneDNN).`
      : `- PyTorch: not measured (${r.torchSkipped}).`,
    '',
    '## Targets (issue 4)',
    '',
    '| case | precision | target | measured | |',
    '|---|---|---|---:|---|',
  ];
  for (const c of r.cases) {
    const q = ratio(c);
    lines.push(`| ${c.spec.id} throughput | ${c.spec.precision} | nodegrad/PyTorch >= ${c.spec.target} | ${q === null ? 'n/a' : `${f(q)}x`} | ` +
      `${verdict(q === null ? null : q >= c.spec.target)} |`);
  }
  for (const x of r.failures) {
    lines.push(`| ${x.spec.id} | ${x.spec.precision} | nodegrad/PyTorch >= ${x.spec.target} | failed | see "Failed cases" |`);
  }
  for (const c of r.cases) {
    const t = c.torch;
    lines.push(`| ${c.spec.id} peak RSS | ${c.spec.precision} | <= PyTorch's | ${mib(c.nodegrad.maxRssKB)} vs ${t ? mib(t.maxRssKB) : 'n/a'} MiB | ` +
      `${verdict(t ? c.nodegrad.maxRssKB <= t.maxRssKB : null)} |`);
  }
  lines.push(...bf16Table(r));
  lines.push('', '## Peak sgemm', '',
    `A ${r.gemm.nodegrad.n}x${r.gemm.nodegrad.n}x${r.gemm.nodegrad.n} float32 matmul, 2n³ FLOPs, median of the timed calls.`,
    '', '| side | ms (median) | GFLOP/s |', '|---|---:|---:|',
    `| nodegrad \`matmul\` on 'cpu' (oneDNN) | ${f(r.gemm.nodegrad.median * 1e3, 1)} | ${f(r.gemm.nodegrad.gflops, 1)} |`);
  if (r.gemm.torch) {
    lines.push(`| PyTorch \`torch.mm\` (BLAS: ${v.torchBlas}) | ${f(r.gemm.torch.median * 1e3, 1)} | ${f(r.gemm.torch.gflops, 1)} |`);
  }
  lines.push('', `"Of sgemm peak" below is against the faster of the two: ${f(peak, 1)} GFLOP/s (a float32 peak: `,
    'bfloat16 cases can exceed it).', '', '## Results', '');
  for (const c of r.cases) lines.push(...caseSection(r, c));
  if (r.failures.length) {
    lines.push('## Failed cases', '', 'Each case below stopped with this error (no float32 fallback):', '');
    for (const x of r.failures) lines.push(`### ${x.spec.id}: ${x.spec.title}`, '', '```', x.error.slice(0, 2000), '```', '');
  }
  if (r.warnings.length) lines.push('## Warnings', '', ...r.warnings.map((w) => `- ${w}`), '');
  lines.push(...howMeasured(r));
  return `${lines.join('\n')}\n`;
}

/** The bfloat16 cases at a glance: against PyTorch's bf16 autocast and against nodegrad's own float32. */
function bf16Table(r: BenchReport): string[] {
  const bf16 = r.cases.filter((c) => c.spec.precision === 'bfloat16');
  const failed = r.failures.filter((x) => x.spec.precision === 'bfloat16');
  if (!bf16.length && !failed.length) return [];
  const lines = [
    '', '## bfloat16 mixed precision', '',
    `Goal: nodegrad/PyTorch >= ${BF16_TARGET} with both sides in bfloat16 (PyTorch: autocast, channels_last). ` +
      '"vs float32": nodegrad bfloat16 img/s over nodegrad float32 img/s of the same case in this run.',
    '',
    '| case | precision | nodegrad img/s | PyTorch bf16 img/s | nodegrad/PyTorch | goal | nodegrad float32 img/s | vs float32 |',
    '|---|---|---:|---:|---:|---|---:|---:|',
  ];
  for (const c of bf16) {
    const q = ratio(c), twin = r.cases.find((o) => o.spec.id === float32Id(c.spec)), self = overFloat32(c, r.cases);
    lines.push(`| ${c.spec.id} | ${c.spec.mode === 'train' ? 'bfloat16 autocast' : 'bfloat16'} | ` +
      `${f(imgPerSec(c, c.nodegrad))} | ${c.torch ? f(imgPerSec(c, c.torch)) : 'n/a'} | ${q === null ? 'n/a' : `${f(q)}x`} | ` +
      `${verdict(q === null ? null : q >= c.spec.target)} | ${twin ? f(imgPerSec(twin, twin.nodegrad)) : 'not run'} | ` +
      `${self === null ? 'n/a' : `${f(self)}x`} |`);
  }
  for (const x of failed) lines.push(`| ${x.spec.id} | bfloat16 | failed: ${firstLines(x.error, 1).replace(/\|/g, '\\|')} | | | | | |`);
  return lines;
}

function howMeasured(r: BenchReport): string[] {
  const s = r.cases.map((c) => `${c.spec.id} ${c.schedule.warmup}+${c.schedule.repeats}x${c.schedule.iters}`).join(', ');
  return [
    '## How it was measured',
    '',
    '- One `npm run bench` runs both sides. Each side is a child process of its own (bench/nodegrad_cases.ts under',
    '  `node --import tsx`, bench/torch_cases.py under Python), started afresh for each case and driven over',
    '  JSON lines, so the model stays warm between timed blocks and each peak RSS is one side\'s on one case.',
    '- Same architecture on both sides, random weights (not the same values); the input is one random',
    '  normal batch and random integer labels, reused every iteration. The torch model is torchvision\'s; for case A',
    '  its conv1 is replaced by a 3x3 stride-1 pad-1 conv without bias and its maxpool by Identity, which is',
    '  nodegrad\'s `smallImageStem`. Parameter counts and hook-counted MACs are checked equal on both sides.',
    '- float32 cases (A, B, C18, C50): everything in float32, NCHW on both sides. bfloat16 cases (*-bf16):',
    '  training runs forward + loss under autocast (nodegrad `autocast({ device: \'cpu\', dtype: \'bfloat16\' })`,',
    '  PyTorch `torch.autocast(\'cpu\', dtype=torch.bfloat16)`), backward outside it, parameters and SGD in',
    '  float32. Inference: nodegrad converts its fused model and the input to bfloat16 once, before timing',
    '  (`.to(\'bfloat16\')`); PyTorch runs under `torch.no_grad()` + autocast. PyTorch\'s bf16 model and input are',
    '  channels_last (its fastest CPU bf16 layout). A bf16 kernel nodegrad lacks is an error, not a float32 fallback.',
    '- Training: `model.train()`, cross-entropy, `zeroGrad` (set to none on both), backward, SGD(lr 0.01,',
    '  momentum 0.9) step; nodegrad wraps each step in `tidy()`. Inference, under no-grad: PyTorch runs',
    '  `model.eval()`; nodegrad runs `fuseForInference(model)`, its explicit inference copy (BatchNorm folded',
    '  into each conv, the ReLU and residual add in the conv\'s epilogue), which PyTorch does not do in eager mode.',
    `- Schedule per case (warm-up iterations + repeats x iterations per timed block): ${s}. The sides alternate`,
    '  block by block (nodegrad, PyTorch, nodegrad, ...) so that other load on the machine hits both alike.',
    '  A block\'s time is the mean of its iterations; the figure is the median over blocks, "best" the fastest block.',
    '- img/s = batch / seconds per iteration. GFLOP/s counts convolutions and the fc layer from the architecture',
    '  (bench/flops.ts): forward = 2 x MACs, a training step = 3 x forward.',
    '- Peak RSS: `process.resourceUsage().maxRSS` (nodegrad) and `resource.getrusage(RUSAGE_SELF).ru_maxrss`',
    '  (PyTorch) at the end of the case. "After imports" is the same figure before any model was built:',
    '  Node with V8 and tsx on one side, CPython with torch and torchvision on the other.',
    '',
    ...COMPARING,
  ];
}

/** How to measure a change against nodegrad itself: static text, kept here so a rewrite of the file keeps it. */
const COMPARING = [
  '## Comparing with an earlier commit',
  '',
  'To show what a change does to nodegrad\'s own speed and memory, `npm run bench:compare` (bench/compare.ts)',
  'runs the cases on this checkout and on a checkout of the earlier commit in one run: per case one nodegrad',
  'worker from each checkout (its own bench/nodegrad_cases.ts, packages and addon), with the warm-up and',
  'alternating blocks above. It prints each side\'s median img/s, the min-max over its blocks, peak RSS and the',
  'ratio new/baseline, and leaves this file alone. A ratio whose two block ranges overlap is within that run\'s noise.',
  '',
  '```sh',
  'git worktree add --detach ../baseline <commit>',
  'cp -a node_modules ../baseline/     # the workspace links are relative, so they point into ../baseline',
  '(cd ../baseline && node native/scripts/build_addon.mjs)',
  'npm run bench:compare -- --baseline ../baseline --cases A,B --threads 2    # --quick: fewer blocks',
  '```',
  '',
];
