/** Batch normalization layers, as torch.nn.BatchNorm2d (buffer names are torch's, for checkpoints). */
import { batchNorm, batchNormFused, defaultDevice, fmt, noGrad, ones, zeros, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { py, pyFloat } from './repr.js';

/** A factory for a normalization layer over `numFeatures` channels (ResNet's injectable normLayer). */
export type NormLayer = (numFeatures: number) => Module;

export interface BatchNormOptions {
  eps?: number;
  /** Weight of the new batch in the running statistics; null for a cumulative average (1 / batches seen). */
  momentum?: number | null;
  /** Learnable per-channel scale `weight` and shift `bias`. */
  affine?: boolean;
  /** Keep running statistics for eval; without them every forward uses batch statistics. */
  trackRunningStats?: boolean;
  dtype?: 'float32' | 'float64';
  device?: string;
}

/**
 * The shared part of the BatchNorm layers (PyTorch's _BatchNorm): parameters `weight`, `bias`;
 * buffers `running_mean`, `running_var`, `num_batches_tracked` (int64 scalar).
 */
export abstract class BatchNormBase extends Module {
  declare weight: Tensor | null;
  declare bias: Tensor | null;
  declare running_mean: Tensor | null;
  declare running_var: Tensor | null;
  declare num_batches_tracked: Tensor | null;
  readonly numFeatures: number;
  readonly eps: number;
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  /**
   * The host's copy of num_batches_tracked, for the buffer tensor and storage version it was last
   * in step with. Each training forward advances both (the buffer on the device, by the update
   * kernel) without reading the buffer back; a write by anything else (loadStateDict, zero_, an
   * assignment) changes the version or the tensor, and the count is then read back once.
   */
  private counted: { buffer: Tensor | null; version: number; value: number } = { buffer: null, version: 0, value: 0 };

  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = opts;
    const name = this.constructor.name;
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`${name}: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    if (!(eps >= 0)) throw new Error(`${name}: eps must be non-negative, got ${eps}`);
    if (momentum !== null && !(momentum >= 0 && momentum <= 1)) {
      throw new Error(`${name}: momentum must be in [0, 1] or null, got ${momentum}`);
    }
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = momentum;
    this.affine = affine;
    this.trackRunningStats = trackRunningStats;
    const t = { dtype: opts.dtype ?? 'float32', device: opts.device ?? defaultDevice() };
    this.registerParameter('weight', affine ? ones([numFeatures], t) : null);
    this.registerParameter('bias', affine ? zeros([numFeatures], t) : null);
    this.registerBuffer('running_mean', trackRunningStats ? zeros([numFeatures], t) : null);
    this.registerBuffer('running_var', trackRunningStats ? ones([numFeatures], t) : null);
    this.registerBuffer('num_batches_tracked',
      trackRunningStats ? zeros([], { dtype: 'int64', device: t.device }) : null);
    this.counted = { buffer: this.num_batches_tracked, version: this.num_batches_tracked?.version ?? 0, value: 0 };
  }

  /** A move (`to()`) copies the count unchanged: the host copy follows it to the new tensor. */
  protected override tensorsMoved(replaced: ReadonlyMap<Tensor, Tensor>): void {
    const c = this.counted;
    const next = c.buffer ? replaced.get(c.buffer) : undefined;
    if (next && c.version === c.buffer!.version) this.counted = { buffer: next, version: next.version, value: c.value };
  }

  /** Batches counted so far: the host copy, read back from the buffer only after an outside write. */
  private batchesTracked(buffer: Tensor): number {
    const c = this.counted;
    if (c.buffer !== buffer || c.version !== buffer.version) {
      this.counted = { buffer, version: buffer.version, value: buffer.item() };
    }
    return this.counted.value;
  }

  /** Running mean 0, running variance 1, no batches seen. */
  resetRunningStats(): void {
    noGrad(() => {
      this.running_mean?.zero_();
      this.running_var?.fill_(1);
      this.num_batches_tracked?.zero_();
    });
    const nbt = this.num_batches_tracked;
    if (nbt) this.counted = { buffer: nbt, version: nbt.version, value: 0 };
  }

  /** Running statistics reset; weight 1, bias 0. */
  resetParameters(): void {
    this.resetRunningStats();
    noGrad(() => {
      this.weight?.fill_(1);
      this.bias?.zero_();
    });
  }

  /** Throws unless the input has the rank this layer expects. */
  protected abstract checkInputDim(x: Tensor): void;

  /**
   * The running statistics' update in this call: the counter to advance (in training with running
   * statistics, else null) and the batch's weight, `commit()`ed once the update is done. As
   * _BatchNorm: momentum null averages over the batches seen, 1 / count with this batch; only then
   * is the count needed on the host, otherwise the counter advances on the device alone.
   */
  protected runningUpdate(): { counter: Tensor | null; momentum: number | null; commit: () => void } {
    const counter = this.training && this.trackRunningStats ? this.num_batches_tracked : null;
    const cumulative = counter !== null && this.momentum === null;
    const count = cumulative ? this.batchesTracked(counter) + 1 : 0;
    return {
      counter,
      momentum: this.momentum ?? (cumulative ? 1 / count : null),
      commit: () => { if (cumulative) this.counted = { buffer: counter, version: counter.version, value: count }; },
    };
  }

  override forward(x: Tensor): Tensor {
    return this.normalize(x, {});
  }

  /**
   * relu?(forward(x) + residual?), the add and the ReLU run in batch norm's own pass
   * (batchNormFused); fuseForTraining's blocks call it. Not through call(): no hooks run.
   */
  forwardFused(x: Tensor, epilogue: { residual?: Tensor | null; relu?: boolean }): Tensor {
    if (this.forward !== BatchNormBase.prototype.forward) {
      throw new Error(`${this.constructor.name}.forwardFused: the layer has a forward of its own, which the fused pass would skip`);
    }
    return this.normalize(x, epilogue);
  }

  private normalize(x: Tensor, epilogue: { residual?: Tensor | null; relu?: boolean }): Tensor {
    this.checkInputDim(x);
    // As _BatchNorm.forward: batch statistics in training or when no running ones are kept; the
    // running ones are updated only in training (and the counter advances on each such call).
    const useBatchStats = this.training || this.running_mean === null;
    const keepRunning = !this.training || this.trackRunningStats;
    const update = this.runningUpdate();
    const opts = { training: useBatchStats, momentum: update.momentum, eps: this.eps, numBatchesTracked: update.counter };
    const [rm, rv] = keepRunning ? [this.running_mean, this.running_var] : [null, null];
    const y = epilogue.residual || epilogue.relu
      ? batchNormFused(x, rm, rv, this.weight, this.bias, { ...opts, ...epilogue })
      : batchNorm(x, rm, rv, this.weight, this.bias, opts);
    update.commit();
    return y;
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${this.momentum === null ? 'None' : pyFloat(this.momentum)}, ` +
      `affine=${py(this.affine)}, track_running_stats=${py(this.trackRunningStats)}`;
  }
}

/**
 * Batch normalization over the channels of an NCHW input.
 * @example new BatchNorm2d(64, { momentum: null })
 */
export class BatchNorm2d extends BatchNormBase {
  protected override checkInputDim(x: Tensor): void {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected 4D input (got ${x.ndim}D input of shape ${fmt(x.shape)})`);
  }
}
