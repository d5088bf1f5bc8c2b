/**
 * `npm run bench:compare`: this checkout's nodegrad against another checkout of it (the commit
 * before a change), to show what the change does to speed and memory. Per case, one nodegrad
 * worker runs from each checkout (its own bench/nodegrad_cases.ts, packages and native addon),
 * with the warm-up and the alternating timed blocks of `npm run bench` (bench/harness.ts), so that
 * load from elsewhere on the machine hits both alike. Prints to the terminal only.
 *
 *   git worktree add --detach ../baseline <commit> && cp -a node_modules ../baseline/
 *   (cd ../baseline && node native/scripts/build_addon.mjs)
 *   npm run bench:compare -- --baseline ../baseline [--cases A,B] [--quick] [--threads 2]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { scheduleFor, type CaseSpec } from './cases.js';
import {
  alternateBlocks, cpuInfo, fail, median, mustStart, positiveInt, selectCases, startNodegrad,
} from './harness.js';
import type { Worker } from './worker_client.js';

const { values: flags } = parseArgs({
  options: {
    baseline: { type: 'string' },
    cases: { type: 'string', default: 'A,B' },
    quick: { type: 'boolean', default: false },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
if (!flags.baseline) {
  console.error('usage: npm run bench:compare -- --baseline <checkout of the earlier commit> [--cases A,B] [--quick] [--threads n]');
  process.exit(2);
}
if (!existsSync(resolve(flags.baseline, 'bench', 'nodegrad_cases.ts'))) {
  fail(`bench:compare: --baseline ${flags.baseline} has no bench/nodegrad_cases.ts: it must be a nodegrad checkout`);
}
const threads = positiveInt('--threads', flags.threads!);
const sides = [
  { label: 'new', root: realpathSync(fileURLToPath(new URL('..', import.meta.url))) },
  { label: 'baseline', root: realpathSync(flags.baseline) },
];

/** The checkout's commit, marked when tracked files differ from it. */
function commitOf(root: string): string {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? ' + local changes' : ''}`;
  } catch {
    return 'not a git checkout';
  }
}

/**
 * The nodegrad.node the worker has mapped, which must lie in its own checkout: a worker that
 * resolved @nodegrad/* elsewhere (node_modules links pointing at another tree) would compare a
 * build with itself.
 */
function checkAddon(w: Worker, root: string): void {
  const maps = readFileSync(`/proc/${w.pid}/maps`, 'utf8');
  const addon = /\s(\/\S*nodegrad\.node)$/m.exec(maps)?.[1];
  if (!addon || relative(root, addon).startsWith('..')) {
    throw new Error(`bench:compare: the ${w.name} worker runs ${addon ?? 'no nodegrad.node'}, not the addon of ${root}; ` +
      `check ${root}/node_modules/@nodegrad links and that its addon is built`);
  }
}

const imgs = (spec: CaseSpec, seconds: number) => (spec.batch / seconds).toFixed(2);

async function runCase(spec: CaseSpec): Promise<void> {
  const schedule = scheduleFor(spec, flags.quick!);
  process.stdout.write(`${spec.id}: ${spec.title}, batch ${spec.batch}, 3x${spec.size}x${spec.size}; ` +
    `warm-up ${schedule.warmup}, ${schedule.repeats} blocks of ${schedule.iters} per side `);
  const workers: Worker[] = [];
  for (const s of sides) {
    const w = mustStart(await startNodegrad(s.root, threads, s.label), s.label);
    workers.push(w);
    checkAddon(w, s.root);
  }
  const setups = [];
  for (const w of workers) setups.push(await w.request({ cmd: 'setup', case: spec }));
  const blocks = await alternateBlocks(workers, schedule, () => process.stdout.write('.'));
  const rssKB: number[] = [];
  for (const w of workers) {
    const { maxRssKB } = await w.request({ cmd: 'info' });
    if (typeof maxRssKB !== 'number') throw new Error(`bench:compare: the ${w.name} worker answered info without maxRssKB`);
    rssKB.push(maxRssKB);
    await w.close();
  }
  const med = blocks.map(median);
  console.log(`\n  side      img/s (median)  blocks min-max   peak RSS MiB`);
  sides.forEach((s, i) => {
    const spread = `${imgs(spec, Math.max(...blocks[i]!))}-${imgs(spec, Math.min(...blocks[i]!))}`;
    console.log(`  ${s.label.padEnd(8)}  ${imgs(spec, med[i]!).padStart(14)}  ${spread.padStart(14)}  ` +
      `${(rssKB[i]! / 1024).toFixed(0).padStart(12)}`);
  });
  console.log(`  new/baseline: ${(med[1]! / med[0]!).toFixed(3)}x img/s, ${(rssKB[0]! / rssKB[1]!).toFixed(3)}x peak RSS`);
  if (setups[0]!.params !== setups[1]!.params || setups[0]!.macs !== setups[1]!.macs) {
    console.log(`  warning: the models differ: params ${setups[0]!.params} vs ${setups[1]!.params}, ` +
      `MACs/image ${setups[0]!.macs} vs ${setups[1]!.macs}`);
  }
}

async function main(): Promise<void> {
  const cases = selectCases(flags.cases!);
  console.log(`nodegrad 'cpu': new against baseline, ${threads} thread(s) each${flags.quick ? ', quick run' : ''}`);
  for (const s of sides) console.log(`  ${s.label.padEnd(8)}  ${s.root} (${commitOf(s.root)})`);
  const { cpu, physicalCores } = cpuInfo();
  console.log(`CPU: ${cpu}, ${physicalCores ?? '?'} cores, ${availableParallelism()} logical CPUs`);
  for (const spec of cases) await runCase(spec);
}

main().catch(fail);
