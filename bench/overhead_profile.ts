/**
 * Where a workload's time goes, for group O (issue 17): V8's CPU profile of the iterations alone
 * (node:inspector's Profiler inside the worker, so start-up and module loading are not in it),
 * summed by function over self time. The garbage collector appears as its own entry.
 */
import { basename, relative } from 'node:path';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A script's path from the repository's root (node's own scripts as they are). */
const where = (url: string) => (url.startsWith('file:') ? relative(root, fileURLToPath(url)) : url);

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
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * Runs `iteration` `iters` times under the CPU profiler (sampling every `intervalUs`) and sums its
 * profile. A function with no script called from `caller` (a file's path ending) is summed as one
 * entry: the Node-API functions of the addon share one trampoline, which V8 names after whichever
 * function of the process it met first.
 */
export async function profileIterations(iteration: () => void, iters: number, caller: string,
  intervalUs = 100, topN = 12): Promise<ProfileSummary> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    for (let i = 0; i < iters; i++) iteration();
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    return summarize(profile, caller, topN);
  } finally {
    session.disconnect();
  }
}

function summarize(p: CpuProfile, caller: string, topN: number): ProfileSummary {
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const names = new Map<number, string>();
  for (const n of p.nodes) {
    // No line: the loader's transpiled modules put every function on line 1.
    const f = n.callFrame;
    const from = byId.get(parent.get(n.id) ?? -1)?.callFrame.url ?? '';
    const name = f.url ? `${f.functionName || '(anonymous)'} (${where(f.url)})`
      : f.functionName.startsWith('(') ? f.functionName
        : from.endsWith(caller) ? `(calls from ${caller.replace(/^\//, '')} into the addon)` : `${f.functionName} (native)`;
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
