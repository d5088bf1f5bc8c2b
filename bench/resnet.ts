/**
 * `npm run bench`: nodegrad's native 'cpu' backend against PyTorch on ResNet training and
 * inference (issue 4 §5), then docs/benchmarks.md from the results.
 *
 * Each side runs in a child process of its own, started afresh for every case (so each peak RSS
 * belongs to one side and one case) and kept warm across the case's timed blocks, which alternate
 * nodegrad, PyTorch, nodegrad, ... so that load from elsewhere on the machine hits both alike.
 *
 *   npm run bench [-- --quick] [--cases A,C,BF16] [--threads 2] [--gemm 1024] [--python /usr/bin/python3]
 *                 [--out docs/benchmarks.md]
 *
 * --cases (case-insensitive): A, B, C (= C18 + C50), BF16 (= A-bf16, B-bf16, C18-bf16, C50-bf16: the
 * same cases in bfloat16 mixed precision on both sides), or single ids; default A,B,C,BF16.
 *
 * To measure a change against nodegrad itself rather than PyTorch, `npm run bench:compare`
 * (bench/compare.ts) runs the same cases from this checkout and from one of an earlier commit.
 */
import { availableParallelism, release, totalmem } from 'node:os';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { scheduleFor, type CaseSpec } from './cases.js';
import { caseFlops, resnetMacs } from './flops.js';
import {
  alternateBlocks, cpuInfo, describeFlags, fail, median, mustStart, positiveInt, selectCases, workerEnv,
  startNodegrad as startNodegradAt,
} from './harness.js';
import { Worker, type Reply } from './worker_client.js';
import {
  caseLine, consoleSummary, markdownReport, type BenchReport, type CaseFailure, type CaseResult, type GemmResult, type SideResult,
} from './report.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    cases: { type: 'string', default: 'A,B,C,BF16' },
    threads: { type: 'string', default: String(availableParallelism()) },
    gemm: { type: 'string', default: '1024' },
    python: { type: 'string', default: '/usr/bin/python3' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
const quick = flags.quick!;
const threads = positiveInt('--threads', flags.threads!);
const gemmN = positiveInt('--gemm', flags.gemm!);

const startNodegrad = (extraEnv: NodeJS.ProcessEnv = {}) => startNodegradAt(root, threads, 'nodegrad', extraEnv);

function startTorch(): Promise<Worker | string> {
  const script = fileURLToPath(new URL('./torch_cases.py', import.meta.url));
  return Worker.start('PyTorch', flags.python!, [script, String(threads)], { cwd: root, env: workerEnv(threads) });
}

const mustStartNodegrad = async () => mustStart(await startNodegrad(), 'nodegrad');

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

/** Peak sgemm of each side, alternating blocks of matmuls as the cases do. */
async function measureGemm(ng: Worker, th: Worker | null): Promise<{ nodegrad: GemmResult; torch: GemmResult | null }> {
  const reps = quick ? 3 : 5;
  const ngSec: number[] = [], thSec: number[] = [];
  for (let block = 0; block < 2; block++) {
    ngSec.push(...(await ng.request({ cmd: 'gemm', n: gemmN, reps })).seconds!);
    if (th) thSec.push(...(await th.request({ cmd: 'gemm', n: gemmN, reps })).seconds!);
  }
  return { nodegrad: gemmResult(ngSec), torch: th ? gemmResult(thSec) : null };
}

async function runCase(spec: CaseSpec, withTorch: boolean, warnings: string[], earlier: CaseResult[]): Promise<CaseResult> {
  const ng = await mustStartNodegrad();
  let th: Worker | null = null;
  if (withTorch) {
    const t = await startTorch();
    if (typeof t === 'string') {
      await ng.close();
      throw new Error(`bench: the PyTorch worker started before but not now: ${t}`);
    }
    th = t;
  }
  const sides = th ? [ng, th] : [ng];
  try {
    return await measureCase(spec, sides, warnings, earlier);
  } finally {
    // A case that failed (a kernel nodegrad lacks in bfloat16, say) leaves its workers running.
    for (const w of sides) await w.close();
  }
}

async function measureCase(spec: CaseSpec, sides: Worker[], warnings: string[], earlier: CaseResult[]): Promise<CaseResult> {
  const schedule = scheduleFor(spec, quick);
  const th = sides[1] ?? null;
  const setups: Reply[] = [];
  for (const w of sides) setups.push(await w.request({ cmd: 'setup', case: spec }));
  const analyticMacs = resnetMacs(spec.arch, spec.numClasses, spec.size, spec.smallImageStem);
  sides.forEach((w, i) => {
    if (setups[i]!.macs !== analyticMacs) {
      warnings.push(`${spec.id}: ${w.name}'s model does ${setups[i]!.macs} MACs per image by its hooks, ` +
        `the count from the architecture is ${analyticMacs}`);
    }
  });
  if (th && setups[0]!.params !== setups[1]!.params) {
    warnings.push(`${spec.id}: parameter counts differ: nodegrad ${setups[0]!.params}, PyTorch ${setups[1]!.params}`);
  }
  const blocks = await alternateBlocks(sides, schedule, () => process.stdout.write('.'));
  const results: SideResult[] = [];
  for (let s = 0; s < sides.length; s++) {
    const { maxRssKB, native } = await sides[s]!.request({ cmd: 'info' });
    results.push({
      blocks: blocks[s]!, median: median(blocks[s]!), best: Math.min(...blocks[s]!),
      params: setups[s]!.params!, macs: setups[s]!.macs!, startRssKB: sides[s]!.hello.startRssKB!, maxRssKB: maxRssKB!,
      ...(native ? { native } : {}),
    });
  }
  const result = { spec, schedule, flops: caseFlops(spec), analyticMacs, nodegrad: results[0]!, torch: results[1] ?? null };
  process.stdout.write(` ${caseLine(result, earlier)}\n`);
  return result;
}

async function main(): Promise<void> {
  const cases = selectCases(flags.cases!);
  const warnings: string[] = [];
  const { cpu, physicalCores, flags: cpuFlags } = cpuInfo();
  console.log(`nodegrad 'cpu' vs PyTorch, ${threads} thread(s) each${quick ? ', quick run' : ''}: ` +
    `cases ${cases.map((c) => c.id).join(', ')}`);
  console.log(`CPU: ${cpu}; ${describeFlags(cpuFlags)}`);

  const ng = await mustStartNodegrad();
  const thOrWhy = await startTorch();
  const th = typeof thOrWhy === 'string' ? null : thOrWhy;
  const torchSkipped = typeof thOrWhy === 'string' ? thOrWhy : null;
  if (torchSkipped) console.log(`PyTorch side skipped: ${torchSkipped}`);
  console.log(`peak sgemm: ${gemmN}^3 float32 matmul on each side`);
  const gemm = await measureGemm(ng, th);
  await ng.close();
  await th?.close();

  const results: CaseResult[] = [];
  const failures: CaseFailure[] = [];
  for (const spec of cases) {
    process.stdout.write(`${spec.id}: ${spec.title}, batch ${spec.batch}, 3x${spec.size}x${spec.size} `);
    try {
      results.push(await runCase(spec, th !== null, warnings, results));
    } catch (e) {
      // Reported, and the other cases still run: a bfloat16 kernel the native backend lacks fails
      // its case with the worker's message; nothing falls back to float32.
      const error = e instanceof Error ? e.message : String(e);
      failures.push({ spec, error });
      process.stdout.write(` FAILED:\n${error}\n`);
    }
  }

  const report: BenchReport = {
    date: new Date().toISOString(), quick, threads, caseIds: cases.map((c) => c.id), warnings, torchSkipped,
    machine: {
      cpu, logicalCpus: availableParallelism(), physicalCores, memGiB: totalmem() / 2 ** 30, kernel: release(), flags: cpuFlags,
    },
    versions: {
      node: process.version, nodegrad: String(ng.hello.version), onednn: await onednnVersion(String(ng.hello.onednn)),
      torch: th ? String(th.hello.version) : null, torchvision: th ? String(th.hello.torchvision) : null,
      python: th ? String(th.hello.python) : null, torchBlas: th ? String(th.hello.blas) : null,
    },
    gemm, cases: results, failures,
  };
  console.log(consoleSummary(report));
  writeFileSync(resolve(root, flags.out!), markdownReport(report));
  console.log(`wrote ${flags.out}`);
  if (failures.length) {
    console.error(`${failures.length} case(s) failed: ${failures.map((x) => x.spec.id).join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch(fail);
