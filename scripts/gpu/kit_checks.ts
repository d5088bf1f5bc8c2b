/**
 * The GPU kit's checks of what the parity suites do not see: the caching allocator over 200
 * training steps (no new segments after the first steps, everything freed at the end), an
 * out-of-memory error that says how much was asked, allocated and free (and the device still
 * working after it), and cuDNN's benchmark mode caching one algorithm per shape. Writes
 * $OUT/checks.json; exits 1 when a check failed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { conv2d, crossEntropy, fromTypedArray, randn, tidy, zeros, type Tensor } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native';
import { SGD, resnet18 } from '@nodegrad/nn';

const out = process.env.OUT ?? '.';
const results: { name: string; ok: boolean; detail: unknown }[] = [];
function check(name: string, fn: () => { ok: boolean; detail: unknown }): void {
  try {
    const r = fn();
    results.push({ name, ...r });
  } catch (e) {
    results.push({ name, ok: false, detail: `threw: ${(e as Error).message}` });
  }
  const r = results[results.length - 1]!;
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${name}: ${JSON.stringify(r.detail)}`);
}

if (!cuda.isAvailable()) {
  console.log(`kit checks: cuda unavailable: ${cuda.reason()}`);
  writeFileSync(join(out, 'checks.json'), JSON.stringify({ available: false, reason: cuda.reason() }, null, 2));
  process.exit(0);
}
const device = 'cuda:0';

check('allocator: 200 training steps reuse cached blocks (no new segments after step 5)', () => {
  const model = resnet18({ numClasses: 10, smallImageStem: true }).to(device);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([32, 3, 32, 32], { device });
  const y = fromTypedArray(Float64Array.from({ length: 32 }, (_, i) => i % 10), [32], { dtype: 'int64', device });
  const step = () => tidy(() => {
    const loss = crossEntropy(model.call(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss.item();
  });
  let after5 = cuda.memoryStats();
  let loss = 0;
  for (let i = 0; i < 200; i++) {
    loss = step();
    if (i === 4) after5 = cuda.memoryStats();
  }
  const end = cuda.memoryStats();
  const newSegments = end.segmentsAllocated - after5.segmentsAllocated;
  const hitRate = (end.cacheHits - after5.cacheHits) / (end.allocations - after5.allocations);
  return { ok: newSegments === 0 && hitRate === 1 && Number.isFinite(loss), detail: { newSegments, hitRate, loss, end } };
});

check('allocator: an impossible allocation is a JS error naming asked, allocated and free bytes; the device works after it', () => {
  let message = 'no error';
  try {
    zeros([64, 1024, 1024, 1024], { device }).dispose(); // 256 GiB of float32
  } catch (e) {
    message = (e as Error).message;
  }
  const after = tidy(() => zeros([4], { device }).add(1).sum().item());
  const ok = /out of memory on cuda:0: tried to allocate 256\.00 GiB; .* allocated by nodegrad, .* reserved, .* free of/.test(message) && after === 4;
  return { ok, detail: { message, after } };
});

// What trim promises: segments with nothing allocated in them go back. (Not "reserved equals
// allocated": the first check's parameters, gradients and momentum, left to finalizers, share
// segments with the freed activations.) A 64 MiB block is a segment of its own.
check('emptyCache gives back the segments nothing is allocated in', () => {
  zeros([16, 1024, 1024], { device }).dispose();
  const before = cuda.memoryStats();
  cuda.emptyCache();
  const after = cuda.memoryStats();
  const ok = before.reserved - after.reserved >= 64 * 2 ** 20 && after.segmentsReleased > before.segmentsReleased
    && after.allocated === before.allocated;
  return { ok, detail: { before, after } };
});

check('cuDNN benchmark mode measures once per shape and reuses the choice', () => {
  cuda.setCudnnBenchmark(true);
  const n0 = cuda.cudnnAlgorithmCacheSize();
  const w = randn([32, 16, 3, 3], { device });
  const run = (h: number) => tidy(() => {
    const t0 = performance.now();
    conv2d(randn([8, 16, h, h], { device }), w, null, { padding: 1 }).sum().item();
    return performance.now() - t0;
  });
  const first = run(40), again = run(40);
  const n1 = cuda.cudnnAlgorithmCacheSize();
  run(24);
  const n2 = cuda.cudnnAlgorithmCacheSize();
  cuda.setCudnnBenchmark(false);
  return { ok: n1 === n0 + 1 && n2 === n0 + 2, detail: { n0, n1, n2, firstMs: first, againMs: again } };
});

const failed = results.filter((r) => !r.ok).length;
writeFileSync(join(out, 'checks.json'), JSON.stringify({ available: true, failed, results }, null, 2));
console.log(`kit checks: ${results.length - failed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
