/**
 * The training side of examples/worker_training.ts: runs in a worker thread, so the main
 * thread's event loop stays free. It posts its progress and, at the end, the trained weights.
 * Plain JavaScript on the built packages (`npm run build`), as a worker of a deployed server is.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { crossEntropy, manualSeed, randn, tensor, tidy } from '@nodegrad/autograd';
import '@nodegrad/native'; // the addon is context-aware: each worker loads its own instance
import { SGD, resnet18 } from '@nodegrad/nn';

const { steps } = workerData;
manualSeed(0);
const model = resnet18({ numClasses: 4, smallImageStem: true, widths: [8, 8, 16, 16] });
const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
const x = randn([8, 3, 16, 16]);
const y = tensor([0, 1, 2, 3, 0, 1, 2, 3], { dtype: 'int64' });
for (let step = 1; step <= steps; step++) {
  const loss = tidy(() => {
    opt.zeroGrad();
    const l = crossEntropy(model.call(x), y);
    l.backward();
    opt.step();
    return l.item();
  });
  parentPort.postMessage({ type: 'progress', step, loss, device: x.device });
}
// Typed arrays are copied to the main thread (or transferred, with a transfer list).
const weights = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.toTypedArray()]));
parentPort.postMessage({ type: 'done', weights });
