/** Output files written atomically (temp file in the same folder, fsync, rename), and the metrics files. */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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
