/**
 * The resumable checkpoint: `last.safetensors` (the model's state dict, torchvision names, so it
 * loads like any weights file) and `last.state.<id>.safetensors` (optimizer tensors, plus the
 * rest of the state as JSON in its metadata: config, position, RNG, scheduler, history).
 *
 * Crash safety: each file is written atomically; the state file comes first under a name of its
 * own, then the weights file, whose metadata names that state file's id, replaces the old
 * weights in one rename; older state files are deleted only after that. So a kill at any point
 * leaves last.safetensors naming a complete state file: the old pair, or the new one.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Tensor, getRngState } from '@nodegrad/autograd';
import {
  SafetensorsError, loadSafetensors, saveSafetensors, type GradScalerStateDict, type OptimizerStateDict, type ParamState,
} from '@nodegrad/nn';
import { CliError } from '../args.js';
import type { TrainConfig } from './config.js';
import type { EpochRow } from './files.js';

const FORMAT = 'nodegrad-train-checkpoint-1';

/** Where a run stands: the next step to run is `step` of `epoch` (0-based), after `globalStep` steps. */
export interface Position {
  epoch: number;
  step: number;
  globalStep: number;
}

/** The running sums of the epoch in progress, so a resumed epoch reports the same numbers. */
export interface EpochAccum {
  lossSum: number;
  correct: number;
  seen: number;
  seconds: number;
}

/** Everything besides tensors that a resume restores. */
export interface RunState {
  format: string;
  config: TrainConfig;
  position: Position;
  accum: EpochAccum;
  rng: number[];
  bestAcc: number;
  history: EpochRow[];
  optimizer: { param_groups: OptimizerStateDict['param_groups']; state: Record<string, Record<string, number | null>> };
  scheduler: Record<string, unknown> | null;
  /** The loss scaler of an --amp fp16 run (absent before mixed precision, null without one). */
  scaler?: GradScalerStateDict | null;
}

export interface Checkpoint {
  state: RunState;
  weights: Record<string, Tensor>;
  optimizer: OptimizerStateDict;
}

/** JSON with NaN and ±Infinity kept (a diverged loss is still a number to restore). */
const stringify = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === 'number' && !Number.isFinite(x) ? { $num: String(x) } : x));
const parse = (s: string) => JSON.parse(s, (_, x) => (x && typeof x === 'object' && typeof x.$num === 'string' && Object.keys(x).length === 1 ? Number(x.$num) : x));

const stateName = (id: string) => `last.state.${id}.safetensors`;

/** Writes the checkpoint of `position` into `dir` (see the file comment for the order). */
export async function saveCheckpoint(dir: string, weights: Record<string, Tensor>, optimizer: OptimizerStateDict,
  rest: Omit<RunState, 'format' | 'optimizer' | 'rng'>, architecture: Record<string, string> = {}): Promise<void> {
  const id = `e${rest.position.epoch}s${rest.position.step}`;
  const tensors: Record<string, Tensor> = {};
  const numbers: RunState['optimizer']['state'] = {};
  for (const [index, s] of Object.entries(optimizer.state)) {
    numbers[index] = {};
    for (const [k, v] of Object.entries(s)) {
      if (v instanceof Tensor) tensors[`optimizer.${index}.${k}`] = v;
      else numbers[index]![k] = v;
    }
  }
  const state: RunState = { format: FORMAT, ...rest, rng: getRngState(), optimizer: { param_groups: optimizer.param_groups, state: numbers } };
  await saveSafetensors(join(dir, stateName(id)), tensors, { format: FORMAT, checkpoint: id, state: stringify(state) });
  await saveSafetensors(join(dir, 'last.safetensors'), weights, { ...architecture, format: FORMAT, checkpoint: id });
  for (const f of await readdir(dir)) {
    if (/^last\.state\..+\.safetensors$/.test(f) && f !== stateName(id)) await rm(join(dir, f), { force: true });
  }
}

/**
 * The temp files a killed write of a run's own files leaves: `.<name>.<pid>.<hex>.tmp`
 * (writeFileAtomic, saveSafetensors, plotPng) and makeOutFolder's probe. Other files are the user's.
 */
const STALE_TEMP = /^\.(?:(?:last|best)\.safetensors|last\.state\.[^/]+\.safetensors|metrics\.jsonl|metrics\.csv|plot\.png)\.\d+\.[0-9a-f]+\.tmp$|^\.write-check\.\d+\.tmp$/;

/** Removes the temp files a killed write left behind (call with the folder locked: lockRunFolder). */
export async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await readdir(dir)) if (STALE_TEMP.test(f)) await rm(join(dir, f), { force: true });
}

async function load(file: string, device: string): Promise<{ tensors: Record<string, Tensor>; metadata: Record<string, string> | null }> {
  try {
    return await loadSafetensors(file, { device });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist'
      : e instanceof SafetensorsError ? (e as Error).message.replace(/^loadSafetensors\([^)]*\):\s*/, '') : (e as Error).message;
    throw new CliError(`cannot resume from ${file}: ${why}`);
  }
}

/** Reads and checks the checkpoint in `dir`; every problem is a CliError naming the file. */
export async function loadCheckpoint(dir: string, device: string): Promise<Checkpoint> {
  const weightsFile = join(dir, 'last.safetensors');
  const w = await load(weightsFile, device);
  const id = w.metadata?.checkpoint;
  if (w.metadata?.format !== FORMAT || !id) {
    throw new CliError(`cannot resume from ${weightsFile}: its metadata has no nodegrad checkpoint id (not written by 'nodegrad train'?)`);
  }
  const stateFile = join(dir, stateName(id));
  const s = await load(stateFile, device);
  if (s.metadata?.checkpoint !== id) {
    throw new CliError(`cannot resume from ${stateFile}: it belongs to checkpoint '${s.metadata?.checkpoint}', ${weightsFile} to '${id}'`);
  }
  let state: RunState;
  try {
    state = parse(s.metadata.state ?? '');
  } catch (e) {
    throw new CliError(`cannot resume from ${stateFile}: its run state is not valid JSON (${(e as Error).message})`);
  }
  const bad = checkState(state);
  if (bad) throw new CliError(`cannot resume from ${stateFile}: ${bad}`);
  const optState: Record<number, ParamState> = {};
  for (const [index, nums] of Object.entries(state.optimizer.state)) optState[Number(index)] = { ...nums };
  for (const [name, t] of Object.entries(s.tensors)) {
    const m = /^optimizer\.(\d+)\.(.+)$/.exec(name);
    if (!m) throw new CliError(`cannot resume from ${stateFile}: unexpected tensor '${name}'`);
    (optState[Number(m[1])] ??= {})[m[2]!] = t;
  }
  return { state, weights: w.tensors, optimizer: { state: optState, param_groups: state.optimizer.param_groups } };
}

/** What is wrong with a parsed run state, or null. */
function checkState(s: RunState): string | null {
  if (typeof s !== 'object' || s === null) return 'its run state is not an object';
  if (s.format !== FORMAT) return `its run state has format '${String(s.format)}', expected '${FORMAT}'`;
  const missing = ['config', 'position', 'accum', 'rng', 'history', 'optimizer'].filter((k) => !(k in s) || (s as unknown as Record<string, unknown>)[k] == null);
  if (missing.length) return `its run state lacks ${missing.join(', ')}`;
  const p = s.position;
  if (![p.epoch, p.step, p.globalStep].every((v) => Number.isInteger(v) && v >= 0)) return `its position ${JSON.stringify(p)} is invalid`;
  if (!Array.isArray(s.rng) || !Array.isArray(s.history)) return 'its rng state or history is not a list';
  return null;
}
