// A rank's result for mpirun.ts: written to its own file in the folder the test names, because
// mpirun forwards the ranks' stdout in chunks, and two long lines written at once can interleave
// into one that is not JSON. Without the folder (a rank run by hand) it prints the line. Each
// report also names the files libmpi and the shared-memory transport were loaded from, so a test
// can tell which Open MPI ran (the GPU kit carries its own).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The files libmpi and the shared-memory transport were mapped from (Linux), or null. */
function loaded(): { mpi: string | null; vader: string | null } {
  let files: string[] = [];
  try {
    files = readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.slice(l.indexOf('/')));
  } catch { /* not Linux: nothing to tell */ }
  const find = (pattern: RegExp) => files.find((f) => pattern.test(f)) ?? null;
  return { mpi: find(/\/libmpi\.so/), vader: find(/\/mca_btl_vader\.so$/) };
}

export function report(out: Record<string, unknown>): void {
  const dir = process.env.NODEGRAD_RANK_REPORTS;
  const line = JSON.stringify({ ...out, loaded: loaded() });
  if (!dir) { console.log(line); return; }
  writeFileSync(join(dir, `rank-${process.env.OMPI_COMM_WORLD_RANK ?? '0'}.json`), line);
}
