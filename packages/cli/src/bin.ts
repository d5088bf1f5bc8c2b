#!/usr/bin/env node
/** The `nodegrad` command: dispatches to src/commands/*; expected errors become messages and exit codes. */
import { CliError, UsageError } from './args.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<(argv: readonly string[]) => number | Promise<number>> }> = {
  train: { summary: 'train a ResNet (default: the small-image ResNet-18 on the built-in MNIST digits)', load: async () => (await import('./commands/train.js')).run },
  eval: { summary: 'accuracy and confusion matrix of a checkpoint on a dataset', load: async () => (await import('./commands/eval.js')).run },
  bench: { summary: "time ResNet training steps on the native 'cpu' backend against PyTorch", load: async () => (await import('./commands/bench.js')).runBench },
  launch: { summary: 'run a script as the ranks of one job through mpirun (@nodegrad/distributed)', load: async () => (await import('./commands/launch.js')).run },
  doctor: { summary: 'Node, backends present and why not, native build features, threads, versions', load: async () => (await import('./commands/doctor.js')).runDoctor },
};

const USAGE = `usage: nodegrad <command> [flags]

commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)}${c.summary}`).join('\n')}

Run 'nodegrad <command> --help' for a command's flags.`;

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`nodegrad: unknown command '${name}' (one of ${Object.keys(COMMANDS).join(', ')})\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (await cmd.load())(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`nodegrad ${e.command}: ${e.message}\nRun 'nodegrad ${e.command} --help' for usage.`);
      return 2;
    }
    if (e instanceof CliError) {
      console.error(e.message.startsWith('nodegrad ') ? e.message : `nodegrad ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
