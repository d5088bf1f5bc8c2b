import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { axisFor, niceStep, plotPng, readPngInfo, TRAIN_COLOR, VAL_COLOR, type EpochMetrics, type Rgb } from '../src/report/index.js';
import { sharpDecode } from './report_helpers.js';

const metrics: EpochMetrics[] = [
  { epoch: 1, train_loss: 1.9, train_acc: 0.42, val_loss: 1.2, val_acc: 0.61 },
  { epoch: 2, train_loss: 0.8, train_acc: 0.74, val_loss: 0.6, val_acc: 0.83 },
  { epoch: 3, train_loss: 0.3, train_acc: 0.91, val_loss: 0.35, val_acc: 0.9 },
];

/** Pixels exactly of colour c, as [x, y] pairs. */
function pixelsOf(rgba: Uint8Array, width: number, c: Rgb): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i] === c[0] && rgba[i + 1] === c[1] && rgba[i + 2] === c[2]) out.push([(i / 4) % width, Math.floor(i / 4 / width)]);
  }
  return out;
}

/** Mean y of the pixels in the leftmost and the rightmost 10% of a set's x span. */
function endsY(pts: [number, number][]): { left: number; right: number } {
  const xs = pts.map((p) => p[0]);
  const lo = Math.min(...xs), hi = Math.max(...xs), band = (hi - lo) / 10;
  const meanY = (sel: [number, number][]) => sel.reduce((s, p) => s + p[1], 0) / sel.length;
  return { left: meanY(pts.filter((p) => p[0] <= lo + band)), right: meanY(pts.filter((p) => p[0] >= hi - band)) };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'ng-plot-'));

describe('plotPng', () => {
  it('writes a PNG that sharp decodes, with both curves in their panels going the right way', async () => {
    const file = join(tmp(), 'curves.png');
    await plotPng(metrics, file);
    const info = readPngInfo(readFileSync(file));
    expect(info).toMatchObject({ width: 1200, height: 500, chunks: ['IHDR', 'IDAT', 'IEND'] });
    const img = await sharpDecode(file);
    expect(img).toMatchObject({ width: 1200, height: 500, channels: 4 });
    for (const color of [TRAIN_COLOR, VAL_COLOR]) {
      const pts = pixelsOf(img.rgba, img.width, color);
      const lossPanel = pts.filter(([x]) => x < 600), accPanel = pts.filter(([x]) => x >= 600);
      // Curves 3 px wide over hundreds of pixels, plus markers and a legend sample in each panel.
      expect(lossPanel.length).toBeGreaterThan(500);
      expect(accPanel.length).toBeGreaterThan(500);
      // Loss falls from epoch 1 to 3, so its pixels sit lower (larger y) at the right end;
      // accuracy rises, so higher. The legends sit on the right, in the corners the curves leave free.
      const loss = endsY(lossPanel.filter(([, y]) => y > 150)), acc = endsY(accPanel.filter(([, y]) => y < 380));
      expect(loss.right).toBeGreaterThan(loss.left + 100);
      expect(acc.right).toBeLessThan(acc.left - 100);
    }
  });

  it('draws a one-epoch run as markers and replaces the file atomically', async () => {
    const dir = tmp();
    const file = join(dir, 'curves.png');
    writeFileSync(file, 'an older plot');
    await plotPng(metrics.slice(0, 1), file, { width: 640, height: 300, title: 'one epoch' });
    expect(readPngInfo(readFileSync(file))).toMatchObject({ width: 640, height: 300 });
    expect(readdirSync(dir)).toEqual(['curves.png']);
  });

  it('refuses empty metrics and names the folder it cannot write to', async () => {
    await expect(plotPng([], join(tmp(), 'x.png'))).rejects.toThrow(/plotPng: metrics is empty/);
    await expect(plotPng(metrics, join(tmp(), 'missing', 'x.png'))).rejects.toThrow(/plotPng: cannot write .*missing/);
  });
});

describe('axes', () => {
  it('picks 1-2-5 steps and whole ticks around the data', () => {
    expect(niceStep(10, 5)).toBe(2);
    expect(niceStep(1.92, 5)).toBeCloseTo(0.5, 12);
    expect(niceStep(0.07, 5)).toBeCloseTo(0.01, 12);
    expect(axisFor([0.13, 2.05], 5)).toEqual({ lo: 0, hi: 2.5, ticks: [0, 0.5, 1, 1.5, 2, 2.5], decimals: 1 });
    expect(axisFor([1, 2, 3], 8, { integer: true })).toEqual({ lo: 1, hi: 3, ticks: [1, 2, 3], decimals: 0 });
    // One epoch: a span around it, integer ticks only.
    expect(axisFor([1], 8, { integer: true })).toEqual({ lo: 0, hi: 2, ticks: [0, 1, 2], decimals: 0 });
    expect(axisFor([42, 97], 6, { clamp: [0, 100] }).hi).toBe(100);
  });
});
