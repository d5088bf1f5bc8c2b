/** The output folder: checked before a run, created once its inputs check out; files written atomically, the metrics files. */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError } from '../args.js';

/** Writes `data` to `path` so that a reader (or a kill) sees the old file or the new one, never a part. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

/** One epoch's row of metrics.jsonl. Accuracies are fractions in [0, 1]; `seconds` is the training time. */
export interface EpochRow {
  epoch: number;
  train_loss: number;
  train_acc: number;
  val_loss: number;
  val_acc: number;
  lr: number;
  seconds: number;
  images_per_s: number;
}

export const METRIC_KEYS = ['epoch', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'lr', 'seconds', 'images_per_s'] as const;

/**
 * Rewrites metrics.jsonl and metrics.csv from the whole history. Rewriting (rather than
 * appending) keeps them equal to the checkpoint's history after a resume, with no duplicate rows.
 */
export async function writeMetrics(dir: string, rows: readonly EpochRow[]): Promise<void> {
  const jsonl = rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
  const csv = [METRIC_KEYS.join(','), ...rows.map((r) => METRIC_KEYS.map((k) => String(r[k])).join(','))].join('\n') + '\n';
  await writeFileAtomic(join(dir, 'metrics.jsonl'), jsonl);
  await writeFileAtomic(join(dir, 'metrics.csv'), csv);
}

/**
 * Refuses an --out that cannot become the run's folder, before any data is read: a path through a
 * file, or a folder (or, when it does not exist yet, its nearest existing parent) that this
 * process may not write. Nothing is created here: see `makeOutFolder`.
 */
export function checkOutFolder(out: string): void {
  const target = resolve(out);
  for (let p = target; ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      // Not there yet, or under a file (ENOTDIR): the parent says which.
      if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '') && dirname(p) !== p) continue;
      throw new CliError(`--out ${out}: cannot inspect ${p}: ${(e as Error).message}`);
    }
    const what = p === target ? 'it' : `its parent ${p}`;
    if (!isDir) throw new CliError(`--out ${out}: ${what} is a file, not a folder`);
    try {
      accessSync(p, constants.W_OK);
    } catch (e) {
      throw new CliError(`--out ${out}: ${what} is not writable (${(e as NodeJS.ErrnoException).code})`);
    }
    return;
  }
}

/**
 * Creates the run's folder once the inputs have checked out, and proves it writable with a probe
 * file. Returns whether the folder was created here (a run that then fails removes it if empty).
 */
export function makeOutFolder(out: string): boolean {
  const created = !existsSync(out);
  try {
    mkdirSync(out, { recursive: true });
    const probe = join(out, `.write-check.${process.pid}.tmp`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (e) {
    throw new CliError(`--out ${out}: cannot write there: ${(e as Error).message}`);
  }
  return created;
}

/** Removes a folder this run created when the run failed before writing anything into it. */
export function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // Best effort: the folder stays, as it would have without this.
  }
}
