/** Evaluation on a data loader: loss, accuracy and the confusion matrix (inference, no gradients). */
import { noGrad, tidy, type Tensor } from '@nodegrad/autograd';
import type { DataLoader } from '@nodegrad/data';
import { CrossEntropyLoss, fuseForInference, type Module } from '@nodegrad/nn';

export interface EvalResult {
  loss: number;
  /** Fraction in [0, 1]. */
  acc: number;
  samples: number;
  /** The sums behind loss and acc, which data-parallel ranks add up. */
  lossSum: number;
  correct: number;
  /** confusion[trueClass][predictedClass] = count. */
  confusion: number[][];
}

/** Predicted classes and their agreement with `y`, as plain numbers (the tensors stay inside the caller's tidy). */
export function predictions(logits: Tensor, y: Tensor): { pred: ArrayLike<number>; truth: ArrayLike<number>; correct: number } {
  const pred = logits.argmax(1).toTypedArray() as ArrayLike<number>;
  const truth = y.toTypedArray() as ArrayLike<number>;
  let correct = 0;
  for (let i = 0; i < pred.length; i++) if (Number(pred[i]) === Number(truth[i])) correct++;
  return { pred, truth, correct };
}

/**
 * Runs `model` over every batch of `loader` as inference: through its fuseForInference copy (eval
 * mode, each conv·bn·relu one kernel), made for this call and freed after it, so `model` itself is
 * left as it was (the training loop calls this between epochs). Cross-entropy without label
 * smoothing. Only the first `count` samples count.
 */
export async function evaluate(model: Module, loader: DataLoader, numClasses: number, count = Infinity): Promise<EvalResult> {
  const fused = fuseForInference(model);
  const criterion = new CrossEntropyLoss({ reduction: 'sum' });
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let lossSum = 0;
  let correct = 0;
  let samples = 0;
  try {
    for await (const b of loader.batches()) {
      noGrad(() => tidy(() => {
        // Past `count` (a data-parallel shard's padding) samples are not counted.
        const take = Math.min(b.indices.length, count - samples);
        if (take <= 0) return;
        const part = take < b.indices.length;
        const logits = fused.call(part ? b.x.narrow(0, 0, take) : b.x) as Tensor;
        const y = part ? b.y.narrow(0, 0, take) : b.y;
        lossSum += criterion.call(logits, y).item();
        const p = predictions(logits, y);
        correct += p.correct;
        samples += p.pred.length;
        for (let i = 0; i < p.pred.length; i++) confusion[Number(p.truth[i])]![Number(p.pred[i])]!++;
      }));
      b.x.dispose();
      b.y.dispose();
    }
  } finally {
    // The copy shares no tensor with the model: its folded weights are freed now, not at GC.
    for (const t of [...fused.parameters(), ...fused.buffers()]) t.dispose();
  }
  return { loss: samples ? lossSum / samples : NaN, acc: samples ? correct / samples : NaN, samples, lossSum, correct, confusion };
}
