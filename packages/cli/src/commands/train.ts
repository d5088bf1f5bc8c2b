/** `nodegrad train`: trains a ResNet on a dataset, with checkpoints, metrics, a plot and exact resume. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setRngState } from '@nodegrad/autograd';
import { getNumThreads, setNumThreads, cuda } from '@nodegrad/native';
import { GradScaler, type Scheduler } from '@nodegrad/nn';
import { CliError, UsageError, formatFlags, parseFlags } from '../args.js';
import { Progress, plotPng } from '../report/index.js';
import { loadCheckpoint, removeStaleTemps, type Checkpoint } from '../train/checkpoint.js';
import { TRAIN_FLAGS, checkDevice, checkResumeFlags, clampThreads, resolveConfig, type TrainConfig } from '../train/config.js';
import { insideJob, joinJob, parallelModel, relaunch, SINGLE } from '../train/data_parallel.js';
import { checkOutFolder, lockRunFolder, makeOutFolder, removeIfEmpty, writeMetrics } from '../train/files.js';
import { trainLoop, type LoopState } from '../train/loop.js';
import {
  buildModel, imageShape, loadDatasets, loadWeights, makeLoaders, makeOptimizer, makeScheduler, trainableParams,
} from '../train/setup.js';

export const summary = 'train a ResNet (default: the small-image ResNet-18 on the built-in MNIST digits)';

export const usage = `usage: nodegrad train [flags]

Trains a ResNet and writes, to the output folder: metrics.jsonl and metrics.csv (one row per
epoch), plot.png (loss and accuracy curves), best.safetensors (best validation accuracy) and
last.safetensors + last.state.*.safetensors (the checkpoint --resume continues from).

flags:
${formatFlags({ ...TRAIN_FLAGS, help: { type: 'bool', help: 'show this help' } })}`;

/** Runs the command; returns the exit code (usage errors are thrown as UsageError). */
export async function run(argv: readonly string[]): Promise<number> {
  const given = parseFlags('train', { ...TRAIN_FLAGS, help: { type: 'bool', help: '' } }, argv);
  if (given.help) {
    console.log(usage);
    return 0;
  }
  let cfg: TrainConfig;
  let ckpt: Checkpoint | null = null;
  let stamp = '';
  if (given.resume !== undefined) {
    const dir = given.resume as string;
    if (!existsSync(dir)) throw new CliError(`--resume ${dir}: no such folder`);
    if (!statSync(dir).isDirectory()) throw new CliError(`--resume ${dir}: not a folder (give the run's output folder)`);
    if (given.out !== undefined && resolve(given.out as string) !== resolve(dir)) {
      throw new UsageError('train', `--out ${String(given.out)} differs from --resume ${dir}; a resumed run writes into its own folder`);
    }
    // A run killed during its first checkpoint has a folder but nothing to continue from.
    if (!existsSync(join(dir, 'last.safetensors'))) {
      throw new CliError(`--resume ${dir}: no checkpoint was completed there (the run stopped before writing its first one); ` +
        `start the run again with the same flags and --out ${dir}`);
    }
    stamp = checkpointStamp(dir);
    ckpt = await loadCheckpoint(dir, 'ts');
    cfg = { ...checkResumeFlags('train', ckpt.state.config, given, dir), out: dir };
    // Another machine may have fewer cores than the one that started the run.
    const notes: string[] = [];
    cfg.threads = clampThreads(cfg.threads, `the ${cfg.threads} threads recorded in ${dir}`, notes);
    if (writerProcess()) for (const n of notes) console.error(n);
    checkDevice('train', cfg.device, `, the device recorded in ${dir}`);
    const done = ckpt.state.position.epoch;
    if (done >= cfg.epochs) {
      // A run killed after its last checkpoint may lack the last epoch's rows and plot.
      if (writerProcess()) {
        lockRunFolder(dir);
        checkUnchanged(dir, stamp);
        await removeStaleTemps(dir);
        await writeFiles(cfg, ckpt.state.history);
      }
      const best = ckpt.state.history.reduce((b, r) => (r.val_acc > b.val_acc ? r : b), ckpt.state.history[0]!);
      console.log(`the run in ${resolve(dir)} is finished: ${done} of ${cfg.epochs} epochs done, best validation accuracy ` +
        `${(100 * best.val_acc).toFixed(2)}% at epoch ${best.epoch}. To train on, resume with --epochs N (N > ${cfg.epochs}).`);
      return 0;
    }
  } else {
    const r = resolveConfig('train', given);
    cfg = r.config;
    if (writerProcess()) for (const n of r.notes) (n.startsWith('warning:') ? console.error : console.log)(n);
    if (existsSync(join(cfg.out, 'last.safetensors'))) {
      throw new CliError(`--out ${cfg.out} already holds a run (last.safetensors); continue it with --resume ${cfg.out} or choose another folder`);
    }
    // Checked now, created once the data, model and weights check out (below).
    checkOutFolder(cfg.out);
  }
  if (cfg.nproc > 1 && !insideJob()) return relaunch(cfg, argv, given.out === undefined && given.resume === undefined);
  const ranks = cfg.nproc > 1 ? joinJob(cfg) : SINGLE;
  // Each rank of a 'cuda' run trains on its own GPU.
  if (ranks.device && ranks.device !== cfg.device) cfg = { ...cfg, device: ranks.device };
  const say = ranks.writer ? (line: string) => console.log(line) : () => {};
  // oneDNN sizes its primitives for the thread count when it creates them: set it before any conv.
  if (cfg.device === 'cpu' && getNumThreads() !== cfg.threads) setNumThreads(cfg.threads);
  if (cfg.cudnnBenchmark) cuda.setCudnnBenchmark(true);

  const { train, val, name, warnings } = await loadDatasets(cfg);
  if (ranks.writer) for (const w of warnings) console.error(w);
  const shape = await imageShape(train);
  const numClasses = train.classes.length;
  const built = buildModel(cfg, shape, numClasses);
  const { smallStem } = built;
  if (cfg.weights && !ckpt) {
    const replaced = await loadWeights(built.model, cfg.weights, cfg.device);
    say(`loaded ${cfg.weights}${replaced ? `; ${replaced}` : ''}`);
  }
  const params = trainableParams(built.model, cfg.freezeBackbone);
  const { model, forward } = ranks.worldSize > 1 ? parallelModel(cfg, built.model) : { model: built.model, forward: undefined };
  const optimizer = makeOptimizer(cfg, params);
  const { trainLoader, valLoader, valCount } = makeLoaders(cfg, train, val, ranks.rank, ranks.worldSize);
  const scheduler = makeScheduler(cfg, optimizer, trainLoader.batchesPerEpoch);
  const created = ranks.writer && !ckpt && makeOutFolder(cfg.out);
  const unlock = ranks.writer ? lockRunFolder(cfg.out) : () => {};
  if (ranks.writer && ckpt) checkUnchanged(cfg.out, stamp);
  // Left by a kill: of this run, or of one killed before its first checkpoint.
  if (ranks.writer) await removeStaleTemps(cfg.out);
  // float16's range needs loss scaling; bfloat16 has float32's.
  const scaler = new GradScaler({ enabled: cfg.amp === 'fp16' });

  let state: LoopState = { position: { epoch: 0, step: 0, globalStep: 0 }, accum: { lossSum: 0, correct: 0, seen: 0, seconds: 0 }, bestAcc: -1, history: [] };
  if (ckpt) {
    const recorded = ckpt.state.config.epochs;
    if (cfg.epochs !== recorded) {
      say(`extending the run from ${recorded} to ${cfg.epochs} epochs: the lr schedule is recomputed for ${cfg.epochs} epochs, as if ` +
        'the run had started with them, and the steps to come follow it');
    }
    restore(cfg, ckpt, model, optimizer, cfg.epochs !== recorded ? { extended: scheduler } : { loaded: scheduler }, scaler);
    const s = ckpt.state;
    if (s.position.step > trainLoader.batchesPerEpoch) {
      throw new CliError(`cannot resume from ${join(cfg.out, 'last.safetensors')}: its position, step ${s.position.step} of epoch ` +
        `${s.position.epoch + 1}, lies beyond the ${trainLoader.batchesPerEpoch} steps of an epoch`);
    }
    // The checkpoint holds the epoch's sums over every rank: rank 0 carries them on.
    state = { position: s.position, accum: ranks.writer ? s.accum : { lossSum: 0, correct: 0, seen: 0, seconds: 0 }, bestAcc: s.bestAcc, history: s.history };
    // The files may lag the checkpoint if the run was killed between writing them.
    if (ranks.writer) await writeFiles(cfg, s.history);
    say(`resuming ${resolve(cfg.out)} at epoch ${s.position.epoch + 1}, step ${s.position.step} of ${trainLoader.batchesPerEpoch}`);
  }

  const nParams = model.parameters().reduce((n, p) => n + p.size, 0);
  say(`training ${cfg.model}${cfg.widths ? ` (widths ${cfg.widths.join(',')})` : ''}${smallStem ? ' with the small-image stem' : ''}, ` +
    `${(nParams / 1e6).toFixed(2)}M parameters${cfg.freezeBackbone ? ' (fc only trainable)' : ''}${cfg.freezeBn ? ' (BatchNorm statistics frozen)' : ''}, on ${name}: ` +
    `${train.length} training / ${val.length} validation images of ${shape.channels}x${shape.height}x${shape.width}`);
  say(`${cfg.epochs} epochs of ${trainLoader.batchesPerEpoch} steps, batch ${cfg.batchSize}, ${cfg.optimizer} lr ${cfg.lr} ` +
    `(${cfg.schedule} schedule, warm-up ${cfg.warmupEpochs} epochs), device '${cfg.device}'` +
    `${cfg.device === 'cpu' ? `, ${cfg.threads} threads` : ''}, seed ${cfg.seed}` +
    `${cfg.amp !== 'off' ? `, mixed precision ${cfg.amp}${cfg.amp === 'fp16' ? ' with loss scaling' : ''}` : ''}` +
    `${ranks.worldSize > 1 ? `; ${ranks.worldSize} ranks of ${cfg.batchSize / ranks.worldSize} images${cfg.syncBn ? ', SyncBatchNorm' : ''}` : ''}`);
  say(`output: ${resolve(cfg.out)}`);
  try {
    // A rank's output reaches the launcher's through mpirun, which says nothing of what that is.
    const tty = insideJob() && process.env.NODEGRAD_TTY !== undefined ? { tty: process.env.NODEGRAD_TTY === '1' } : {};
    const progress = new Progress({ epochs: cfg.epochs, ...(ranks.writer ? tty : { stream: { write: () => true }, tty: false }) });
    state = await trainLoop({ cfg, model, optimizer, scheduler, scaler, trainLoader, valLoader, numClasses, progress, forward, ranks, valCount }, state);
  } catch (e) {
    unlock();
    if (created) removeIfEmpty(cfg.out);
    throw e;
  } finally {
    await trainLoader.close();
    await valLoader.close();
  }
  const best = state.history.reduce((b, r) => (r.val_acc > b.val_acc ? r : b), state.history[0]!);
  say(`done: best validation accuracy ${(100 * best.val_acc).toFixed(2)}% at epoch ${best.epoch}`);
  say(`  plot:       ${resolve(cfg.out, 'plot.png')}`);
  say(`  metrics:    ${resolve(cfg.out, 'metrics.jsonl')} (and metrics.csv)`);
  say(`  checkpoint: ${resolve(cfg.out, 'best.safetensors')} (best), ${resolve(cfg.out, 'last.safetensors')} (last)`);
  return 0;
}

/** The checkpoint's file as it was read: the run folder is locked only after (see checkUnchanged). */
function checkpointStamp(dir: string): string {
  try {
    const s = statSync(join(dir, 'last.safetensors'));
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return '';
  }
}

/** Refuses a resume whose checkpoint another writer replaced between reading it and taking the lock. */
function checkUnchanged(dir: string, stamp: string): void {
  if (checkpointStamp(dir) !== stamp) {
    throw new CliError(`--resume ${dir}: another process wrote a new checkpoint there while this one started; resume again once it has stopped`);
  }
}

/** metrics.jsonl, metrics.csv and plot.png from the checkpoint's history. */
async function writeFiles(cfg: TrainConfig, history: Checkpoint['state']['history']): Promise<void> {
  await writeMetrics(cfg.out, history);
  if (history.length) await plotPng(history, join(cfg.out, 'plot.png'), { title: `${cfg.model} on ${cfg.dataset}` });
}

/** Whether this process writes the run's files: a single process, or rank 0 of an mpirun job. */
function writerProcess(): boolean {
  return !insideJob() || process.env.OMPI_COMM_WORLD_RANK === '0';
}

/**
 * Puts the checkpoint's weights, optimizer and scheduler state and RNG back. An extended run's
 * scheduler (built for the new length) is not loaded but stepped from the start to the
 * checkpoint's step, on the fresh optimizer's lr, and its lr replaces the recorded one.
 */
function restore(cfg: TrainConfig, ckpt: Checkpoint, model: ReturnType<typeof buildModel>['model'],
  optimizer: ReturnType<typeof makeOptimizer>, sched: { loaded: Scheduler | null } | { extended: Scheduler | null }, scaler: GradScaler): void {
  const weightsFile = join(cfg.out, 'last.safetensors');
  const stateFile = `${join(cfg.out, 'last.state')}.*.safetensors`;
  const attempt = (file: string, what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      throw new CliError(`cannot resume from ${file}: its ${what} does not fit the run: ${(e as Error).message}`);
    }
  };
  attempt(weightsFile, 'weights', () => model.loadStateDict(ckpt.weights));
  if ('extended' in sched) {
    for (let i = 0; i < ckpt.state.position.globalStep; i++) sched.extended?.step();
    const lrs = optimizer.paramGroups.map((g) => g.lr);
    attempt(stateFile, 'optimizer state', () => optimizer.loadStateDict(ckpt.optimizer));
    optimizer.paramGroups.forEach((g, i) => { g.lr = lrs[i]!; });
  } else {
    attempt(stateFile, 'optimizer state', () => optimizer.loadStateDict(ckpt.optimizer));
    const saved = ckpt.state.scheduler;
    const scheduler = sched.loaded;
    if ((saved === null) !== (scheduler === null)) throw new CliError(`cannot resume from ${stateFile}: its scheduler state does not fit --schedule ${cfg.schedule}`);
    if (saved && scheduler) attempt(stateFile, 'scheduler state', () => scheduler.loadStateDict(saved));
  }
  const scale = ckpt.state.scaler ?? null;
  if ((scale === null) === scaler.isEnabled()) throw new CliError(`cannot resume from ${stateFile}: its loss-scaler state does not fit --amp ${cfg.amp}`);
  if (scale) attempt(stateFile, 'loss-scaler state', () => scaler.loadStateDict(scale));
  attempt(stateFile, 'RNG state', () => setRngState(ckpt.state.rng));
}
