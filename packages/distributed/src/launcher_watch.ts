/**
 * A rank started by `nodegrad launch` (or `nodegrad train --nproc`) stops when the launcher is
 * gone: a launcher killed outright (SIGKILL) cannot stop mpirun, which would run the job on with
 * nobody waiting for it, and a resumed run would then find its folder still being written. The
 * launcher names itself in NODEGRAD_LAUNCHER (host:pid); ranks on its host poll that pid once a
 * second (on a timer that keeps no process alive), and ranks elsewhere are stopped by mpirun when
 * those exit.
 */
import { hostname } from 'node:os';

let watching = false;

/** Starts the watch for this rank, if a launcher on this host started it. */
export function watchLauncher(rank: number): void {
  const m = /^(.*):(\d+)$/.exec(process.env.NODEGRAD_LAUNCHER ?? '');
  if (watching || !m || m[1] !== hostname()) return;
  const pid = Number(m[2]);
  watching = true;
  setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch (e) {
      // EPERM: it lives, under another user.
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') return;
      console.error(`rank ${rank}: the launcher (pid ${pid}) is gone; stopping`);
      process.exit(1);
    }
  }, 1000).unref();
}
