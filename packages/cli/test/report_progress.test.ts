import { describe, expect, it } from 'vitest';
import {
  Cadence, Progress, formatEpochSummary, formatEta, formatProgressLine, renderBar, type ProgressState,
} from '../src/report/index.js';

/** A stream that records what is written, and a clock the test moves. */
function recorder(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, ...(columns ? { columns } : {}), write: (s: string) => writes.push(s) } };
}

describe('formatting', () => {
  it('formats ETAs as m:ss and h:mm:ss', () => {
    expect(formatEta(0)).toBe('0:00');
    expect(formatEta(97.28)).toBe('1:37');
    expect(formatEta(59.6)).toBe('1:00');
    expect(formatEta(725)).toBe('12:05');
    expect(formatEta(3723)).toBe('1:02:03');
    expect(formatEta(NaN)).toBe('--:--');
    expect(formatEta(Infinity)).toBe('--:--');
  });

  it('fills the bar in proportion, clamped to its width', () => {
    expect(renderBar(0.35, 20)).toBe('#'.repeat(7) + '-'.repeat(13));
    expect(renderBar(0, 12)).toBe('-'.repeat(12));
    expect(renderBar(1, 12)).toBe('#'.repeat(12));
    expect(renderBar(1.7, 5)).toBe('#####');
    expect(renderBar(NaN, 4)).toBe('----');
  });

  it('prints the progress line with rate and ETA from the elapsed time', () => {
    // 412 of 8000 at 78 img/s: the rest takes 7588 / 78 = 97.3 s.
    const s: ProgressState = { epoch: 2, epochs: 3, done: 412, total: 8000, loss: 0.21344, acc: 0.9314, elapsed: 412 / 78 };
    expect(formatProgressLine(s)).toBe('epoch 2/3 [#-------------------] 412/8000 loss 0.2134 acc 93.1% 78 img/s ETA 1:37');
    // On a terminal the bar takes what is left of the width, within [10, 30] cells, and never wraps.
    const wide = formatProgressLine({ ...s, done: 4000, elapsed: 50 }, 200);
    expect(wide).toContain(`[${'#'.repeat(15)}${'-'.repeat(15)}]`);
    const narrow = formatProgressLine(s, 60);
    expect(narrow.length).toBe(59);
    expect(narrow.startsWith('epoch 2/3 [----------] 412/8000')).toBe(true);
    expect(formatProgressLine({ ...s, done: 0, elapsed: 0 })).toContain('- img/s ETA --:--');
    // Resumed at 4000: 1000 more samples in 10 s is 100 img/s, and 3000 are left.
    expect(formatProgressLine({ ...s, done: 5000, startDone: 4000, elapsed: 10 })).toMatch(/ 100 img\/s ETA 0:30$/);
  });

  it('summarises an epoch with validation numbers', () => {
    expect(formatEpochSummary({
      epoch: 3, epochs: 10, trainLoss: 0.1234, trainAcc: 0.9612, valLoss: 0.0987, valAcc: 0.9735, seconds: 102, best: true,
    })).toBe('epoch 3/10 done in 1:42: train loss 0.1234 acc 96.1% | val loss 0.0987 acc 97.4% (best)');
  });
});

describe('Cadence', () => {
  it('fires at each 10% mark and after a quiet spell, not in between', () => {
    const c = new Cadence(0.1, 30, 0);
    expect(c.due(0.05, 1)).toBe(false);
    expect(c.due(0.1, 2)).toBe(true);
    expect(c.due(0.15, 3)).toBe(false);
    // A jump over several marks prints once.
    expect(c.due(0.45, 4)).toBe(true);
    expect(c.due(0.49, 5)).toBe(false);
    // 30 s without a mark: a line anyway, and the quiet timer restarts.
    expect(c.due(0.495, 34)).toBe(true);
    expect(c.due(0.497, 40)).toBe(false);
    expect(c.due(1, 41)).toBe(true);
  });

  it('starts from the next mark after a resumed position', () => {
    const c = new Cadence(0.1, 30, 0, 0.43);
    expect(c.due(0.45, 1)).toBe(false);
    expect(c.due(0.5, 2)).toBe(true);
  });
});

describe('Progress', () => {
  it('writes plain lines at a 10% cadence when not a terminal', () => {
    const { writes, stream } = recorder(false);
    let t = 100;
    const p = new Progress({ epochs: 2, stream, now: () => t });
    p.startEpoch(1, 1000);
    for (let done = 50; done <= 1000; done += 50) {
      t += 0.5;
      p.update(done, 1 / done, done / 1000);
    }
    expect(writes).toHaveLength(10);
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r'))).toBe(true);
    expect(writes[0]).toBe('epoch 1/2 [##------------------] 100/1000 loss 0.0100 acc 10.0% 100 img/s ETA 0:09\n');
    expect(writes[9]).toMatch(/^epoch 1\/2 \[#{20}\] 1000\/1000 .* ETA 0:00\n$/);
    p.epochEnd({ epoch: 1, trainLoss: 0.5, trainAcc: 0.8, valLoss: 0.4, valAcc: 0.85 });
    expect(writes[10]).toBe('epoch 1/2 done in 0:10: train loss 0.5000 acc 80.0% | val loss 0.4000 acc 85.0%\n');
  });

  it('redraws one line in place on a terminal, at most every 0.1 s, and ends it before the summary', () => {
    const { writes, stream } = recorder(true, 100);
    let t = 0;
    const p = new Progress({ epochs: 1, stream, now: () => t });
    p.startEpoch(1, 100);
    for (let done = 10; done <= 100; done += 10) {
      t += 0.06;
      p.update(done, 0.5, 0.5);
    }
    // Draws at 0.06 s (the first), then each time 0.1 s have passed, and always at the end.
    expect(writes.map((w) => w.match(/ (\d+)\/100 /)![1])).toEqual(['10', '30', '50', '70', '90', '100']);
    expect(writes.every((w) => w.startsWith('\r') && w.endsWith('\x1b[K') && !w.includes('\n'))).toBe(true);
    expect(writes.every((w) => w.length - '\r\x1b[K'.length <= 99)).toBe(true);
    p.epochEnd({ epoch: 1, trainLoss: 0.5, trainAcc: 0.5, valLoss: 0.6, valAcc: 0.4, best: true });
    expect(writes.slice(-2)).toEqual(['\n', 'epoch 1/1 done in 0:01: train loss 0.5000 acc 50.0% | val loss 0.6000 acc 40.0% (best)\n']);
  });
});
