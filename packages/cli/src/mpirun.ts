/**
 * Runs ranks of one job through Open MPI's `mpirun` (which also spans hosts and, when one rank
 * throws or is killed, stops the others and exits non-zero): for `nodegrad launch` and
 * `nodegrad train --nproc`. As root it passes --allow-run-as-root; with more ranks than cores,
 * --oversubscribe; each rank gets OMP_NUM_THREADS = cores / ranks unless the environment sets it
 * (torchrun sets 1).
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism, constants as osConstants, hostname } from 'node:os';
import { CliError } from './args.js';

/** The mpirun command line for `nproc` ranks per host, each running `node ...node` (flags, script, arguments). */
export function mpirunArgs(nproc: number, hostfile: string | null, node: readonly string[], isRoot: boolean, cores: number,
  env: NodeJS.ProcessEnv): string[] {
  const exported = ['OMP_NUM_THREADS', 'NODE_OPTIONS', 'NODEGRAD_DISTRIBUTED_DEBUG', 'NODEGRAD_LAUNCHER', 'NODEGRAD_TTY']
    .filter((k) => env[k] !== undefined);
  return [
    ...(isRoot ? ['--allow-run-as-root'] : []),
    ...(hostfile ? ['--hostfile', hostfile, '--npernode', String(nproc)] : ['-np', String(nproc)]),
    // Ranks are Node processes with their own threads: no pinning to one core each.
    '--bind-to', 'none',
    ...(nproc > cores ? ['--oversubscribe'] : []),
    // Remote ranks get these from mpirun; local ones inherit the environment anyway.
    ...exported.flatMap((k) => ['-x', k]),
    process.execPath, ...node,
  ];
}

/**
 * Runs `node ...node` (node's flags, the script and its arguments) as `nproc` ranks per host
 * under mpirun, with the terminal's signals passed on; resolves to mpirun's exit code, or to
 * 128 + the signal's number when SIGINT or SIGTERM stopped the job. The ranks learn this
 * process from NODEGRAD_LAUNCHER and stop if it is killed (@nodegrad/distributed's launcher watch).
 */
export async function runRanks(nproc: number, hostfile: string | null, node: readonly string[]): Promise<number> {
  const which = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (which.error || which.status !== 0) {
    throw new CliError(`mpirun does not run (${which.error?.message ?? which.stderr.trim()}); ` +
      'install Open MPI (apt-get install openmpi-bin libopenmpi-dev)');
  }
  const cores = availableParallelism();
  const env = {
    ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS || String(Math.max(1, Math.floor(cores / nproc))),
    NODEGRAD_LAUNCHER: `${hostname()}:${process.pid}`,
    // mpirun hands the ranks a pseudo-terminal whatever the launcher's output is: say what it is.
    NODEGRAD_TTY: process.stdout.isTTY ? '1' : '0',
  };
  const child = spawn('mpirun', mpirunArgs(nproc, hostfile, node, process.getuid?.() === 0, cores, env), { stdio: 'inherit', env });
  // Ctrl-C reaches mpirun, which stops every rank.
  let stoppedBy: NodeJS.Signals | null = null;
  const forward = (sig: NodeJS.Signals) => {
    stoppedBy ??= sig;
    child.kill(sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1))));
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  if (stoppedBy) {
    console.error(`nodegrad: stopped by ${stoppedBy}; mpirun stopped the ranks`);
    return 128 + osConstants.signals[stoppedBy];
  }
  return code;
}
