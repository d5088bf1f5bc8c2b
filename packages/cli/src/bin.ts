#!/usr/bin/env node
/** The `nodegrad` command: dispatches to src/commands/*; expected errors become one-line messages and exit codes. */
import { readFileSync } from 'node:fs';
import { CliError, UsageError } from './args.js';

/** This package's version: package.json sits one level above src/ and dist/ alike. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const COMMANDS: Record<string, { summary: string; load: () => Promise<(argv: readonly string[]) => number | Promise<number>> }> = {
  train: { summary: 'train a ResNet (default: the small-image ResNet-18 on the built-in MNIST digits)', load: async () => (await import('./commands/train.js')).run },
  eval: { summary: 'accuracy and confusion matrix of a checkpoint on a dataset', load: async () => (await import('./commands/eval.js')).run },
  bench: { summary: "time ResNet training steps on the native 'cpu' backend against PyTorch", load: async () => (await import('./commands/bench.js')).runBench },
  launch: { summary: 'run a script as the ranks of one job through mpirun (@nodegrad/distributed)', load: async () => (await import('./commands/launch.js')).run },
  doctor: { summary: 'Node, backends present and why not, native build features, threads, versions', load: async () => (await import('./commands/doctor.js')).runDoctor },
};

const USAGE = `usage: nodegrad <command> [flags]
       nodegrad --version

commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)}${c.summary}`).join('\n')}

Run 'nodegrad <command> --help' for a command's flags. With --verbose, an expected error
(a bad file, a folder that cannot be written) also prints its stack trace.`;

/** Node's errors of the file system and the machine: the user's to fix, not a bug of ours. */
const SYSTEM_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOENT', 'EEXIST', 'EISDIR', 'ENOTDIR', 'EMFILE', 'ENFILE', 'EIO']);

/** The exit code of an expected failure (a file's or the machine's problem), or null for a bug. */
function expectedFailure(e: unknown): 1 | 2 | null {
  if (e instanceof UsageError) return 2;
  if (e instanceof CliError) return 1;
  if (!(e instanceof Error)) return null;
  // By name: the data and nn packages are not loaded to print an error.
  if (e.name === 'DataError' || e.name === 'SafetensorsError') return 1;
  const code = (e as NodeJS.ErrnoException).code;
  return code !== undefined && SYSTEM_CODES.has(code) && (e as NodeJS.ErrnoException).syscall !== undefined ? 1 : null;
}

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const [name, ...rest] = argv.filter((a) => a !== '--verbose');
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`nodegrad ${version()} (Node ${process.version})`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`nodegrad: unknown command '${name}' (one of ${Object.keys(COMMANDS).join(', ')})\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (await cmd.load())(rest);
  } catch (e) {
    // Expected failures are one line (and exit 1, or 2 for usage); a bug keeps its stack trace.
    const code = expectedFailure(e);
    if (code === null) throw e;
    const err = e as Error;
    if (err instanceof UsageError) console.error(`nodegrad ${err.command}: ${err.message}\nRun 'nodegrad ${err.command} --help' for usage.`);
    else console.error(err.message.startsWith('nodegrad ') ? err.message : `nodegrad ${name}: ${err.message}`);
    if (verbose) console.error(err.stack);
    return code;
  }
}

process.exitCode = await main(process.argv.slice(2));
