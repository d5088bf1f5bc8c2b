/** Reporting for the CLI: the progress display and the PNG plot of the training curves. */
export {
  Progress, Cadence, formatEta, renderBar, formatProgressLine, formatEpochSummary,
  type ProgressOptions, type ProgressState, type ProgressStream, type EpochSummary,
} from './progress.js';
export { plotPng, renderPlot, axisFor, niceStep, TRAIN_COLOR, VAL_COLOR, type EpochMetrics, type PlotOptions } from './plot.js';
export { encodePng, readPngInfo, decodePngRgba, crc32, type PngInfo } from './png.js';
export { Canvas, type Rgb } from './raster.js';
