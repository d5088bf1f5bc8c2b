/**
 * Training feedback: on a terminal, one line redrawn in place
 *   epoch 2/3 [#######-----] 412/8000 loss 0.2134 acc 93.1% 78 img/s ETA 1:37
 * and, when stdout is a file or a pipe (CI logs, `| tee`), the same text as plain lines at a
 * steady cadence (each 10% of the epoch, or after a quiet spell), so logs stay readable.
 */

/** "1:37", "12:05", "1:02:03"; "--:--" while the rate is still unknown. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A bar of `width` cells, the done fraction as '#', the rest as '-'. */
export function renderBar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const done = Math.floor(f * width + 1e-9);
  return '#'.repeat(done) + '-'.repeat(width - done);
}

export interface ProgressState {
  epoch: number;
  epochs: number;
  /** Samples of this epoch done so far, and in all. */
  done: number;
  total: number;
  /** Running means over the epoch so far; accuracy a fraction in [0, 1]. */
  loss: number;
  acc: number;
  /** Seconds since the epoch started (or resumed). */
  elapsed: number;
  /** Samples already done when this process took the epoch up (a resumed run); 0 by default. */
  startDone?: number;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * The progress line; with `columns` (a terminal's width) the bar shrinks so the line fits, down
 * to 10 cells, and the line is cut there rather than wrapping (a wrapped line cannot be redrawn).
 */
export function formatProgressLine(s: ProgressState, columns?: number): string {
  const rate = s.elapsed > 0 ? (s.done - (s.startDone ?? 0)) / s.elapsed : NaN;
  const eta = rate > 0 ? (s.total - s.done) / rate : NaN;
  const head = `epoch ${s.epoch}/${s.epochs} `;
  const tail = ` ${s.done}/${s.total} loss ${s.loss.toFixed(4)} acc ${pct(s.acc)} ` +
    `${Number.isFinite(rate) ? Math.round(rate) : '-'} img/s ETA ${formatEta(eta)}`;
  const fixed = head.length + tail.length + 2;
  const barWidth = columns === undefined ? 20 : Math.max(10, Math.min(30, columns - 1 - fixed));
  const line = `${head}[${renderBar(s.total > 0 ? s.done / s.total : 0, barWidth)}]${tail}`;
  return columns === undefined ? line : line.slice(0, Math.max(0, columns - 1));
}

export interface EpochSummary {
  epoch: number;
  epochs: number;
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  /** Seconds the epoch took, training and validation. */
  seconds: number;
  /** Whether this epoch's validation accuracy is the best so far (its checkpoint was saved). */
  best?: boolean;
}

export function formatEpochSummary(s: EpochSummary): string {
  return `epoch ${s.epoch}/${s.epochs} done in ${formatEta(s.seconds)}: ` +
    `train loss ${s.trainLoss.toFixed(4)} acc ${pct(s.trainAcc)} | ` +
    `val loss ${s.valLoss.toFixed(4)} acc ${pct(s.valAcc)}${s.best ? ' (best)' : ''}`;
}

/**
 * When a non-terminal log gets a line: when the epoch crosses the next `everyFraction` mark, or
 * when `everySeconds` have passed since the last line (long epochs on slow backends).
 */
export class Cadence {
  private nextMark: number;
  private lastAt: number;

  constructor(private readonly everyFraction: number, private readonly everySeconds: number, start: number, startFraction = 0) {
    this.nextMark = (Math.floor(startFraction / everyFraction + 1e-9) + 1) * everyFraction;
    this.lastAt = start;
  }

  /** Whether to print now, at fraction `f` of the epoch and time `now` (seconds). */
  due(f: number, now: number): boolean {
    let hit = false;
    while (f + 1e-12 >= this.nextMark) {
      this.nextMark += this.everyFraction;
      hit = true;
    }
    if (!hit && now - this.lastAt < this.everySeconds) return false;
    this.lastAt = now;
    return true;
  }
}

/** Where progress goes: process.stdout by default; tests pass a recorder. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  epochs: number;
  stream?: ProgressStream;
  /** Force the terminal (true) or the log (false) form; default: the stream's isTTY. */
  tty?: boolean;
  /** Clock in seconds; injectable for tests. */
  now?: () => number;
  /** Non-terminal cadence: a line per this fraction of an epoch (0.1) or after this many seconds (30). */
  everyFraction?: number;
  everySeconds?: number;
  /** Terminal redraws at most this often, in seconds (0.1): repainting per batch costs time. */
  redrawSeconds?: number;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private epoch = 0;
  private total = 0;
  private start = 0;
  private startDone = 0;
  private lastDraw = -Infinity;
  private cadence: Cadence | null = null;
  private barShown = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stdout;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? (() => performance.now() / 1000);
  }

  /**
   * Starts epoch `epoch` (1-based) of `totalSamples` training samples; a resumed run passes the
   * samples already done, so the rate and ETA count only this process's work.
   */
  startEpoch(epoch: number, totalSamples: number, alreadyDone = 0): void {
    this.epoch = epoch;
    this.total = totalSamples;
    this.startDone = alreadyDone;
    this.start = this.now();
    this.lastDraw = -Infinity;
    const startFraction = totalSamples > 0 ? alreadyDone / totalSamples : 0;
    this.cadence = new Cadence(this.opts.everyFraction ?? 0.1, this.opts.everySeconds ?? 30, this.start, startFraction);
  }

  /** After a batch: `done` samples of the epoch so far, with the running mean loss and accuracy. */
  update(done: number, loss: number, acc: number): void {
    const now = this.now();
    const state: ProgressState = {
      epoch: this.epoch, epochs: this.opts.epochs, done, total: this.total, loss, acc, elapsed: now - this.start,
      startDone: this.startDone,
    };
    if (this.tty) {
      const last = done >= this.total;
      if (!last && now - this.lastDraw < (this.opts.redrawSeconds ?? 0.1)) return;
      this.lastDraw = now;
      // \r back to column 0, the line, then erase whatever a longer previous line left behind.
      this.stream.write(`\r${formatProgressLine(state, this.stream.columns ?? 80)}\x1b[K`);
      this.barShown = true;
    } else if (this.cadence!.due(this.total > 0 ? done / this.total : 1, now)) {
      this.stream.write(`${formatProgressLine(state)}\n`);
    }
  }

  /** Ends the epoch's bar and prints its summary with the validation numbers. */
  epochEnd(summary: Omit<EpochSummary, 'epochs' | 'seconds'> & { seconds?: number }): void {
    this.endBar();
    const seconds = summary.seconds ?? this.now() - this.start;
    this.stream.write(`${formatEpochSummary({ ...summary, epochs: this.opts.epochs, seconds })}\n`);
  }

  /** Prints a message on a line of its own (a bar in progress is ended first). */
  log(message: string): void {
    this.endBar();
    this.stream.write(`${message}\n`);
  }

  private endBar(): void {
    if (this.barShown) this.stream.write('\n');
    this.barShown = false;
  }
}
