// Runs an exported model through onnxruntime-node with its profiler on (all graph optimizations,
// 2 intra-op threads, as the bench) and prints the profile file's path. Usage: ort_profile.cjs DIR NAME RUNS
const { join } = require('node:path');
const { readFileSync } = require('node:fs');
const [dir, name, runs] = process.argv.slice(2);
const peers = process.env.NODEGRAD_PEERS ?? join(require('node:os').homedir(), '.cache/nodegrad-peers');
const ort = require(join(peers, 'node/node_modules/onnxruntime-node'));
(async () => {
  const session = await ort.InferenceSession.create(join(dir, `${name}.onnx`), {
    graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: 2, interOpNumThreads: 1,
    enableProfiling: true, profileFilePrefix: join(dir, `ort_${name}`),
  });
  const b = readFileSync(join(dir, `${name}.input.bin`));
  const x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  for (let i = 0; i < Number(runs); i++) await session.run({ input: new ort.Tensor('float32', x, [8, 3, 224, 224]) });
  console.log(session.endProfiling());
})();
