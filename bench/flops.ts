/**
 * Multiply-accumulates of a ResNet's convolutions and its fc layer, counted from the architecture
 * (torchvision's layout: stride on the 3x3, "V1.5"), per image. Batch norm, ReLU, pooling and the
 * residual adds are left out: they are memory-bound and a few percent of the arithmetic.
 * Both workers also count the same MACs with forward hooks on the models they built; the
 * orchestrator warns when either differs from this count.
 */
import type { Arch, CaseSpec } from './cases.js';

const out = (size: number, k: number, stride: number, pad: number) => Math.floor((size + 2 * pad - k) / stride) + 1;

/** Forward MACs per image. */
export function resnetMacs(arch: Arch, numClasses: number, size: number, smallImageStem: boolean): number {
  const bottleneck = arch === 'resnet50';
  const depths = bottleneck ? [3, 4, 6, 3] : [2, 2, 2, 2];
  const expansion = bottleneck ? 4 : 1;
  let macs = 0;
  let h: number;
  let inplanes = 64;
  if (smallImageStem) {
    h = size;
    macs += h * h * 64 * 3 * 3 * 3;
  } else {
    h = out(size, 7, 2, 3);
    macs += h * h * 64 * 3 * 7 * 7;
    h = out(h, 3, 2, 1); // max-pool
  }
  [64, 128, 256, 512].forEach((planes, stage) => {
    for (let b = 0; b < depths[stage]!; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const ho = out(h, 3, stride, 1);
      if (bottleneck) {
        macs += h * h * planes * inplanes; // conv1 1x1
        macs += ho * ho * planes * planes * 9; // conv2 3x3, strided
        macs += ho * ho * planes * expansion * planes; // conv3 1x1
      } else {
        macs += ho * ho * planes * inplanes * 9;
        macs += ho * ho * planes * planes * 9;
      }
      if (stride !== 1 || inplanes !== planes * expansion) macs += ho * ho * planes * expansion * inplanes;
      inplanes = planes * expansion;
      h = ho;
    }
  });
  return macs + inplanes * numClasses;
}

/**
 * FLOPs of one iteration of a case: forward is 2 FLOPs per MAC; a training step counts ~3x the
 * forward (backward computes the input gradient and the weight gradient, each as costly as the forward).
 */
export function caseFlops(c: CaseSpec): number {
  const forward = 2 * c.batch * resnetMacs(c.arch, c.numClasses, c.size, c.smallImageStem);
  return c.mode === 'train' ? 3 * forward : forward;
}
