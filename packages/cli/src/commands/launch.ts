/** `nodegrad launch`: runs a script as the ranks of one job, on top of Open MPI's `mpirun` (src/mpirun.ts). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, UsageError, formatFlags, parseFlags, type FlagSpecs } from '../args.js';
import { runRanks } from '../mpirun.js';

const FLAGS: FlagSpecs = {
  'nproc-per-node': { type: 'int', min: 1, help: 'ranks on each host (default 1)' },
  hostfile: { type: 'string', placeholder: 'FILE', help: "Open MPI's hostfile: the hosts, one per line (default: this host only)" },
  help: { type: 'bool', help: 'show this help' },
};

export const usage = `usage: nodegrad launch [flags] SCRIPT [ARGS...]

Runs 'node SCRIPT ARGS...' as the ranks of one job through mpirun (Open MPI); in the script,
initProcessGroup() from @nodegrad/distributed finds its rank and the world size.

flags:
${formatFlags(FLAGS)}`;

export async function run(argv: readonly string[]): Promise<number> {
  // Flags come before the script; everything after it is the script's.
  const at = argv.findIndex((a, i) => !a.startsWith('--') && !(i > 0 && needsValue(argv[i - 1]!)));
  const given = parseFlags('launch', FLAGS, at < 0 ? argv : argv.slice(0, at));
  if (given.help) {
    console.log(usage);
    return 0;
  }
  if (at < 0) throw new UsageError('launch', 'SCRIPT is required: nodegrad launch [flags] SCRIPT [ARGS...]');
  // Checked here, as node would resolve it: each rank would print Node's stack trace for it. A
  // hostfile job's script may exist on the other hosts only.
  const script = argv[at]!;
  const found = [script, `${script}.js`, `${script}.mjs`, `${script}.cjs`, join(script, 'index.js')].some((p) => existsSync(p));
  if (!found && given.hostfile === undefined) throw new CliError(`SCRIPT ${script}: no such file`);
  const nproc = (given['nproc-per-node'] ?? 1) as number;
  return runRanks(nproc, (given.hostfile as string | undefined) ?? null, argv.slice(at));
}

function needsValue(flag: string): boolean {
  const spec = FLAGS[flag.slice(2)];
  return !!spec && spec.type !== 'bool' && !flag.includes('=');
}
