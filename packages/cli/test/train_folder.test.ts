/**
 * The run's folder is the run's: a resume of a finished run brings back the files a kill after its
 * last checkpoint left behind; only nodegrad's own temp files are cleaned; a second writer on the
 * folder is refused while the first lives, and a lock left by a killed one is taken over.
 */
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMALL, runCli } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-folder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const done = join(dir, 'done');
const RUN = [...SMALL, '--limit-train', '128', '--limit-val', '64', '--epochs', '2', '--batch-size', '32', '--seed', '3'];

/** A copy of the finished run, to damage. */
function copyRun(name: string): string {
  const to = join(dir, name);
  cpSync(done, to, { recursive: true });
  return to;
}

/** This process's lock line, as lockRunFolder writes it (host:pid:start time). */
function ownLock(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return `${hostname()}:${process.pid}:${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
}

describe('nodegrad train: the run folder', () => {
  beforeAll(async () => {
    const r = await runCli(['train', ...RUN, '--out', done]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  it('a resume of a finished run rewrites the metrics and plot a kill after the last checkpoint left behind', async () => {
    const f = copyRun('lagging');
    const full = readFileSync(join(f, 'metrics.jsonl'), 'utf8');
    writeFileSync(join(f, 'metrics.jsonl'), `${full.split('\n')[0]}\n`);
    rmSync(join(f, 'plot.png'));
    const r = await runCli(['train', '--resume', f]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/is finished: 2 of 2 epochs done/);
    expect(readFileSync(join(f, 'metrics.jsonl'), 'utf8')).toBe(full);
    expect(existsSync(join(f, 'plot.png'))).toBe(true);
    expect(existsSync(join(f, '.nodegrad.lock'))).toBe(false);
  }, 60_000);

  it("removes its own temp files only: a user's dot-file ending in .tmp stays", async () => {
    const f = copyRun('temps');
    writeFileSync(join(f, '.notes.md.tmp'), 'mine');
    writeFileSync(join(f, '.last.safetensors.123.abcd.tmp'), 'half a file');
    writeFileSync(join(f, '.plot.png.77.0123abcd.tmp'), 'half a file');
    const r = await runCli(['train', '--resume', f]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(f).filter((n) => n.endsWith('.tmp'))).toEqual(['.notes.md.tmp']);
  }, 60_000);

  it('refuses a folder a live process writes, takes over the lock of a killed one', async () => {
    const f = copyRun('locked');
    writeFileSync(join(f, '.nodegrad.lock'), ownLock());
    const busy = await runCli(['train', '--resume', f]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`${f} is in use: process ${process.pid} is writing a run there`);
    // A pid that is not running (or runs since another time): the lock of a killed run.
    writeFileSync(join(f, '.nodegrad.lock'), `${hostname()}:${process.pid}:1`);
    const stale = await runCli(['train', '--resume', f]);
    expect(stale.code, stale.stderr).toBe(0);
    expect(existsSync(join(f, '.nodegrad.lock'))).toBe(false);
    // Another host's lock cannot be checked from here: refused, naming the file.
    writeFileSync(join(f, '.nodegrad.lock'), 'elsewhere:1:1');
    const far = await runCli(['train', '--resume', f]);
    expect(far.code).toBe(1);
    expect(far.stderr).toContain(`${f} is locked by elsewhere:1:1 (${join(f, '.nodegrad.lock')}); if no run writes there any more, delete that file`);
  }, 60_000);

  it('--resume of a file says it needs the folder', async () => {
    copyFileSync(join(done, 'metrics.csv'), join(dir, 'a-file'));
    const r = await runCli(['train', '--resume', join(dir, 'a-file')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--resume ${join(dir, 'a-file')}: not a folder (give the run's output folder)`);
  }, 30_000);
});
