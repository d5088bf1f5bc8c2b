/** Shared helper for datasets that can be rebuilt in a worker thread. */
import type { TransformSpec } from './transforms.js';
import type { WorkerSpec } from './types.js';

/** The spec for `factory` in `module`, refusing when the transform is a function without a spec. */
export function makeWorkerSpec(name: string, module: string, factory: string, args: unknown[], transform: TransformSpec[] | undefined): WorkerSpec {
  if (transform === undefined) {
    throw new Error(`${name}.workerSpec: its transform is a function without a spec, so a worker cannot rebuild it; ` +
      'build it from transforms.* / transforms.fromSpec, or use workers: 0');
  }
  return { module, factory, args };
}
