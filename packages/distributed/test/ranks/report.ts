// A rank's result for mpirun.ts: written to its own file in the folder the test names, because
// mpirun forwards the ranks' stdout in chunks, and two long lines written at once can interleave
// into one that is not JSON. Without the folder (a rank run by hand) it prints the line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function report(out: Record<string, unknown>): void {
  const dir = process.env.NODEGRAD_RANK_REPORTS;
  const line = JSON.stringify(out);
  if (!dir) { console.log(line); return; }
  writeFileSync(join(dir, `rank-${process.env.OMPI_COMM_WORLD_RANK ?? '0'}.json`), line);
}
