/**
 * Loading a checkpoint of many small tensors (20,000, as a long run's optimizer state can have),
 * nodegrad's loadSafetensors against the safetensors package's load_file into torch, in one
 * session. Run: npm run bench:checkpoint [-- --python PATH]; the default Python is the peers' venv
 * (bench/peers.sh).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, randn, type Tensor } from '@nodegrad/autograd';
import '@nodegrad/native';
import { loadSafetensors, saveSafetensors } from '@nodegrad/nn';

const COUNT = 20_000;
const RUNS = 5;
const argPython = process.argv.indexOf('--python');
const python = argPython > 0 ? process.argv[argPython + 1]! : join(process.env.NODEGRAD_PEERS ?? join(homedir(), '.cache/nodegrad-peers'), 'venv/bin/python');

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'nodegrad-ckpt-bench-'));
try {
  const file = join(dir, 'many.safetensors');
  manualSeed(0);
  const dict: Record<string, Tensor> = {};
  for (let i = 0; i < COUNT; i++) dict[`layer${i % 40}.block${Math.floor(i / 40)}.p${i}`] = randn([i % 3 === 0 ? 64 : 16], { device: 'ts' });
  await saveSafetensors(file, dict);
  console.log(`${COUNT} tensors of 16 or 64 float32 values; median of ${RUNS} loads`);
  for (const device of ['ts', 'cpu']) {
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const { tensors } = await loadSafetensors(file, { device });
      times.push(performance.now() - t0);
      for (const t of Object.values(tensors)) t.dispose();
    }
    console.log(`nodegrad loadSafetensors (device '${device}'): ${median(times).toFixed(0)} ms`);
  }
  if (existsSync(python)) {
    const script = `import time, safetensors, torch\nfrom safetensors.torch import load_file\ntorch.set_num_threads(1)\nts=[]\n` +
      `for _ in range(${RUNS}):\n  t=time.perf_counter(); load_file(${JSON.stringify(file)}); ts.append(time.perf_counter()-t)\n` +
      `print(f"safetensors {safetensors.__version__} load_file into torch {torch.__version__}: {sorted(ts)[${Math.floor(RUNS / 2)}]*1000:.0f} ms")`;
    try {
      console.log(execFileSync(python, ['-c', script], { encoding: 'utf8' }).trim());
    } catch (e) {
      console.log(`safetensors (Python) not measured: ${(e as Error).message.split('\n')[0]}`);
    }
  } else console.log(`safetensors (Python) not measured: no ${python} (bash bench/peers.sh installs it)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
