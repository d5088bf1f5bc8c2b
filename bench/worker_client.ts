/**
 * The orchestrator's end of a benchmark worker (bench/nodegrad_cases.ts, bench/torch_cases.py):
 * spawns it, waits for its hello line, then sends one JSON request per line and awaits one JSON
 * reply per line. Lines that are not JSON objects (library chatter such as ONEDNN_VERBOSE) are
 * kept in `otherLines`; stderr is kept (its tail) for error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Hello {
  ready: boolean;
  error?: string;
  version?: string;
  threads?: number;
  startRssKB?: number;
  [key: string]: unknown;
}

export interface Reply {
  ok: boolean;
  error?: string;
  seconds?: number[];
  params?: number;
  macs?: number;
  maxRssKB?: number;
  /** Logits of an inference case (output), or PyTorch's on the model it exported (export). */
  output?: number[];
  /** nodegrad's memoryStats() at the time of an info request. */
  native?: NativeMemory;
}

export interface NativeMemory {
  liveHandles: number;
  liveBytes: number;
  poolCachedBytes: number;
}

export class Worker {
  readonly otherLines: string[] = [];
  private stderrTail = '';
  private waiting: { resolve: (line: string) => void; reject: (e: Error) => void } | null = null;
  private exited: string | null = null;

  private constructor(readonly name: string, private readonly child: ChildProcess, readonly hello: Hello) {}

  /**
   * Starts `command args` and resolves with the worker once it has said hello. A worker that
   * cannot start, or that says `ready: false`, resolves to its hello's error (a string).
   */
  static async start(name: string, command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }):
    Promise<Worker | string> {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let pending: ((line: string) => void) | null = null;
    let worker: Worker | null = null;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      if (worker) worker.stderrTail = stderr;
    });
    const onLine = (line: string) => {
      if (!line.startsWith('{')) {
        (worker?.otherLines ?? lines).push(line);
        return;
      }
      if (worker) worker.deliver(line);
      else pending?.(line);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    const first = await new Promise<string>((resolve) => {
      pending = resolve;
      child.on('error', (e) => resolve(JSON.stringify({ ready: false, error: `${command}: ${e.message}` })));
      // 'close', not 'exit': it comes after stdout has ended, so a last hello line is not lost.
      child.on('close', (code, signal) => {
        const why = stderr.trim() ? `: ${stderr.trim().slice(-1500)}` : '';
        const error = `${name} worker (${command}) exited with ${signal ?? `code ${code}`} before saying hello${why}`;
        resolve(JSON.stringify({ ready: false, error }));
      });
    });
    const hello = JSON.parse(first) as Hello;
    if (!hello.ready) {
      child.kill();
      return hello.error ?? `${name} worker is not ready`;
    }
    worker = new Worker(name, child, hello);
    worker.otherLines.push(...lines);
    worker.stderrTail = stderr;
    child.on('exit', (code, signal) => {
      worker!.exited = `exited with ${signal ?? `code ${code}`}`;
      worker!.waiting?.reject(worker!.failure(worker!.exited));
    });
    return worker;
  }

  /** The worker's process id, to read what it has loaded from /proc. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private failure(what: string): Error {
    return new Error(`${this.name} worker ${what}${this.stderrTail ? `\n--- its stderr ---\n${this.stderrTail.trim()}` : ''}`);
  }

  private deliver(line: string): void {
    const w = this.waiting;
    this.waiting = null;
    w?.resolve(line);
  }

  /** Sends one request and resolves with its reply; a reply with ok false rejects with its error. */
  async request(msg: object): Promise<Reply> {
    if (this.exited) throw this.failure(this.exited);
    if (this.waiting) throw new Error(`${this.name} worker: a request is already in flight`);
    const line = await new Promise<string>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.child.stdin!.write(`${JSON.stringify(msg)}\n`);
    });
    const reply = JSON.parse(line) as Reply;
    if (!reply.ok) throw this.failure(`failed on ${JSON.stringify(msg).slice(0, 200)}: ${reply.error}`);
    return reply;
  }

  /** Asks the worker to exit and waits for it. */
  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.write('{"cmd":"exit"}\n');
    this.child.stdin!.end();
    await done;
  }
}
