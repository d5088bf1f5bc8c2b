/**
 * A training step moves data between host and device only for the batch fed in and the values
 * read back. Each backend is wrapped in one that counts uploads (fromArray), reads (readSync,
 * read) and kernel calls, and three steps of a small ResNet (batch norm, SGD with momentum,
 * cross entropy, dropout off and on) run on it. The kernel count per step is the launch budget a
 * GPU backend pays; the test prints it.
 */
import { describe, expect, it } from 'vitest';
import {
  backends, crossEntropy, dropout, fromTypedArray, getBackend, manualSeed, registerBackend, tidy,
  type Backend, type Kernels,
} from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { SGD, resnet18 } from '@nodegrad/nn';

interface Counts { uploads: number; reads: number; kernels: Map<string, number> }

/** `inner` under the name `${inner.name}-counted`, counting what crosses and every kernel call. */
function counting(inner: Backend): { backend: Backend; counts: Counts } {
  const counts: Counts = { uploads: 0, reads: 0, kernels: new Map() };
  const kernels = Object.fromEntries(Object.entries(inner.kernels).map(([name, k]) => [name, (...args: unknown[]) => {
    counts.kernels.set(name, (counts.kernels.get(name) ?? 0) + 1);
    return (k as (...a: unknown[]) => unknown)(...args);
  }])) as unknown as Kernels;
  const backend: Backend = {
    ...inner,
    name: `${inner.name}-counted`,
    fromArray: (data, shape, dtype) => { counts.uploads++; return inner.fromArray(data, shape, dtype); },
    readSync: (x) => { counts.reads++; return inner.readSync(x); },
    read: (x) => { counts.reads++; return inner.read(x); },
    kernels,
  };
  return { backend, counts };
}

describeBackends(describe, 'a training step crosses host and device only for the batch and the loss', (device) => {
  it('three steps: two uploads (images, labels) and one read (the loss) each, dropout off and on', () => {
    const name = `${device}-counted`;
    let counts: Counts;
    if (!backends().some((b) => b.name === name)) {
      const c = counting(getBackend(device));
      registerBackend(c.backend);
      countsOf.set(name, c.counts);
    }
    counts = countsOf.get(name)!;
    for (const p of [0, 0.3]) {
      manualSeed(0);
      const model = resnet18({ numClasses: 10, smallImageStem: true, widths: [4, 8, 8, 8] }).to(name);
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const images = Float32Array.from({ length: 4 * 3 * 8 * 8 }, (_, i) => Math.sin(i));
      const labels = Float64Array.from([1, 7, 3, 0]);
      const perStep: number[] = [];
      for (let step = 0; step < 3; step++) {
        counts.uploads = 0; counts.reads = 0; counts.kernels.clear();
        const loss = tidy(() => {
          const x = fromTypedArray(images, [4, 3, 8, 8], { device: name });
          const y = fromTypedArray(labels, [4], { dtype: 'int64', device: name });
          opt.zeroGrad();
          const l = crossEntropy(dropout(model.call(x), p, true), y);
          l.backward();
          opt.step();
          return l.item();
        });
        expect(Number.isFinite(loss)).toBe(true);
        expect({ step, uploads: counts.uploads, reads: counts.reads }).toEqual({ step, uploads: 2, reads: 1 });
        perStep.push([...counts.kernels.values()].reduce((a, b) => a + b, 0));
      }
      const top = [...counts.kernels].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `${k} ${n}`).join(', ');
      console.log(`[${device}] dropout ${p}: kernel calls per step ${perStep.join(' / ')} (most: ${top})`);
      // Steps after the first launch the same kernels: nothing is built lazily per step.
      expect(perStep[2]).toBe(perStep[1]);
    }
  });
}, { needs: [['Conv2D', 'float32']] });

const countsOf = new Map<string, Counts>();
