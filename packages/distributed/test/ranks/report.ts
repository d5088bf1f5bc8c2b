// A rank's result for mpirun.ts: written to its own file in the folder the test names, because
// mpirun forwards the ranks' stdout in chunks, and two long lines written at once can interleave
// into one that is not JSON. Without the folder (a rank run by hand) it prints the line. Each
// report also names the files libmpi and the shared-memory transport were loaded from, so a test
// can tell which Open MPI ran (the GPU kit carries its own).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function loaded(pattern: RegExp): string | null {
  try {
    return readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.slice(l.indexOf('/'))).find((p) => pattern.test(p)) ?? null;
  } catch { return null; }
}

export function report(out: Record<string, unknown>): void {
  const dir = process.env.NODEGRAD_RANK_REPORTS;
  const line = JSON.stringify({ ...out, loaded: { mpi: loaded(/\/libmpi\.so/), vader: loaded(/\/mca_btl_vader\.so$/) } });
  if (!dir) { console.log(line); return; }
  writeFileSync(join(dir, `rank-${process.env.OMPI_COMM_WORLD_RANK ?? '0'}.json`), line);
}
