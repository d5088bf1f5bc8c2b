/**
 * BatchNorm2d's batch count: kept on the host and in num_batches_tracked (advanced on the device),
 * so training forwards read nothing back, even with momentum null (the cumulative average needs
 * the count); a write to the buffer from outside is noticed and read once. The running mean with
 * momentum null is checked against the average of the batch means, by hand.
 */
import { describe, expect, it } from 'vitest';
import { getBackend, noGrad, tensor, type Backend } from '@nodegrad/autograd';
import { describeBackends } from '@nodegrad/autograd/testing';
import { BatchNorm2d } from '@nodegrad/nn';

/** Runs fn counting the device's reads (readSync, read). */
function reads(device: string, fn: () => void): number {
  const b = getBackend(device) as { -readonly [K in keyof Backend]: Backend[K] };
  const [readSync, read] = [b.readSync, b.read];
  let n = 0;
  b.readSync = (x) => { n++; return readSync.call(b, x); };
  b.read = (x) => { n++; return read.call(b, x); };
  try { fn(); } finally { [b.readSync, b.read] = [readSync, read]; }
  return n;
}

describeBackends(describe, 'BatchNorm2d counts batches on the host', (device) => {
  /** Batch k's values: channel mean 2k + 1 (4 values per channel). */
  const batch = (k: number) => tensor([0, 2, 4, 2].map((v) => v + 2 * k - 1), { device }).reshape([4, 1, 1, 1]);
  const runningMean = (bn: BatchNorm2d) => bn.running_mean!.toTypedArray()[0]!;

  it('training forwards with momentum null read nothing back; the buffer follows on the device', () => {
    const bn = new BatchNorm2d(1, { momentum: null, device });
    expect(reads(device, () => { for (let k = 0; k < 3; k++) bn.call(batch(k)); })).toBe(0);
    expect(bn.num_batches_tracked!.item()).toBe(3);
    expect(runningMean(bn)).toBeCloseTo((1 + 3 + 5) / 3, 5);
  });

  it('after to(), loadStateDict, zero_() or a new tensor, the count is the buffer\'s', () => {
    const bn = new BatchNorm2d(1, { momentum: null, device });
    bn.call(batch(0));
    // A move copies the count: still no read.
    bn.to(device);
    expect(reads(device, () => bn.call(batch(1)))).toBe(0);
    expect(runningMean(bn)).toBeCloseTo((1 + 3) / 2, 5);
    // Loaded: 9 batches seen, running mean 10; the next batch (mean 5) weighs 1/10.
    bn.loadStateDict({ ...bn.stateDict(), running_mean: tensor([10], { device }),
      num_batches_tracked: tensor(9, { dtype: 'int64', device }) });
    expect(reads(device, () => bn.call(batch(2)))).toBe(1);
    expect(runningMean(bn)).toBeCloseTo(0.9 * 10 + 0.1 * 5, 5);
    expect(bn.num_batches_tracked!.item()).toBe(10);
    // Reset: the next batch is the first again.
    bn.resetRunningStats();
    bn.call(batch(3));
    expect(runningMean(bn)).toBeCloseTo(7, 5);
    noGrad(() => bn.num_batches_tracked!.zero_());
    bn.call(batch(0));
    expect(runningMean(bn)).toBeCloseTo(1, 5);
    bn.num_batches_tracked = tensor(3, { dtype: 'int64', device });
    bn.call(batch(1));
    expect(runningMean(bn)).toBeCloseTo(0.75 * 1 + 0.25 * 3, 5);
    expect(bn.num_batches_tracked!.item()).toBe(4);
  });
});
