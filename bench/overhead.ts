/**
 * Framework overhead against PyTorch (issue 17): the cases of bench/overhead_specs.ts, each side in
 * a worker process of its own (bench/overhead_cases.ts, bench/overhead_torch.py), timed in blocks
 * that alternate between them as the ResNet cases do. `npm run bench` runs them as its group O and
 * writes them into docs/benchmarks.md; alone:
 *
 *   npm run bench:overhead [-- --quick] [--python PATH]
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { alternateBlocks, fail, median, mustStart, workerEnv } from './harness.js';
import type { ProfileSummary } from './overhead_profile.js';
import { OVERHEAD_CASES, type OverheadSpec } from './overhead_specs.js';
import { Worker } from './worker_client.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface OverheadResult {
  spec: OverheadSpec;
  /** Median seconds per iteration over the timed blocks. */
  nodegrad: number;
  torch: number | null;
  /** For a chain: where nodegrad's iterations spend their time, profiled after the timed blocks. */
  profile?: ProfileSummary;
}

/** The garbage collector's share of the 'cpu' chain's profile that issue 17 asks to stay under. */
const GC_SHARE_ASKED = 0.05;

/** Runs every overhead case; `python` is the interpreter with PyTorch (null: nodegrad alone). */
export async function runOverhead(python: string | null, quick: boolean, log = (s: string) => process.stdout.write(s)):
  Promise<{ results: OverheadResult[]; torchVersion: string | null; torchSkipped?: string }> {
  const results: OverheadResult[] = [];
  let torchVersion: string | null = null;
  let torchSkipped: string | undefined;
  for (const spec of OVERHEAD_CASES) {
    log(`${spec.id}: ${spec.title} on '${spec.device}' `);
    const sides = [mustStart(await Worker.start('nodegrad', process.execPath, ['--import', 'tsx', join(root, 'bench', 'overhead_cases.ts')],
      { cwd: root, env: workerEnv(1) }), 'nodegrad')];
    try {
      if (python) {
        const th = await Worker.start('PyTorch', python, [join(root, 'bench', 'overhead_torch.py')], { cwd: root, env: workerEnv(1) });
        if (typeof th === 'string') torchSkipped = th;
        else { sides.push(th); torchVersion = String(th.hello.version); }
      }
      for (const w of sides) await w.request({ cmd: 'setup', case: spec });
      const schedule = { warmup: quick ? 2 : 5, repeats: quick ? 3 : 7, iters: spec.iters };
      const blocks = await alternateBlocks(sides, schedule, () => log('.'));
      const result: OverheadResult = { spec, nodegrad: median(blocks[0]!), torch: blocks[1] ? median(blocks[1]) : null };
      if (spec.kind === 'chain') {
        // Profiled apart from the timing: the profiler's sampling slows what it watches.
        const reply = await sides[0]!.request({ cmd: 'profile', iters: spec.iters * (quick ? 5 : 20) });
        result.profile = (reply as unknown as { profile: ProfileSummary }).profile;
      }
      results.push(result);
      log(` ${overheadLine(result)}\n`);
    } finally {
      for (const w of sides) await w.close();
    }
  }
  return { results, torchVersion, ...(torchSkipped ? { torchSkipped } : {}) };
}

/** The time of one unit of a case: per op for a chain, per step or call otherwise. */
function perUnit(r: OverheadResult, seconds: number): string {
  if (r.spec.kind === 'chain') return `${((seconds / r.spec.ops) * 1e6).toFixed(2)} µs/op`;
  return `${(seconds * 1e3).toFixed(r.spec.kind === 'mlp' ? 3 : 1)} ms/${r.spec.kind === 'mlp' ? 'step' : 'call'}`;
}

/** nodegrad's speed over PyTorch's (above 1: nodegrad is faster). */
const speed = (r: OverheadResult) => (r.torch === null ? null : r.torch / r.nodegrad);

export function overheadLine(r: OverheadResult): string {
  const s = speed(r);
  return `nodegrad ${perUnit(r, r.nodegrad)}` + (r.torch === null ? '' : `, PyTorch ${perUnit(r, r.torch)}: ${s!.toFixed(2)}x PyTorch's speed`) +
    (r.profile ? `; garbage collection ${pct(r.profile.gcShare)} of its profile` : '');
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The chains' profiles side by side: the garbage collector's share, then each chain's top entries. */
function profileMarkdown(results: OverheadResult[]): string[] {
  const chains = results.filter((r) => r.profile);
  if (!chains.length) return [];
  const n = Math.max(...chains.map((r) => r.profile!.top.length));
  const gc = chains.map((r) => `${pct(r.profile!.gcShare)}` +
    (r.spec.device === 'cpu' ? ` (asked: under ${pct(GC_SHARE_ASKED)}${r.profile!.gcShare < GC_SHARE_ASKED ? ', met' : ''})` : ''));
  return [
    `Where the chains' time goes: V8's CPU profile of ${chains.map((r) => `${r.spec.id} (${r.profile!.ms.toFixed(0)} ms)`).join(' and ')}, ` +
    'taken in the worker over the iterations alone after the timed blocks (node:inspector, 100 µs sampling; bench/overhead_profile.ts), ' +
    'self time by function, idle excluded.',
    '',
    `| | ${chains.map((r) => r.spec.id).join(' | ')} |`,
    `| --- |${chains.map(() => ' --- |').join('')}`,
    `| garbage collection | ${gc.join(' | ')} |`,
    ...Array.from({ length: n }, (_, i) => `| ${i + 1} | ${chains.map((r) => {
      const e = r.profile!.top[i];
      return e ? `${e.name.replace(/\|/g, '\\|')}: ${pct(e.share)}` : '';
    }).join(' | ')} |`),
    '',
  ];
}

export function overheadMarkdown(o: Awaited<ReturnType<typeof runOverhead>>): string {
  const rows = o.results.map((r) => {
    const s = speed(r);
    return `| ${r.spec.id} | ${r.spec.title} | '${r.spec.device}' | ${perUnit(r, r.nodegrad)} | ${r.torch === null ? '-' : perUnit(r, r.torch)} | ` +
      `${s === null ? '-' : `${s.toFixed(2)}x`} | ${r.spec.target.toFixed(1)}x${s !== null && s >= r.spec.target ? ' (met)' : ''} |`;
  });
  return [
    '## Framework overhead (group O, issue 17)',
    '',
    `One thread on each side; PyTorch ${o.torchVersion ?? `not run (${o.torchSkipped ?? 'no interpreter'})`} on its CPU device. ` +
    'Speed is PyTorch\'s time over nodegrad\'s (above 1: nodegrad is faster); each side\'s figure is the median of its timed blocks, ' +
    'which alternate between the two. Workloads: bench/overhead_specs.ts.',
    '',
    '| case | workload | nodegrad device | nodegrad | PyTorch | speed | asked |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    ...profileMarkdown(o.results),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, python: { type: 'string' } } });
  const venv = join(resolve(process.env.NODEGRAD_PEERS ?? join(homedir(), '.cache', 'nodegrad-peers')), 'venv', 'bin', 'python');
  const python = values.python ?? (existsSync(venv) ? venv : '/usr/bin/python3');
  const o = await runOverhead(python, values.quick!);
  console.log(`\n${overheadMarkdown(o)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main().catch(fail);
