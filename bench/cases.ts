/**
 * The benchmark cases of issue 4 §5, as data shared by the orchestrator and the nodegrad worker;
 * the PyTorch worker receives the same objects over its pipe, so both sides build one spec.
 * Each float32 case (A, B, C18, C50) has a bfloat16 mixed-precision twin (A-bf16, ...), group BF16.
 */

export type Arch = 'resnet18' | 'resnet50';
export type Precision = 'float32' | 'bfloat16';

export interface CaseSpec {
  /** Key in results and on the command line's `--cases` (C expands to C18 and C50, BF16 to the four -bf16 cases). */
  id: string;
  /** The `--cases` group it belongs to (A, B, C, BF16). */
  group: 'A' | 'B' | 'C' | 'BF16';
  title: string;
  arch: Arch;
  /** 3x3 stride-1 conv1 and no max-pool (torchvision's resnet18 with conv1/maxpool replaced). */
  smallImageStem: boolean;
  numClasses: number;
  batch: number;
  /** Square input side; inputs are batch x 3 x size x size. */
  size: number;
  /**
   * 'train': forward + cross-entropy + backward + SGD(momentum 0.9) step (nodegrad: fuseForTraining's
   * twin, batch norm with its ReLU and residual add in one pass); 'infer': no grad (nodegrad: fuseForInference).
   */
  mode: 'train' | 'infer';
  /**
   * 'float32': everything in float32 (nodegrad NCHW; the peers of peersFor). 'bfloat16': mixed precision. Training
   * under bfloat16 autocast (float32 parameters and optimizer; forward + loss in autocast, backward
   * outside); inference with nodegrad's fused model and input cast once to bfloat16, PyTorch under
   * no_grad + autocast; PyTorch's model and input in channels_last, its fastest CPU bf16 layout.
   */
  precision: Precision;
  /** nodegrad's throughput over the fastest peer's that the issues ask for (13 for float32, 12 for bfloat16). */
  target: number;
}

/** How many iterations to run: untimed warm-up, then `repeats` timed blocks of `iters` each, per side. */
export interface Schedule {
  warmup: number;
  repeats: number;
  iters: number;
}

const FLOAT32: readonly CaseSpec[] = [
  {
    id: 'A', group: 'A', title: 'ResNet-18, small-image stem, training step', arch: 'resnet18',
    smallImageStem: true, numClasses: 10, batch: 32, size: 32, mode: 'train', precision: 'float32', target: 1.3,
  },
  {
    id: 'B', group: 'B', title: 'ResNet-50, training step', arch: 'resnet50',
    smallImageStem: false, numClasses: 1000, batch: 8, size: 224, mode: 'train', precision: 'float32', target: 1.3,
  },
  {
    id: 'C18', group: 'C', title: 'ResNet-18, inference', arch: 'resnet18',
    smallImageStem: false, numClasses: 1000, batch: 8, size: 224, mode: 'infer', precision: 'float32', target: 1.0,
  },
  {
    id: 'C50', group: 'C', title: 'ResNet-50, inference', arch: 'resnet50',
    smallImageStem: false, numClasses: 1000, batch: 8, size: 224, mode: 'infer', precision: 'float32', target: 1.0,
  },
];

/** Suffix of the bfloat16 twins' ids. */
const BF16_SUFFIX = '-bf16';

/** nodegrad bf16 / PyTorch bf16-autocast throughput asked for, training and inference alike. */
export const BF16_TARGET = 1.3;

export const CASES: readonly CaseSpec[] = [
  ...FLOAT32,
  ...FLOAT32.map((c): CaseSpec => ({
    ...c, id: `${c.id}${BF16_SUFFIX}`, group: 'BF16', title: `${c.title}, bfloat16 mixed precision`,
    precision: 'bfloat16', target: BF16_TARGET,
  })),
];

/**
 * The peers a case is measured against, each a worker process of its own: PyTorch with NCHW and
 * with channels-last model and input (its best eager CPU layout), and for float32 inference ONNX
 * Runtime on the torchvision model exported to ONNX. bfloat16 cases: PyTorch channels-last.
 */
export type PeerId = 'torch' | 'torch-cl' | 'ort';

export const PEER_LABELS: Record<PeerId, string> = {
  torch: 'PyTorch NCHW', 'torch-cl': 'PyTorch channels-last', ort: 'ONNX Runtime',
};

export function peersFor(c: CaseSpec): PeerId[] {
  if (c.precision === 'bfloat16') return ['torch-cl'];
  return c.mode === 'infer' ? ['torch', 'torch-cl', 'ort'] : ['torch', 'torch-cl'];
}

/** The id of a case's float32 twin (itself for a float32 case). */
export function float32Id(c: CaseSpec): string {
  return c.precision === 'float32' ? c.id : c.id.slice(0, -BF16_SUFFIX.length);
}

/**
 * Iterations per case: a timed block lasts about half a second or more on this class of machine
 * (PyTorch on 2 threads: A ~0.7 s, B ~2 s, C18 ~0.2 s, C50 ~0.6 s per iteration), so timer
 * resolution and per-call overhead do not matter, while the two sides still alternate often.
 * A bfloat16 case runs its float32 twin's schedule.
 */
export function scheduleFor(c: CaseSpec, quick: boolean): Schedule {
  const base = float32Id(c);
  const iters = base === 'C18' ? 3 : base === 'C50' ? 2 : 1;
  if (quick) return { warmup: 1, repeats: 3, iters: Math.max(1, iters - 1) };
  // Two warm-up iterations: the first creates oneDNN primitives and buffers, the second fills caches.
  return { warmup: 2, repeats: base === 'B' ? 5 : 7, iters };
}
