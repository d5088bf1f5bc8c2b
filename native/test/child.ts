// Runs a child process without blocking the test worker. vitest's worker reports progress to the
// main process over RPC with a 60 s reply timeout; a spawnSync that holds the worker's event loop
// longer (a native build on a busy CI machine) makes that timer fire first, and vitest then fails
// the whole run with "Timeout calling onTaskUpdate" although every test passed.
import { spawn, type SpawnOptions } from 'node:child_process';

export interface ChildResult {
  /** Exit code, or null when a signal (the timeout's SIGTERM) ended it. */
  status: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (ENOENT, EACCES). */
  error?: Error;
}

/** Like spawnSync(cmd, args, { encoding: 'utf8', ...options }), but awaited. */
export function runChild(cmd: string, args: string[], options: SpawnOptions = {}): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', (error) => resolve({ status: null, stdout, stderr, error }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
