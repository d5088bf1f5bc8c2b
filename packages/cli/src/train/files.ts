/** The output folder: checked before a run, created once its inputs check out; files written atomically, the metrics files. */
import { randomBytes } from 'node:crypto';
import {
  accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
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

/**
 * Claims `dir` for this process's run through `.nodegrad.lock` (host:pid:start time), so two
 * writers never share a folder: each would delete the other's checkpoint state. The live process
 * on this host that wrote it is refused; a lock whose process is gone (killed, or its pid now
 * another program's) is taken over. A lock from another host cannot be checked: it is refused,
 * naming the file to delete. Returns the release, which also runs at exit.
 */
export function lockRunFolder(dir: string): () => void {
  const file = join(dir, '.nodegrad.lock');
  const me = `${hostname()}:${process.pid}:${startTime(process.pid)}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, me, { flag: 'wx' });
      const release = () => {
        process.off('exit', release);
        try {
          if (readFileSync(file, 'utf8') === me) rmSync(file);
        } catch {
          // Gone already: nothing to release.
        }
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new CliError(`${dir}: cannot create ${file}: ${(e as Error).message}`);
    }
    let owner = '';
    try {
      owner = readFileSync(file, 'utf8');
    } catch {
      continue; // Released meanwhile: try again.
    }
    const [host, pid, start] = owner.split(':');
    // A rank of a job that has just failed may take a few seconds to be stopped.
    const holds = () => alive(Number(pid)) && startTime(Number(pid)) === start;
    for (const until = Date.now() + 5000; host === hostname() && holds() && Date.now() < until;) sleepSync(100);
    if (host === hostname() && !holds()) {
      // Taken over by moving the stale lock aside: of two processes that found it, one moves it.
      // One that moved a fresh lock instead (the other's, written meanwhile) puts it back.
      const aside = `${file}.${process.pid}.stale`;
      try {
        renameSync(file, aside);
      } catch {
        continue;
      }
      const moved = readFileSync(aside, 'utf8');
      rmSync(aside, { force: true });
      if (moved !== owner) {
        try {
          writeFileSync(file, moved, { flag: 'wx' });
        } catch {
          // Taken again meanwhile: the next attempt finds out by whom.
        }
      }
      continue;
    }
    if (host === hostname()) throw new CliError(`${dir} is in use: process ${pid} is writing a run there; wait for it to finish or stop it first`);
    throw new CliError(`${dir} is locked by ${owner || 'another process'} (${file}); if no run writes there any more, delete that file`);
  }
  throw new CliError(`${dir}: cannot take ${file}: other processes keep taking it`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When `pid` started (Linux: /proc/<pid>/stat's starttime), telling a reused pid apart; '' where
 * unknown, and 'exited' for a process that has exited but is not yet reaped (a zombie).
 */
function startTime(pid: number): string {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return fields[0] === 'Z' ? 'exited' : fields[19] ?? '';
  } catch {
    return '';
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
