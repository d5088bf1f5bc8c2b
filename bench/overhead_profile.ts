/**
 * Where a workload's time goes, for group O (issue 17): V8's CPU profile of the iterations alone
 * (node:inspector's Profiler inside the worker, so start-up and module loading are not in it),
 * summed by function over self time. The garbage collector appears as its own entry.
 */
import { basename } from 'node:path';
import { Session } from 'node:inspector/promises';

export interface ProfileEntry {
  /** Function and file (a '(garbage collector)' or '(program)' entry has none). */
  name: string;
  /** Share of the profiled time (idle excluded). */
  share: number;
}

export interface ProfileSummary {
  /** The garbage collector's share of the profiled time. */
  gcShare: number;
  /** The entries with most self time, largest first. */
  top: ProfileEntry[];
  /** Profiled wall time in milliseconds. */
  ms: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * Runs `iteration` `iters` times under the CPU profiler (sampling every `intervalUs`) and sums its
 * profile. `native`: names of functions the addon exports; V8 gives every Node-API function the name
 * of one of them (they share one trampoline), so they are summed as one entry.
 */
export async function profileIterations(iteration: () => void, iters: number, native: ReadonlySet<string>,
  intervalUs = 100, topN = 12): Promise<ProfileSummary> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    for (let i = 0; i < iters; i++) iteration();
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    return summarize(profile, native, topN);
  } finally {
    session.disconnect();
  }
}

function summarize(p: CpuProfile, native: ReadonlySet<string>, topN: number): ProfileSummary {
  const names = new Map<number, string>();
  for (const n of p.nodes) {
    // No line: the loader's transpiled modules put every function on line 1.
    const f = n.callFrame;
    const name = f.url ? `${f.functionName || '(anonymous)'} (${basename(f.url)})`
      : native.has(f.functionName) ? '(calls into the addon: kernels and free)' : f.functionName;
    names.set(n.id, name);
  }
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const name = names.get(p.samples[i]!)!;
    const dt = p.timeDeltas[i] ?? 0;
    if (name === '(idle)') continue;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([name, t]) => ({ name, share: t / total }));
  return { gcShare: (self.get('(garbage collector)') ?? 0) / total, top, ms: (p.endTime - p.startTime) / 1000 };
}
