/**
 * The training-curves plot: two panels (loss; accuracy), train and validation curves, a legend,
 * ticks with labels and a title, rasterised here and written as a PNG atomically, so a viewer
 * that reloads the file each epoch never reads half of it.
 */
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Canvas, type Rgb } from './raster.js';
import { encodePng } from './png.js';

/** One epoch's numbers, as metrics.jsonl holds them. Accuracies are fractions in [0, 1]. */
export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  train_acc: number;
  val_loss: number;
  val_acc: number;
}

export interface PlotOptions {
  /** The title across the top; default "nodegrad training". */
  title?: string;
  width?: number;
  height?: number;
}

/** matplotlib's first two "tab10" colours, so the plot reads like the ones people know. */
export const TRAIN_COLOR: Rgb = [31, 119, 180];
export const VAL_COLOR: Rgb = [255, 127, 14];
const AXIS: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];
const TEXT: Rgb = [20, 20, 20];

/** A step of 1, 2 or 5 × 10^k near span/target, the usual "nice numbers" for ticks. */
export function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

export interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
  decimals: number;
}

/** An axis covering the values, widened to whole ticks; a single value gets a span around it. */
export function axisFor(values: number[], target = 5, opts: { integer?: boolean; clamp?: [number, number] } = {}): Axis {
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (hi - lo < 1e-12) {
    const pad = opts.integer ? 1 : Math.abs(lo) > 1e-12 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  let step = niceStep(hi - lo, target);
  if (opts.integer) step = Math.max(1, Math.round(step));
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  if (opts.clamp) {
    lo = Math.max(lo, opts.clamp[0]);
    hi = Math.min(hi, opts.clamp[1]);
  }
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo, hi, ticks, decimals: Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) };
}

interface Series {
  label: string;
  color: Rgb;
  points: [number, number][];
}

interface Rect { x: number; y: number; w: number; h: number }

const S = 2; // font scale for labels
const PAD = 10;

function drawPanel(
  cv: Canvas, box: Rect, title: string, xAxis: Axis, yAxis: Axis, series: Series[], legendAt: 'top' | 'bottom',
): void {
  const th = Canvas.textHeight(S);
  cv.text(title, box.x + box.w / 2, box.y, TEXT, S, 'center');
  const yLabelW = Math.max(...yAxis.ticks.map((t) => Canvas.textWidth(t.toFixed(yAxis.decimals), S)));
  const area: Rect = { x: box.x + yLabelW + 12, y: box.y + th + 14, w: 0, h: 0 };
  area.w = box.x + box.w - area.x - 8;
  area.h = box.y + box.h - area.y - 2 * th - 22;
  // Data sit PAD pixels inside the frame, so markers at the axis limits are not cut by it.
  const px = (v: number) => area.x + PAD + ((v - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (area.w - 2 * PAD);
  const py = (v: number) => area.y + area.h - PAD - ((v - yAxis.lo) / (yAxis.hi - yAxis.lo)) * (area.h - 2 * PAD);

  for (const t of yAxis.ticks) {
    const y = Math.round(py(t));
    cv.fillRect(area.x, y, area.w, 1, GRID);
    cv.fillRect(area.x - 5, y, 5, 1, AXIS);
    cv.text(t.toFixed(yAxis.decimals), area.x - 8, y - th / 2, TEXT, S, 'right');
  }
  for (const t of xAxis.ticks) {
    const x = Math.round(px(t));
    cv.fillRect(x, area.y, 1, area.h, GRID);
    cv.fillRect(x, area.y + area.h, 1, 5, AXIS);
    cv.text(t.toFixed(xAxis.decimals), x, area.y + area.h + 8, TEXT, S, 'center');
  }
  cv.text('epoch', area.x + area.w / 2, area.y + area.h + th + 14, TEXT, S, 'center');
  cv.fillRect(area.x, area.y, 2, area.h + 1, AXIS);
  cv.fillRect(area.x, area.y + area.h, area.w, 2, AXIS);

  for (const s of series) {
    const pts = s.points.map(([x, y]) => [px(x), py(y)] as const);
    for (let i = 1; i < pts.length; i++) cv.line(pts[i - 1]![0], pts[i - 1]![1], pts[i]![0], pts[i]![1], 3, s.color);
    // Markers make a one-epoch run (a single point) and the epochs of a long one visible.
    for (const [x, y] of pts) cv.disc(x, y, 4, s.color);
  }

  // Legend: on the right, in the corner the curves usually leave free (loss falls, accuracy
  // rises), on a white box so curves underneath do not show through.
  const rowH = th + 8;
  const legendW = 36 + Math.max(...series.map((s) => Canvas.textWidth(s.label, S))) + 16;
  const legendH = series.length * rowH + 8;
  const lx = area.x + area.w - legendW - 8;
  const ly = legendAt === 'top' ? area.y + 8 : area.y + area.h - legendH - 10;
  cv.fillRect(lx, ly, legendW, legendH, [255, 255, 255]);
  cv.fillRect(lx, ly, legendW, 1, GRID);
  cv.fillRect(lx, ly + legendH, legendW, 1, GRID);
  series.forEach((s, i) => {
    const cy = ly + 8 + i * rowH + th / 2;
    cv.line(lx + 8, cy, lx + 32, cy, 3, s.color);
    cv.text(s.label, lx + 40, cy - th / 2, TEXT, S);
  });
}

/** Rasterises the two panels into a Canvas (exported for tests that look at pixels). */
export function renderPlot(metrics: readonly EpochMetrics[], opts: PlotOptions = {}): Canvas {
  if (metrics.length === 0) throw new Error('plotPng: metrics is empty; there is nothing to plot');
  const width = opts.width ?? 1200, height = opts.height ?? 500;
  const cv = new Canvas(width, height);
  const title = opts.title ?? 'nodegrad training';
  cv.text(title, width / 2, 12, TEXT, 3, 'center');
  const epochs = metrics.map((m) => m.epoch);
  const xAxis = axisFor(epochs, 8, { integer: true });
  const pts = (f: (m: EpochMetrics) => number, scale = 1): [number, number][] =>
    metrics.filter((m) => Number.isFinite(f(m))).map((m) => [m.epoch, f(m) * scale]);
  const lossSeries: Series[] = [
    { label: 'train', color: TRAIN_COLOR, points: pts((m) => m.train_loss) },
    { label: 'validation', color: VAL_COLOR, points: pts((m) => m.val_loss) },
  ];
  const accSeries: Series[] = [
    { label: 'train', color: TRAIN_COLOR, points: pts((m) => m.train_acc, 100) },
    { label: 'validation', color: VAL_COLOR, points: pts((m) => m.val_acc, 100) },
  ];
  const lossAxis = axisFor(lossSeries.flatMap((s) => s.points.map((p) => p[1])), 6);
  const accAxis = axisFor(accSeries.flatMap((s) => s.points.map((p) => p[1])), 6, { clamp: [0, 100] });
  const top = 12 + Canvas.textHeight(3) + 18;
  const half = Math.floor(width / 2);
  drawPanel(cv, { x: 10, y: top, w: half - 20, h: height - top - 10 }, 'loss', xAxis, lossAxis, lossSeries, 'top');
  drawPanel(cv, { x: half + 10, y: top, w: half - 20, h: height - top - 10 }, 'accuracy (%)', xAxis, accAxis, accSeries, 'bottom');
  return cv;
}

/** Writes the loss/accuracy plot of `metrics` to `file` as a PNG, atomically (temp file + rename). */
export async function plotPng(metrics: readonly EpochMetrics[], file: string, opts: PlotOptions = {}): Promise<void> {
  const cv = renderPlot(metrics, opts);
  const png = encodePng(cv.width, cv.height, cv.rgba);
  // Named as the run's other temp files, so a run resumed after a kill here removes it.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, png);
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw new Error(`plotPng: cannot write ${file}: ${(e as Error).message}`);
  }
}
