/**
 * ONNX Runtime's side of `npm run bench` for the inference cases: a child process driven by
 * bench/resnet.ts over the JSON-lines protocol of bench/nodegrad_cases.ts, running the torchvision
 * model that the PyTorch worker exported (opset 17) through `onnxruntime-node`, the runtime a Node
 * user would pick for inference. onnxruntime-node is not a dependency of nodegrad: bench/peers.sh
 * installs it outside the repository, and its folder is this script's second argument.
 *   {"cmd":"setup","case":CaseSpec,"model":path,"input":path} -> {"ok":true,"params":n,"macs":null}
 *   {"cmd":"run","iters":k} -> {"ok":true,"seconds":[...]}    {"cmd":"output"} -> {"ok":true,"output":[...]}
 *   node --import tsx bench/ort_cases.ts <threads> <folder holding node_modules/onnxruntime-node>
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CaseSpec } from './cases.js';

// The part of onnxruntime-node's API used here (its types live with it, outside the repository).
interface OrtTensor { data: Float32Array; dims: readonly number[] }
interface OrtSession { run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>> }
interface Ort {
  env: { versions: { node: string } };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(path: string, options: object): Promise<OrtSession> };
}

const send = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const maxRssKB = () => process.resourceUsage().maxRSS;

const threads = Number(process.argv[2] ?? 1);
const folder = process.argv[3] ?? '';
let session: OrtSession | null = null;
let feeds: Record<string, OrtTensor> = {};

function load(): Ort | string {
  try {
    return createRequire(join(folder, 'package.json'))('onnxruntime-node') as Ort;
  } catch (e) {
    return `onnxruntime-node could not be loaded from ${folder} (bench/peers.sh installs it): ${(e as Error).message.split('\n')[0]}`;
  }
}

async function setup(ort: Ort, c: CaseSpec, model: string, input: string): Promise<object> {
  if (c.mode !== 'infer' || c.precision !== 'float32') throw new Error(`setup: ONNX Runtime runs float32 inference cases only, not ${c.id}`);
  // All graph optimizations (constant folding, conv+bn+relu fusion, layout transforms), one
  // inter-op thread and the bench's intra-op threads, as nodegrad and PyTorch get.
  session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: threads, interOpNumThreads: 1,
  });
  const bytes = readFileSync(input);
  // A copy: a view would need the file's bytes at a 4-byte-aligned offset of their ArrayBuffer.
  const x = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  feeds = { input: new ort.Tensor('float32', x, [c.batch, 3, c.size, c.size]) };
  return { params: null, macs: null };
}

async function run(iters: number): Promise<number[]> {
  if (!session) throw new Error('run: no case is set up (send "setup" first)');
  const seconds: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    seconds.push((performance.now() - t0) / 1e3);
  }
  return seconds;
}

async function handle(ort: Ort, msg: { cmd: string; case?: CaseSpec; model?: string; input?: string; iters?: number }): Promise<object> {
  switch (msg.cmd) {
    case 'setup': return { ok: true, ...(await setup(ort, msg.case!, msg.model!, msg.input!)) };
    case 'run': return { ok: true, seconds: await run(msg.iters!) };
    case 'output': {
      if (!session) throw new Error('output: no case is set up');
      return { ok: true, output: Array.from((await session.run(feeds)).logits!.data) };
    }
    case 'info': return { ok: true, maxRssKB: maxRssKB() };
    default: throw new Error(`unknown command ${JSON.stringify(msg.cmd)}`);
  }
}

const ort = load();
if (typeof ort === 'string') {
  send({ ready: false, error: ort });
} else {
  send({ ready: true, version: ort.env.versions.node, threads, startRssKB: maxRssKB() });
  // One request at a time: the orchestrator awaits each reply before it sends the next line.
  let chain = Promise.resolve();
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const msg = JSON.parse(line) as { cmd: string };
    if (msg.cmd === 'exit') { rl.close(); return; }
    chain = chain.then(() => handle(ort, msg)).then((r) => { send(r); },
      (e: unknown) => { send({ ok: false, error: e instanceof Error ? e.message : String(e) }); });
  });
}
