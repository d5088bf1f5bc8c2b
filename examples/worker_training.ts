/**
 * Training off the event loop: a server keeps answering while a worker thread trains.
 *
 *   npx tsx examples/worker_training.ts [--steps 30]
 */
import { Worker } from 'node:worker_threads';

const i = process.argv.indexOf('--steps');
const steps = i >= 0 ? Number(process.argv[i + 1]) : 30;

// The event loop's own heartbeat: it keeps ticking while the worker computes.
let ticks = 0;
const heartbeat = setInterval(() => { ticks++; }, 5);

const worker = new Worker(new URL('./worker_training_job.mjs', import.meta.url), { workerData: { steps } });
const losses: number[] = [];
worker.on('message', (m: { type: string; step?: number; loss?: number; device?: string; weights?: object }) => {
  if (m.type === 'progress') {
    losses.push(m.loss!);
    if (m.step === 1 || m.step! % 10 === 0) console.log(`step ${m.step}: loss ${m.loss!.toFixed(4)} on '${m.device}'`);
  } else {
    clearInterval(heartbeat);
    console.log(JSON.stringify({ steps: losses.length, first: losses[0], last: losses.at(-1),
      ticks, tensors: Object.keys(m.weights!).length }));
  }
});
worker.on('error', (e) => { clearInterval(heartbeat); throw e; });
