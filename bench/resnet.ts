/**
 * `npm run bench`: nodegrad's native 'cpu' backend against the peers a user would pick instead, on
 * ResNet training and inference (issues 4, 12 and 13), then docs/benchmarks.md from the results.
 * Peers: PyTorch with NCHW and with channels-last tensors, and for float32 inference ONNX Runtime
 * (onnxruntime-node) on the torchvision model exported to ONNX; bench/cases.ts says which run where.
 *
 * Each side runs in a child process of its own, started afresh for every case (so each peak RSS
 * belongs to one side and one case) and kept warm across the case's timed blocks, which alternate
 * nodegrad, peer, peer, nodegrad, ... so that load from elsewhere on the machine hits all alike.
 *
 *   npm run bench [-- --quick] [--cases A,C,BF16] [--threads 2] [--gemm 1024] [--peers DIR]
 *                 [--python PATH] [--out docs/benchmarks.md]
 *
 * --peers: the folder bench/peers.sh fills (default $NODEGRAD_PEERS or ~/.cache/nodegrad-peers):
 * venv/ with PyTorch 2.15, torchvision, onnx and onnxruntime; node/ with onnxruntime-node. --python
 * overrides the venv's interpreter (default: the venv's, else /usr/bin/python3). A peer that cannot
 * start is reported as skipped, with its reason.
 * --cases (case-insensitive): A, B, C (= C18 + C50), BF16 (= A-bf16, B-bf16, C18-bf16, C50-bf16: the
 * same cases in bfloat16 mixed precision), O (framework overhead per op, bench/overhead.ts), or single
 * ids; default A,B,C,BF16,O.
 *
 * To measure a change against nodegrad itself rather than its peers, `npm run bench:compare`
 * (bench/compare.ts) runs the same cases from this checkout and from one of an earlier commit.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PEER_LABELS, peersFor, scheduleFor, type CaseSpec, type PeerId } from './cases.js';
import { caseFlops, resnetMacs } from './flops.js';
import {
  alternateBlocks, cpuInfo, describeFlags, fail, median, mustStart, positiveInt, selectCases, workerEnv,
  startNodegrad as startNodegradAt,
} from './harness.js';
import { overheadMarkdown, runOverhead } from './overhead.js';
import { Worker, type Reply } from './worker_client.js';
import {
  caseLine, compareOutputs, consoleSummary, markdownReport, type BenchReport, type CaseFailure, type CaseResult, type GemmResult,
  type OutputCheck, type PeerResult, type SideResult,
} from './report.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    cases: { type: 'string', default: 'A,B,C,BF16,O' },
    threads: { type: 'string', default: String(availableParallelism()) },
    gemm: { type: 'string', default: '1024' },
    peers: { type: 'string' },
    python: { type: 'string' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
const quick = flags.quick!;
const threads = positiveInt('--threads', flags.threads!);
const gemmN = positiveInt('--gemm', flags.gemm!);
const peersDir = resolve(flags.peers ?? process.env.NODEGRAD_PEERS ?? join(homedir(), '.cache', 'nodegrad-peers'));
const venvPython = join(peersDir, 'venv', 'bin', 'python');
const python = flags.python ?? (existsSync(venvPython) ? venvPython : '/usr/bin/python3');

const startNodegrad = (extraEnv: NodeJS.ProcessEnv = {}) => startNodegradAt(root, threads, 'nodegrad', extraEnv);
const mustStartNodegrad = async () => mustStart(await startNodegrad(), 'nodegrad');

function startPeer(id: PeerId): Promise<Worker | string> {
  const opts = { cwd: root, env: workerEnv(threads) };
  if (id === 'ort') {
    const script = fileURLToPath(new URL('./ort_cases.ts', import.meta.url));
    return Worker.start(PEER_LABELS.ort, process.execPath, ['--import', 'tsx', script, String(threads), join(peersDir, 'node')], opts);
  }
  const script = fileURLToPath(new URL('./torch_cases.py', import.meta.url));
  return Worker.start(PEER_LABELS[id], python, [script, String(threads)], opts);
}

/** The oneDNN version: describeBuild() when it gives one, else the line ONEDNN_VERBOSE prints at the first primitive. */
async function onednnVersion(fromHello: string): Promise<string> {
  if (fromHello !== 'enabled') return fromHello;
  const probe = await startNodegrad({ ONEDNN_VERBOSE: '1' });
  if (typeof probe === 'string') return 'unknown';
  await probe.request({ cmd: 'gemm', n: 8, reps: 1 });
  await probe.close();
  const m = probe.otherLines.map((l) => /oneDNN v([\w.]+)/.exec(l)).find(Boolean);
  return m ? `v${m[1]}` : 'unknown';
}

function gemmResult(seconds: number[]): GemmResult {
  const t = median(seconds);
  return { n: gemmN, median: t, best: Math.min(...seconds), gflops: 2 * gemmN ** 3 / t / 1e9 };
}

/** Peak sgemm of nodegrad and PyTorch, alternating blocks of matmuls as the cases do. */
async function measureGemm(ng: Worker, th: Worker | null): Promise<{ nodegrad: GemmResult; torch: GemmResult | null }> {
  const reps = quick ? 3 : 5;
  const ngSec: number[] = [], thSec: number[] = [];
  for (let block = 0; block < 2; block++) {
    ngSec.push(...(await ng.request({ cmd: 'gemm', n: gemmN, reps })).seconds!);
    if (th) thSec.push(...(await th.request({ cmd: 'gemm', n: gemmN, reps })).seconds!);
  }
  return { nodegrad: gemmResult(ngSec), torch: th ? gemmResult(thSec) : null };
}

/** A float32 inference case's model as the PyTorch worker exported it (bench/torch_cases.py, export). */
interface Exported { folder: string; output: number[] }

async function exportModel(spec: CaseSpec): Promise<Exported> {
  const folder = mkdtempSync(join(tmpdir(), `nodegrad-bench-${spec.id}-`));
  const th = mustStart(await startPeer('torch'), 'PyTorch exporter');
  try {
    return { folder, output: (await th.request({ cmd: 'export', case: spec, folder })).output! };
  } finally {
    await th.close();
  }
}

function setupMessage(id: PeerId | 'nodegrad', spec: CaseSpec, ex: Exported | null): object {
  const files = ex ? { weights: join(ex.folder, id === 'nodegrad' ? 'weights.safetensors' : 'weights.pt'), input: join(ex.folder, 'input.bin') } : {};
  if (id === 'ort') return { cmd: 'setup', case: spec, model: join(ex!.folder, 'model.onnx'), input: join(ex!.folder, 'input.bin') };
  if (id === 'nodegrad') return { cmd: 'setup', case: spec, ...files };
  return { cmd: 'setup', case: spec, memoryFormat: id === 'torch-cl' ? 'channels_last' : 'contiguous', ...files };
}

async function runCase(spec: CaseSpec, available: PeerId[], warnings: string[], earlier: CaseResult[]): Promise<CaseResult> {
  // ONNX Runtime runs the model PyTorch exports; every side of such a case then runs those weights
  // and that input, so their outputs can be compared.
  const ids = peersFor(spec).filter((id) => available.includes(id));
  const exported = ids.includes('ort') ? await exportModel(spec) : null;
  const sides: Worker[] = [];
  try {
    sides.push(await mustStartNodegrad());
    for (const id of ids) sides.push(mustStart(await startPeer(id), PEER_LABELS[id]));
    return await measureCase(spec, sides, ids, exported, warnings, earlier);
  } finally {
    // A case that failed (a kernel nodegrad lacks in bfloat16, say) leaves its workers running.
    for (const w of sides) await w.close();
    if (exported) rmSync(exported.folder, { recursive: true, force: true });
  }
}

async function measureCase(spec: CaseSpec, sides: Worker[], ids: PeerId[], ex: Exported | null, warnings: string[],
  earlier: CaseResult[]): Promise<CaseResult> {
  const schedule = scheduleFor(spec, quick);
  const setups: Reply[] = [];
  for (const [i, w] of sides.entries()) setups.push(await w.request(setupMessage(i ? ids[i - 1]! : 'nodegrad', spec, ex)));
  const analyticMacs = resnetMacs(spec.arch, spec.numClasses, spec.size, spec.smallImageStem);
  sides.forEach((w, i) => {
    const { macs, params } = setups[i]!;
    if (macs != null && macs !== analyticMacs) {
      warnings.push(`${spec.id}: ${w.name}'s model does ${macs} MACs per image by its hooks, the count from the architecture is ${analyticMacs}`);
    }
    if (params != null && params !== setups[0]!.params) {
      warnings.push(`${spec.id}: parameter counts differ: nodegrad ${setups[0]!.params}, ${w.name} ${params}`);
    }
  });
  const blocks = await alternateBlocks(sides, schedule, () => process.stdout.write('.'));
  const results: SideResult[] = [];
  for (let s = 0; s < sides.length; s++) {
    const { maxRssKB, native } = await sides[s]!.request({ cmd: 'info' });
    results.push({
      blocks: blocks[s]!, median: median(blocks[s]!), best: Math.min(...blocks[s]!),
      params: setups[s]!.params ?? setups[0]!.params!, macs: setups[s]!.macs ?? analyticMacs,
      startRssKB: sides[s]!.hello.startRssKB!, maxRssKB: maxRssKB!, ...(native ? { native } : {}),
    });
  }
  const checks: OutputCheck[] = [];
  if (ex) {
    for (const [i, w] of sides.entries()) {
      if (i > 0 && ids[i - 1] !== 'ort') continue;  // the PyTorch sides run the exporter's model as is
      const check = compareOutputs(w.name, (await w.request({ cmd: 'output' })).output!, ex.output);
      checks.push(check);
      if (check.maxAbsDiff > 1e-3 * check.maxAbsRef) warnings.push(`${spec.id}: ${w.name}'s logits differ from PyTorch's by up to ${check.maxAbsDiff}`);
    }
  }
  const peers: PeerResult[] = ids.map((id, i) => ({ ...results[i + 1]!, id, label: PEER_LABELS[id] }));
  const result: CaseResult = { spec, schedule, flops: caseFlops(spec), analyticMacs, nodegrad: results[0]!, peers, checks };
  process.stdout.write(` ${caseLine(result, earlier)}\n`);
  return result;
}

/** Starts each kind of peer once, for its versions (and PyTorch's sgemm); the reasons of those that cannot run. */
async function probePeers(ng: Worker): Promise<Pick<BenchReport, 'gemm' | 'skipped'> & { versions: Record<string, string | null> }> {
  const skipped: Partial<Record<PeerId, string>> = {};
  const th = await startPeer('torch');
  if (typeof th === 'string') skipped.torch = skipped['torch-cl'] = th;
  const ort = await startPeer('ort');
  if (typeof ort === 'string') skipped.ort = ort;
  else await ort.close();
  if (typeof th === 'string' && typeof ort !== 'string') skipped.ort = 'ONNX Runtime runs the model PyTorch exports, and PyTorch cannot run';
  const torch = typeof th === 'string' ? null : th;
  console.log(`peak sgemm: ${gemmN}^3 float32 matmul on nodegrad${torch ? ' and PyTorch' : ''}`);
  const gemm = await measureGemm(ng, torch);
  await torch?.close();
  const v = (w: Worker | string, key: string) => (typeof w === 'string' ? null : String(w.hello[key]));
  return {
    gemm, skipped,
    versions: {
      torch: v(th, 'version'), torchvision: v(th, 'torchvision'), python: v(th, 'python'), torchBlas: v(th, 'blas'),
      ort: v(ort, 'version'),
    },
  };
}

async function main(): Promise<void> {
  // O, the overhead group, is not a ResNet case: bench/overhead.ts runs it after them.
  const listed = flags.cases!.split(',').map((s) => s.trim()).filter(Boolean);
  const overhead = listed.some((c) => c.toUpperCase() === 'O');
  const rest = listed.filter((c) => c.toUpperCase() !== 'O');
  const cases = rest.length ? selectCases(rest.join(',')) : [];
  const warnings: string[] = [];
  const { cpu, physicalCores, flags: cpuFlags } = cpuInfo();
  console.log(`nodegrad 'cpu' vs its peers, ${threads} thread(s) each${quick ? ', quick run' : ''}: ` +
    `cases ${cases.map((c) => c.id).join(', ')}`);
  console.log(`CPU: ${cpu}; ${describeFlags(cpuFlags)}`);

  const ng = await mustStartNodegrad();
  const probed = await probePeers(ng);
  await ng.close();
  for (const [id, why] of Object.entries(probed.skipped)) console.log(`${PEER_LABELS[id as PeerId]} skipped: ${why}`);
  const available = (['torch', 'torch-cl', 'ort'] as const).filter((id) => !probed.skipped[id]);

  const results: CaseResult[] = [];
  const failures: CaseFailure[] = [];
  for (const spec of cases) {
    process.stdout.write(`${spec.id}: ${spec.title}, batch ${spec.batch}, 3x${spec.size}x${spec.size} `);
    try {
      results.push(await runCase(spec, [...available], warnings, results));
    } catch (e) {
      // Reported, and the other cases still run: a bfloat16 kernel the native backend lacks fails
      // its case with the worker's message; nothing falls back to float32.
      const error = e instanceof Error ? e.message : String(e);
      failures.push({ spec, error });
      process.stdout.write(` FAILED:\n${error}\n`);
    }
  }

  const report: BenchReport = {
    date: new Date().toISOString(), quick, threads, caseIds: cases.map((c) => c.id), warnings, skipped: probed.skipped,
    machine: {
      cpu, logicalCpus: availableParallelism(), physicalCores, memGiB: totalmem() / 2 ** 30, kernel: release(), flags: cpuFlags,
    },
    versions: {
      node: process.version, nodegrad: String(ng.hello.version), onednn: await onednnVersion(String(ng.hello.onednn)),
      torch: probed.versions.torch, torchvision: probed.versions.torchvision, python: probed.versions.python,
      torchBlas: probed.versions.torchBlas, ort: probed.versions.ort,
    },
    gemm: probed.gemm, cases: results, failures,
  };
  console.log(consoleSummary(report));
  let markdown = markdownReport(report);
  if (overhead) {
    console.log('framework overhead, one thread each:');
    markdown += `\n${overheadMarkdown(await runOverhead(probed.skipped.torch ? null : python, quick))}`;
  }
  writeFileSync(resolve(root, flags.out!), markdown);
  console.log(`wrote ${flags.out}`);
  if (failures.length) {
    console.error(`${failures.length} case(s) failed: ${failures.map((x) => x.spec.id).join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch(fail);
