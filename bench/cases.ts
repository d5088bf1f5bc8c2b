/**
 * The benchmark cases of issue 4 §5, as data shared by the orchestrator and the nodegrad worker;
 * the PyTorch worker receives the same objects over its pipe, so both sides build one spec.
 */

export type Arch = 'resnet18' | 'resnet50';

export interface CaseSpec {
  /** Key in results and on the command line's `--cases` (C expands to C18 and C50). */
  id: string;
  /** The `--cases` group it belongs to (A, B, C). */
  group: 'A' | 'B' | 'C';
  title: string;
  arch: Arch;
  /** 3x3 stride-1 conv1 and no max-pool (torchvision's resnet18 with conv1/maxpool replaced). */
  smallImageStem: boolean;
  numClasses: number;
  batch: number;
  /** Square input side; inputs are batch x 3 x size x size. */
  size: number;
  /** 'train': forward + cross-entropy + backward + SGD(momentum 0.9) step; 'infer': no grad (nodegrad: fuseForInference). */
  mode: 'train' | 'infer';
  /** nodegrad/PyTorch throughput the issue asks for. */
  target: number;
}

/** How many iterations to run: untimed warm-up, then `repeats` timed blocks of `iters` each, per side. */
export interface Schedule {
  warmup: number;
  repeats: number;
  iters: number;
}

export const CASES: readonly CaseSpec[] = [
  {
    id: 'A', group: 'A', title: 'ResNet-18, small-image stem, training step', arch: 'resnet18',
    smallImageStem: true, numClasses: 10, batch: 32, size: 32, mode: 'train', target: 1.25,
  },
  {
    id: 'B', group: 'B', title: 'ResNet-50, training step', arch: 'resnet50',
    smallImageStem: false, numClasses: 1000, batch: 8, size: 224, mode: 'train', target: 1.5,
  },
  {
    id: 'C18', group: 'C', title: 'ResNet-18, inference', arch: 'resnet18',
    smallImageStem: false, numClasses: 1000, batch: 8, size: 224, mode: 'infer', target: 1.5,
  },
  {
    id: 'C50', group: 'C', title: 'ResNet-50, inference', arch: 'resnet50',
    smallImageStem: false, numClasses: 1000, batch: 8, size: 224, mode: 'infer', target: 1.5,
  },
];

/**
 * Iterations per case: a timed block lasts about half a second or more on this class of machine
 * (PyTorch on 2 threads: A ~0.7 s, B ~2 s, C18 ~0.2 s, C50 ~0.6 s per iteration), so timer
 * resolution and per-call overhead do not matter, while the two sides still alternate often.
 */
export function scheduleFor(c: CaseSpec, quick: boolean): Schedule {
  const iters = c.id === 'C18' ? 3 : c.id === 'C50' ? 2 : 1;
  if (quick) return { warmup: 1, repeats: 3, iters: Math.max(1, iters - 1) };
  // Two warm-up iterations: the first creates oneDNN primitives and buffers, the second fills caches.
  return { warmup: 2, repeats: c.id === 'B' ? 5 : 7, iters };
}
