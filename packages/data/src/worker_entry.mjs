// The DataLoader's worker thread: plain JavaScript so Node runs it unchanged from the package
// sources (under vitest/tsx) and from the compiled dist. It rebuilds the dataset from its
// workerSpec, then answers batch requests one at a time, transferring the arrays' buffers.
import { parentPort, workerData } from 'node:worker_threads';

// Under tsx/vitest the modules are TypeScript sources, which plain Node cannot import: tsx's API
// loads them (and their own .ts imports). Compiled .js modules are imported directly.
async function load(url) {
  if (!url.endsWith('.ts')) return import(url);
  const { tsImport } = await import('tsx/esm/api');
  return tsImport(url, import.meta.url);
}

const { spec, collateModule } = workerData;
const ready = (async () => {
  const [mod, { collate }] = await Promise.all([load(spec.module), load(collateModule)]);
  const factory = mod[spec.factory];
  if (typeof factory !== 'function') throw new Error(`DataLoader worker: ${spec.module} exports no function '${spec.factory}'`);
  return { ds: await factory(...spec.args), collate };
})();

ready.catch(() => {}); // reported with the first request
let queue = ready;
parentPort.on('message', (msg) => {
  queue = queue.then(async ({ ds, collate }) => {
    try {
      const b = await collate(ds, msg.indices, msg.seed, msg.epoch);
      parentPort.postMessage({ id: msg.id, x: b.x, y: b.y, shape: b.shape }, [b.x.buffer, b.y.buffer]);
    } catch (e) {
      parentPort.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e), dataError: e instanceof Error && e.name === 'DataError' });
    }
    return { ds, collate };
  }, (e) => {
    parentPort.postMessage({ id: msg.id, error: `DataLoader worker: cannot rebuild the dataset: ${e instanceof Error ? e.message : String(e)}` });
    throw e;
  });
  queue.catch(() => {});
});
