/**
 * The training loop: steps in `tidy`, validation and the output files each epoch, checkpoints
 * every `checkpointEvery` steps and at each epoch end. Every source of randomness is a function of
 * (seed, epoch, step) or restored from the checkpoint, so a resumed run ends bit for bit where an
 * uninterrupted one does.
 */
import { join } from 'node:path';
import { autocast, copy_, noGrad, tidy, type Tensor } from '@nodegrad/autograd';
import type { DataLoader } from '@nodegrad/data';
import { BatchNormBase, CrossEntropyLoss, saveSafetensors, type GradScaler, type GradScalerStateDict, type Module, type Optimizer, type ParamGroup, type ResNet, type Scheduler } from '@nodegrad/nn';
import { CliError } from '../args.js';
import { plotPng, type Progress } from '../report/index.js';
import { saveCheckpoint, type EpochAccum, type Position } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { SINGLE, type Ranks } from './data_parallel.js';
import { evaluate, predictions } from './evaluate.js';
import { architectureMetadata } from './setup.js';
import { writeMetrics, type EpochRow } from './files.js';
import { listSome, nonFiniteTensors } from './finite.js';

export interface LoopState {
  position: Position;
  accum: EpochAccum;
  bestAcc: number;
  history: EpochRow[];
}

export interface Loop {
  cfg: TrainConfig;
  model: ResNet;
  optimizer: Optimizer<ParamGroup>;
  scheduler: Scheduler | null;
  /** --amp fp16's loss scaler; a disabled one otherwise. */
  scaler: GradScaler;
  trainLoader: DataLoader;
  valLoader: DataLoader;
  numClasses: number;
  /** The progress bar (a terminal) or periodic lines (a log). */
  progress: Progress;
  /** What each step runs, when not `model` itself (DistributedDataParallel around it). */
  forward?: Module;
  /** This rank and the sum over ranks (data-parallel); one process by default. */
  ranks?: Ranks;
  /** Samples of valLoader that count (a data-parallel shard's own, without its padding). */
  valCount?: number;
}

const freshAccum = (): EpochAccum => ({ lossSum: 0, correct: 0, seen: 0, seconds: 0 });

/** Trains from `state.position` to the last epoch; returns the final state. */
export async function trainLoop(l: Loop, state: LoopState): Promise<LoopState> {
  const { cfg, model, optimizer, scheduler, scaler } = l;
  // --amp: forward and loss under autocast (backward runs in the types they chose).
  const amp = {
    device: cfg.device.startsWith('cuda') ? 'cuda' : 'cpu', dtype: cfg.amp === 'fp16' ? 'float16' : 'bfloat16', enabled: cfg.amp !== 'off',
  } as const;
  const net = l.forward ?? model;
  const ranks = l.ranks ?? SINGLE;
  const criterion = new CrossEntropyLoss({ labelSmoothing: cfg.labelSmoothing });
  const stepsPerEpoch = l.trainLoader.batchesPerEpoch;
  let { position, accum, bestAcc } = state;
  const history = [...state.history];
  // The epoch's sums over every rank (a collective: every rank calls it at the same step).
  const total = (a: EpochAccum): EpochAccum => {
    const [lossSum, correct, seen] = ranks.sum([a.lossSum, a.correct, a.seen]);
    return { lossSum: lossSum!, correct: correct!, seen: seen!, seconds: a.seconds };
  };
  // The checkpoint in the folder, for the messages of a run that stops (a resumed run's own).
  let saved: Position | null = position.globalStep > 0 ? position : null;
  const savedText = () => (saved ? `${join(cfg.out, 'last.safetensors')} holds the checkpoint of epoch ${saved.epoch + 1} step ${saved.step}`
    : 'no checkpoint was written');
  // Weights are checked before every write: a checkpoint or best.safetensors never holds NaN or
  // Inf. Every rank checks (BatchNorm buffers differ between ranks), so all stop together.
  const checkFinite = (where: string) => {
    const bad = nonFiniteTensors(model.stateDict());
    if (ranks.sum([bad.length])[0]! === 0) return;
    throw new CliError(`the model's weights hold NaN or Inf ${where} (${bad.length ? listSome(bad) : 'on another rank'}); ` +
      `they were not saved: ${savedText()}. Lower --lr (${cfg.lr})`);
  };
  // Rank 0 writes the checkpoint, with the epoch's sums so far over every rank; on resume rank 0
  // starts from them and the other ranks from zero, so the epoch's sums stay exact. `checked`:
  // the weights were checked since the last step (the epoch's end checks them before evaluating).
  const checkpoint = async (checked = false) => {
    const sums = total(accum);
    if (!checked) checkFinite(`at epoch ${position.epoch + 1} step ${position.step}`);
    if (ranks.writer) {
      await saveCheckpoint(cfg.out, model.stateDict(), optimizer.stateDict(),
        { config: cfg, position, accum: sums, bestAcc, history, scheduler: scheduler?.stateDict() ?? null,
          scaler: scaler.isEnabled() ? scaler.stateDict() as GradScalerStateDict : null }, architectureMetadata(cfg, model));
    }
    saved = position;
  };
  let lastFinite: { loss: number; epoch: number; step: number } | null = null;

  for (let epoch = position.epoch; epoch < cfg.epochs; epoch++) {
    const start = epoch === position.epoch ? position.step : 0;
    if (start === 0) accum = freshAccum();
    l.trainLoader.setEpoch(epoch);
    net.train();
    // --freeze-bn: BatchNorms normalise with their running statistics and leave them unchanged.
    if (cfg.freezeBn) for (const m of model.modules()) if (m instanceof BatchNormBase) m.eval();
    let t0 = performance.now();
    let step = start;
    l.progress.startEpoch(epoch + 1, stepsPerEpoch * cfg.batchSize);
    let skipped = 0;
    for await (const b of l.trainLoader.batches(start)) {
      const { loss, correct } = tidy(() => {
        // A skipped step keeps nothing of its batch: the forward folds the batch's statistics
        // into BatchNorm's running buffers, so they are copied first and put back on a skip.
        const buffers = cfg.onNan === 'skip' ? model.buffers() : [];
        const before = buffers.map((t) => t.clone());
        optimizer.zeroGrad();
        const [logits, lossT] = autocast(amp, () => {
          const y = net.call(b.x) as Tensor;
          return [y, criterion.call(y, b.y)] as const;
        });
        scaler.scale(lossT).backward();
        // A step whose loss is not finite updates nothing (its gradients are zeroed at the next
        // step). The ranks agree on it: DDP's all-reduce already ran in every rank's backward.
        const value = lossT.item();
        if (ranks.sum([Number.isFinite(value) ? 0 : 1])[0]! > 0) {
          noGrad(() => buffers.forEach((t, i) => copy_(t, before[i]!)));
          return { loss: NaN, correct: 0 };
        }
        scaler.step(optimizer);
        scaler.update();
        return { loss: value, correct: predictions(logits, b.y).correct };
      });
      // The schedule advances on skipped steps too: its length stays the run's step count.
      scheduler?.step();
      const n = b.indices.length;
      b.x.dispose();
      b.y.dispose();
      if (Number.isNaN(loss)) {
        if (cfg.onNan === 'stop') {
          const last = lastFinite ? `the last finite loss was ${lastFinite.loss.toPrecision(4)} at epoch ${lastFinite.epoch + 1} step ${lastFinite.step}`
            : 'no step of this process had a finite loss';
          throw new CliError(`the training loss is not finite at epoch ${epoch + 1} step ${step + 1} of ${stepsPerEpoch}; ${last}. ` +
            `Stopped before that step's update; ${savedText()}. Lower --lr (${cfg.lr}), or pass --on-nan skip to skip such steps`);
        }
        skipped++;
      } else {
        lastFinite = { loss, epoch, step: step + 1 };
        accum.lossSum += loss * n;
        accum.correct += correct;
        accum.seen += n;
      }
      step++;
      position = { epoch, step, globalStep: position.globalStep + 1 };
      const now = performance.now();
      accum.seconds += (now - t0) / 1000;
      t0 = now;
      const saving = position.globalStep % cfg.checkpointEvery === 0 && step < stepsPerEpoch;
      l.progress.update(step * cfg.batchSize, accum.lossSum / accum.seen, accum.correct / accum.seen);
      if (saving) {
        await checkpoint();
        l.progress.log(`checkpoint: epoch ${epoch + 1} step ${step}/${stepsPerEpoch} -> ${join(cfg.out, 'last.safetensors')}`);
        t0 = performance.now();
      }
    }
    if (skipped > 0) {
      if (skipped === step - start) throw new CliError(`every step of epoch ${epoch + 1} had a non-finite loss and was skipped; ${savedText()}`);
      l.progress.log(`warning: skipped ${skipped} of ${step - start} steps of epoch ${epoch + 1} whose loss was NaN or Inf (--on-nan skip)`);
    }
    checkFinite(`after epoch ${epoch + 1}`);
    const local = await evaluate(model, l.valLoader, l.numClasses, l.valCount);
    const [valLoss, valCorrect, valSeen] = ranks.sum([local.lossSum, local.correct, local.samples]);
    const val = { loss: valLoss! / valSeen!, acc: valCorrect! / valSeen! };
    const sums = total(accum);
    const row: EpochRow = {
      epoch: epoch + 1,
      train_loss: sums.lossSum / sums.seen,
      train_acc: sums.correct / sums.seen,
      val_loss: val.loss,
      val_acc: val.acc,
      lr: optimizer.paramGroups[0]!.lr,
      seconds: accum.seconds,
      images_per_s: sums.seen / accum.seconds,
    };
    history.push(row);
    const improved = val.acc > bestAcc;
    if (improved) bestAcc = val.acc;
    if (improved && ranks.writer) {
      await saveSafetensors(join(cfg.out, 'best.safetensors'), model.stateDict(),
        { epoch: String(epoch + 1), val_acc: String(val.acc), ...architectureMetadata(cfg, model) });
    }
    position = { epoch: epoch + 1, step: 0, globalStep: position.globalStep };
    accum = freshAccum();
    await checkpoint(true);
    if (ranks.writer) {
      await writeMetrics(cfg.out, history);
      await plotPng(history, join(cfg.out, 'plot.png'), { title: `${cfg.model} on ${cfg.dataset}` });
    }
    l.progress.epochEnd({
      epoch: epoch + 1, trainLoss: row.train_loss, trainAcc: row.train_acc, valLoss: row.val_loss, valAcc: row.val_acc, best: improved,
    });
    l.progress.log(`  ${row.images_per_s.toFixed(1)} img/s over ${row.seconds.toFixed(1)} s of training; lr now ${row.lr.toPrecision(3)}`);
  }
  return { position, accum, bestAcc, history };
}
