/** Runs the `nodegrad` command from source in a child process, as a user would from the repo. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backends } from '@nodegrad/autograd';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** 'cpu' when the native addon is built (the issue asks for the end-to-end run through it), else 'ts'. */
export const DEVICE = backends().some((b) => b.name === 'cpu' && b.available) ? 'cpu' : 'ts';

/** A narrow ResNet-18 on a slice of MNIST: seconds per epoch on 'cpu'. */
export const SMALL = ['--widths', '8,16,32,64', '--device', DEVICE, '--threads', '1'];

export interface Result { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * Starts `node --import tsx bin.ts ...args` (node itself, not npx or the tsx wrapper, so a
 * SIGKILL reaches the process that trains). One OpenMP thread: results are then reproducible
 * bit for bit, and the test does not oversubscribe the cores.
 */
export function start(args: readonly string[], as?: { uid: number; gid: number }): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: REPO, env: { ...process.env, OMP_NUM_THREADS: '1', NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'], ...as,
  });
}

/**
 * Runs to the end; `onStdout` sees the output as it arrives (to kill the run at a chosen point).
 * `as`: another user to run as (a root test process can only see a permission error that way).
 */
export function runCli(args: readonly string[], onStdout?: (all: string, child: ChildProcess) => void, as?: { uid: number; gid: number }): Promise<Result> {
  const child = start(args, as);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); onStdout?.(stdout, child); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
