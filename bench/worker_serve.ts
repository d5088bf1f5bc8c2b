/**
 * The worker end of the protocol of bench/worker_client.ts, shared by nodegrad's workers
 * (bench/nodegrad_cases.ts, bench/overhead_cases.ts): JSON lines, a greeting, then one reply per request.
 */
import { createInterface } from 'node:readline';

export const send = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** Seconds of each of `iters` calls of the set-up case's iteration. */
export function timeIterations(iteration: (() => void) | null, iters: number): number[] {
  if (!iteration) throw new Error('run: no case is set up (send "setup" first)');
  const seconds: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    iteration();
    seconds.push((performance.now() - t0) / 1e3);
  }
  return seconds;
}

/**
 * Sends the greeting and, when ready, answers each request line with `handle`'s reply (or what
 * its promise resolves to) or the error, one request at a time, until "exit".
 */
export function serve<M extends { cmd: string }>(greeting: { ready: boolean }, handle: (msg: M) => object | Promise<object>): void {
  send(greeting);
  if (!greeting.ready) return;
  const rl = createInterface({ input: process.stdin });
  let answered = Promise.resolve();
  rl.on('line', (line) => {
    const msg = JSON.parse(line) as M;
    if (msg.cmd === 'exit') { rl.close(); return; }
    answered = answered.then(async () => {
      try {
        send(await handle(msg));
      } catch (e) {
        send({ ok: false, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
      }
    });
  });
}
