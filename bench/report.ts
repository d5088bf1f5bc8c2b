/**
 * The benchmark's results as data, and their two renderings: a summary for the console and
 * docs/benchmarks.md.
 */
import { BF16_TARGET, PEER_LABELS, float32Id, type CaseSpec, type PeerId, type Schedule } from './cases.js';
import { describeFlags, type CpuFlags } from './harness.js';
import type { NativeMemory } from './worker_client.js';

export interface SideResult {
  /** Seconds per iteration of each timed block (the block's mean). */
  blocks: number[];
  median: number;
  best: number;
  params: number;
  /** Forward MACs per image, counted by the worker's hooks (the architecture's count where it has none). */
  macs: number;
  /** Peak RSS after start-up (imports, before any model), and over the whole case. */
  startRssKB: number;
  maxRssKB: number;
  /** nodegrad only: native tensors alive and pooled at the end of the case. */
  native?: NativeMemory;
}

export interface PeerResult extends SideResult {
  id: PeerId;
  label: string;
}

/** One side's logits on the exported model and input, against PyTorch's. */
export interface OutputCheck {
  side: string;
  maxAbsDiff: number;
  maxAbsRef: number;
}

export interface CaseResult {
  spec: CaseSpec;
  schedule: Schedule;
  /** FLOPs of one iteration, from the architecture (bench/flops.ts). */
  flops: number;
  analyticMacs: number;
  nodegrad: SideResult;
  peers: PeerResult[];
  checks: OutputCheck[];
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
  /** Why each peer that did not run could not. */
  skipped: Partial<Record<PeerId, string>>;
  machine: {
    cpu: string; logicalCpus: number; physicalCores: number | null; memGiB: number; kernel: string;
    /** avx512f, avx512_bf16, amx_bf16, avx512_fp16 in /proc/cpuinfo. */
    flags: CpuFlags;
  };
  versions: {
    node: string; nodegrad: string; onednn: string;
    torch: string | null; torchvision: string | null; python: string | null; torchBlas: string | null; ort: string | null;
  };
  gemm: { nodegrad: GemmResult; torch: GemmResult | null };
  cases: CaseResult[];
  failures: CaseFailure[];
}

export function compareOutputs(side: string, got: number[], want: number[]): OutputCheck {
  if (got.length !== want.length) throw new Error(`bench: ${side} gave ${got.length} logits, PyTorch ${want.length}`);
  let maxAbsDiff = 0, maxAbsRef = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i]! - want[i]!));
    maxAbsRef = Math.max(maxAbsRef, Math.abs(want[i]!));
  }
  return { side, maxAbsDiff, maxAbsRef };
}

const imgPerSec = (c: CaseResult, s: SideResult, t = s.median) => c.spec.batch / t;
const mib = (kb: number) => (kb / 1024).toFixed(0);
const f = (x: number, digits = 2) => x.toFixed(digits);

/** The machine's measured sgemm peak: the faster of the two sides' matmuls. */
function peakGflops(r: BenchReport): number {
  return Math.max(r.gemm.nodegrad.gflops, r.gemm.torch?.gflops ?? 0);
}

/** The fastest peer of a case (by median), or null when none ran. */
export function bestPeer(c: CaseResult): PeerResult | null {
  return c.peers.reduce<PeerResult | null>((b, p) => (!b || p.median < b.median ? p : b), null);
}

/** nodegrad's throughput over the fastest peer's. */
function ratio(c: CaseResult): number | null {
  const b = bestPeer(c);
  return b ? b.median / c.nodegrad.median : null;
}

/** The lowest peak RSS among the peers. */
function leanestPeerKB(c: CaseResult): number | null {
  return c.peers.length ? Math.min(...c.peers.map((p) => p.maxRssKB)) : null;
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
    : 'inference (no grad; nodegrad on its fuseForInference copy, PyTorch in eval mode, ONNX Runtime on the exported graph)';
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
  const peers = c.peers.map((p) => `${p.label} ${f(imgPerSec(c, p))}`).join(', ');
  const best = bestPeer(c);
  return best ? `${ng}; ${peers} img/s: ${f(ratio(c)!)}x the best peer (target >= ${c.spec.target})` : ng;
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
    'case      side                    img/s   best  ms/iter  GFLOP/s  %peak  peak RSS MiB',
  ];
  for (const c of r.cases) {
    const row = (label: string, s: SideResult, id: string) => {
      const gflops = c.flops / s.median / 1e9;
      out.push(`${id.padEnd(9)} ${label.padEnd(22)} ${f(imgPerSec(c, s)).padStart(6)} ${f(imgPerSec(c, s, s.best)).padStart(6)} ` +
        `${f(s.median * 1e3, 0).padStart(8)} ${f(gflops, 1).padStart(8)} ${f(100 * gflops / peak, 0).padStart(6)} ` +
        `${mib(s.maxRssKB).padStart(13)}`);
    };
    row('nodegrad', c.nodegrad, c.spec.id);
    for (const p of c.peers) row(p.label, p, '');
    const q = ratio(c), lean = leanestPeerKB(c);
    if (q !== null && lean !== null) {
      out.push(`          nodegrad/best peer (${bestPeer(c)!.label}) ${f(q)} (target >= ${c.spec.target}: ${verdict(q >= c.spec.target)}), ` +
        `peak RSS ${mib(c.nodegrad.maxRssKB)} vs ${mib(lean)} MiB (target <=: ${verdict(c.nodegrad.maxRssKB <= lean)})`);
    }
    for (const k of c.checks) out.push(`          ${k.side} logits vs PyTorch's: max |diff| ${k.maxAbsDiff.toExponential(2)}`);
    const self = overFloat32(c, r.cases);
    if (self !== null) out.push(`          nodegrad bfloat16/float32 ${f(self)}`);
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
    ...c.peers.map((p) => sideRow(r, c, p.label, p)),
  ];
  const q = ratio(c);
  if (q !== null) lines.push('', `nodegrad over the fastest peer (${bestPeer(c)!.label}): **${f(q)}x** (target >= ${c.spec.target}).`);
  if (c.checks.length) {
    lines.push('', 'All sides ran the weights and input PyTorch exported; logits against PyTorch\'s (largest |logit| ' +
      `${f(c.checks[0]!.maxAbsRef, 1)}): ${c.checks.map((k) => `${k.side} max |diff| ${k.maxAbsDiff.toExponential(2)}`).join(', ')}.`);
  }
  const self = overFloat32(c, r.cases);
  if (self !== null) lines.push('', `nodegrad bfloat16 against its own float32 (${float32Id(c.spec)}, this run): ${f(self)}x.`);
  const n = c.nodegrad.native;
  if (n) {
    lines.push('', `nodegrad's native memory at the end of the case: ${n.liveHandles} live tensors holding ` +
      `${mib(n.liveBytes / 1024)} MiB, ${mib(n.poolCachedBytes / 1024)} MiB cached in the buffer pool.`);
  }
  return [...lines, ''];
}

const PEER_ORDER: PeerId[] = ['torch', 'torch-cl', 'ort'];

/** Every case at a glance: img/s of each side, the ratio to the fastest peer, peak RSS. */
function summaryTable(r: BenchReport): string[] {
  const lines = [
    `| case | precision | nodegrad | ${PEER_ORDER.map((id) => PEER_LABELS[id]).join(' | ')} | nodegrad / best peer | target | ` +
      'peak RSS MiB: nodegrad / leanest peer |',
    `|---|---|---:|${PEER_ORDER.map(() => '---:|').join('')}---:|---|---|`,
  ];
  for (const c of r.cases) {
    const cell = (id: PeerId) => {
      const p = c.peers.find((x) => x.id === id);
      return p ? f(imgPerSec(c, p)) : '—';
    };
    const q = ratio(c), lean = leanestPeerKB(c);
    lines.push(`| ${c.spec.id} | ${c.spec.precision} | ${f(imgPerSec(c, c.nodegrad))} | ${PEER_ORDER.map(cell).join(' | ')} | ` +
      `${q === null ? 'n/a' : `**${f(q)}x**`} | >= ${c.spec.target}: ${verdict(q === null ? null : q >= c.spec.target)} | ` +
      `${mib(c.nodegrad.maxRssKB)} / ${lean === null ? 'n/a' : mib(lean)}: ${verdict(lean === null ? null : c.nodegrad.maxRssKB <= lean)} |`);
  }
  for (const x of r.failures) lines.push(`| ${x.spec.id} | ${x.spec.precision} | failed (see "Failed cases") | | | | | | |`);
  return lines;
}

/** docs/benchmarks.md. */
export function markdownReport(r: BenchReport): string {
  const v = r.versions, m = r.machine, peak = peakGflops(r);
  const cores = m.physicalCores ? `${m.physicalCores} cores, ` : '';
  const lines = [
    '# Benchmarks: nodegrad \'cpu\' against PyTorch and ONNX Runtime',
    '',
    `Written by \`npm run bench\` (bench/resnet.ts) on ${r.date.slice(0, 16).replace('T', ' ')} UTC` +
      `${r.quick ? ', a **quick run** (`--quick`: fewer repeats, for development; not the figures to quote)' : ''}. ` +
      `Cases: ${r.caseIds.join(', ')}.`,
    '',
    '## Machine and versions',
    '',
    `- CPU: ${m.cpu}, ${cores}${m.logicalCpus} logical CPUs; ${f(m.memGiB, 1)} GiB memory; Linux ${m.kernel}.`,
    `- Threads: ${r.threads} on each side (nodegrad \`setNumThreads(${r.threads})\`, PyTorch ` +
      `\`torch.set_num_threads(${r.threads})\`, ONNX Runtime \`intraOpNumThreads: ${r.threads}\`, \`OMP_NUM_THREADS=${r.threads}\` for all).`,
    `- CPU flags (/proc/cpuinfo): ${describeFlags(m.flags)}.`,
    `- nodegrad ${v.nodegrad} on Node ${v.node}, native 'cpu' backend, oneDNN ${v.onednn}.`,
    v.torch
      ? `- PyTorch ${v.torch}, torchvision ${v.torchvision}, Python ${v.python} (BLAS: ${v.torchBlas}; convolutions through its oneDNN).`
      : `- PyTorch: not measured (${r.skipped.torch}).`,
    v.ort
      ? `- ONNX Runtime: onnxruntime-node ${v.ort} (CPU execution provider, all graph optimizations), on the torchvision model ` +
        'exported by `torch.onnx.export` (opset 17).'
      : `- ONNX Runtime: not measured (${r.skipped.ort}).`,
    '',
    '## Summary',
    '',
    'img/s per side (median); the ratio is against the fastest peer of each case. Targets: issue 13 for float32 ' +
      '(training >= 1.3x, inference >= 1.0x), issue 12 for bfloat16 (>= 1.3x PyTorch\'s bf16 autocast); peak RSS <= the leanest peer\'s.',
    '',
    ...summaryTable(r),
    ...bf16Table(r),
    '', '## Peak sgemm', '',
    `A ${r.gemm.nodegrad.n}x${r.gemm.nodegrad.n}x${r.gemm.nodegrad.n} float32 matmul, 2n³ FLOPs, median of the timed calls.`,
    '', '| side | ms (median) | GFLOP/s |', '|---|---:|---:|',
    `| nodegrad \`matmul\` on 'cpu' (oneDNN) | ${f(r.gemm.nodegrad.median * 1e3, 1)} | ${f(r.gemm.nodegrad.gflops, 1)} |`,
  ];
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

/** The bfloat16 cases against nodegrad's own float32. */
function bf16Table(r: BenchReport): string[] {
  const bf16 = r.cases.filter((c) => c.spec.precision === 'bfloat16');
  if (!bf16.length) return [];
  const lines = [
    '', `bfloat16 mixed precision (goal >= ${BF16_TARGET}x PyTorch's bf16 autocast, channels-last) against nodegrad's own float32 ` +
      'of the same case in this run:', '',
    '| case | nodegrad bfloat16 img/s | nodegrad float32 img/s | bfloat16 / float32 |', '|---|---:|---:|---:|',
  ];
  for (const c of bf16) {
    const twin = r.cases.find((o) => o.spec.id === float32Id(c.spec)), self = overFloat32(c, r.cases);
    lines.push(`| ${c.spec.id} | ${f(imgPerSec(c, c.nodegrad))} | ${twin ? f(imgPerSec(twin, twin.nodegrad)) : 'not run'} | ` +
      `${self === null ? 'n/a' : `${f(self)}x`} |`);
  }
  return lines;
}

function howMeasured(r: BenchReport): string[] {
  const s = r.cases.map((c) => `${c.spec.id} ${c.schedule.warmup}+${c.schedule.repeats}x${c.schedule.iters}`).join(', ');
  return [
    '## How it was measured',
    '',
    '- One `npm run bench` runs every side. Each side is a child process of its own (bench/nodegrad_cases.ts and',
    '  bench/ort_cases.ts under `node --import tsx`, bench/torch_cases.py under Python), started afresh for each case',
    '  and driven over JSON lines, so the model stays warm between timed blocks and each peak RSS is one side\'s on one case.',
    '  The peers come from the folder bench/peers.sh fills, outside the repository: a venv with PyTorch from PyPI and',
    '  onnxruntime-node from npm.',
    '- Same architecture on every side. Training: random weights (not the same values), one random normal batch and',
    '  random integer labels, reused every iteration. float32 inference: PyTorch exports its eval model (batch-norm',
    '  statistics and affine randomized) as ONNX, weights and an input; every side runs those, and the logits of',
    '  nodegrad and ONNX Runtime are checked against PyTorch\'s. The torch model is torchvision\'s; for case A',
    '  its conv1 is replaced by a 3x3 stride-1 pad-1 conv without bias and its maxpool by Identity, which is',
    '  nodegrad\'s `smallImageStem`. Parameter counts and hook-counted MACs are checked equal on nodegrad and PyTorch.',
    '- float32 cases (A, B, C18, C50): everything in float32; nodegrad NCHW (its kernels pick their own blocked',
    '  layouts), PyTorch once with NCHW and once with channels-last model and input. bfloat16 cases (*-bf16):',
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
    '  block by block (nodegrad, each peer, nodegrad, ...) so that other load on the machine hits all alike.',
    '  A block\'s time is the mean of its iterations; the figure is the median over blocks, "best" the fastest block.',
    '- img/s = batch / seconds per iteration. GFLOP/s counts convolutions and the fc layer from the architecture',
    '  (bench/flops.ts): forward = 2 x MACs, a training step = 3 x forward.',
    '- Peak RSS: `process.resourceUsage().maxRSS` (nodegrad, ONNX Runtime) and `resource.getrusage(RUSAGE_SELF).ru_maxrss`',
    '  (PyTorch) at the end of the case. "After imports" is the same figure before any model was built:',
    '  Node with V8 and tsx (and onnxruntime-node), or CPython with torch and torchvision.',
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
