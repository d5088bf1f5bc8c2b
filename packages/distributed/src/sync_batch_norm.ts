/**
 * SyncBatchNorm: batch normalization whose training statistics cover the batch of every rank, as
 * torch.nn.SyncBatchNorm (torch/nn/modules/_functions.py), on the split batch-norm kernels. In
 * training with a world larger than 1, each rank computes its own mean and invstd; one all-gather
 * of a (mean, invstd, count) row per rank gives every rank the global statistics (ranks with an
 * empty batch join it with count 0 and are left out of the combination); the running variance
 * uses the global unbiased count. Backward all-reduces (sum dy, sum dy (x - mean)) in one collective. In
 * eval, or with one rank, it is exactly BatchNorm2d. Weight and bias gradients stay local: DDP
 * averages them with the rest. A half-type input (autocast's convolution output) has float32
 * statistics, as the batch-norm kernels give it, and they cross ranks in float32.
 */
import {
  batchNormBackwardElemt, batchNormBackwardReduce, batchNormElemt, batchNormGatherStats, batchNormStats,
  batchNormUpdateRunning_, cat, defineFunction, fmt, full, narrow, opmathType, supports, tensor, zeros, zerosLike, type Ctx,
  type DType, type Tensor,
} from '@nodegrad/autograd';
import { BatchNormBase, type Module } from '@nodegrad/nn';
import { allGatherInto, allReduce } from './collectives.js';
import { getWorldSize, isInitialized } from './process_group.js';

interface SyncOptions {
  eps: number;
  /** The running statistics to update (null: none), their counter, and the batch's weight. */
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  counter: Tensor | null;
  momentum: number | null;
}

/** The dtype and device of the per-channel statistics: float32 for a half input, else x's. */
function statsOptions(x: Tensor): { device: string; dtype: DType } {
  return { device: x.device, dtype: opmathType(x.dtype) };
}

interface SyncState { mean: Tensor; invstd: Tensor; total: number; hasWeight: boolean; hasBias: boolean }

const syncBatchNorm = defineFunction({
  name: 'SyncBatchNorm',
  forward(ctx: Ctx<SyncState>, x: Tensor, weight: Tensor | null, bias: Tensor | null, o: SyncOptions): Tensor {
    const C = x.shape[1]!;
    const local = x.size / C;
    const opts = statsOptions(x);
    // Every rank refuses a dtype its device cannot normalize, an empty batch too: one that only
    // joined the gather would wait there for ranks whose kernel threw.
    if (!supports(x.backend, 'BatchNormStats', x.dtype)) {
      throw new Error(`SyncBatchNorm: the '${x.device}' backend does not compute batch norm in ${x.dtype} ` +
        `(input of shape ${fmt(x.shape)}); it computes it in ${x.backend.dtypes.norm.join(', ')}`);
    }
    const own = local > 0 ? batchNormStats(x, o.eps) : { mean: zeros([C], opts), invstd: zeros([C], opts) };
    // One collective: a row [mean, invstd, count] from every rank; the counts read back at once.
    const W = getWorldSize();
    const rows = allGatherInto(zeros([W, 2 * C + 1], opts), cat([own.mean, own.invstd, full([1], local, opts)]));
    const counts = Array.from(narrow(rows, 1, 2 * C, 1).toTypedArray());
    const total = counts.reduce((a, b) => a + b, 0);
    if (total <= 1) {
      throw new Error(`SyncBatchNorm: Expected more than 1 value per channel when training, got input of shape ${fmt(x.shape)} ` +
        `and ${total} value${total === 1 ? '' : 's'} per channel over all ${W} ranks`);
    }
    // Ranks with no batch have no statistics (invstd 0): PyTorch masks them out the same way.
    const live = counts.every((n) => n > 0) ? rows : cat(counts.flatMap((n, r) => (n > 0 ? [narrow(rows, 0, r, 1)] : [])));
    const { mean, invstd } = batchNormGatherStats(narrow(live, 1, 0, C), narrow(live, 1, C, C),
      tensor(counts.filter((n) => n > 0), opts), o.eps);
    if (o.runningMean && o.runningVar && o.momentum !== null) {
      batchNormUpdateRunning_(o.runningMean, o.runningVar, mean, invstd,
        { count: total, momentum: o.momentum, eps: o.eps, numBatchesTracked: o.counter });
    }
    ctx.save(x);
    if (weight) ctx.save(weight);
    Object.assign(ctx, { mean: ctx.keep(mean), invstd: ctx.keep(invstd), total, hasWeight: !!weight, hasBias: !!bias });
    return local > 0 ? batchNormElemt(x, weight, bias, mean, invstd) : zerosLike(x);
  },
  backward(ctx: Ctx<SyncState>, dy: Tensor) {
    const [x, weight = null] = ctx.saved as [Tensor, Tensor?];
    const C = x.shape[1]!;
    const { mean, invstd, total } = ctx;
    const local = x.size > 0 ? batchNormBackwardReduce(dy, x, mean, invstd) : null;
    const none = () => zeros([C], statsOptions(x));
    let dx: Tensor | null = null;
    // As PyTorch: the sums cross ranks only for the input's gradient, which every rank needs alike.
    if (ctx.needsInputGrad[0]) {
      const sums = allReduce(cat([local?.sumDy ?? none(), local?.sumDyXmu ?? none()]), 'sum');
      dx = x.size > 0
        ? batchNormBackwardElemt(dy, x, mean, invstd, weight, narrow(sums, 0, 0, C), narrow(sums, 0, C, C), total)
        : zerosLike(x);
    }
    // Parameters of another dtype than the statistics (bfloat16 ones beside bfloat16 input) get theirs.
    const param = (g: Tensor | undefined) => (g ?? none()).to(weight?.dtype ?? x.dtype);
    return [dx, ctx.hasWeight ? param(local?.dweight) : null, ctx.hasBias ? param(local?.dbias) : null];
  },
});

/**
 * Batch normalization with statistics over every rank of the default process group.
 * @example const model = convertSyncBatchNorm(resnet18()); // then wrap in DistributedDataParallel
 */
export class SyncBatchNorm extends BatchNormBase {
  protected override checkInputDim(x: Tensor): void {
    if (x.ndim < 2) throw new Error(`SyncBatchNorm: expected at least 2D input (got ${x.ndim}D input of shape ${fmt(x.shape)})`);
  }

  override forward(x: Tensor): Tensor {
    this.checkInputDim(x);
    if (!this.training || !isInitialized() || getWorldSize() === 1) return super.forward(x);
    const update = this.runningUpdate();
    const y = syncBatchNorm(x, this.weight, this.bias, {
      eps: this.eps, runningMean: this.running_mean, runningVar: this.running_var, counter: update.counter,
      momentum: update.momentum,
    });
    update.commit();
    return y;
  }
}

/**
 * Replaces every BatchNorm layer under `module` (and `module` itself) by a SyncBatchNorm holding
 * the same parameter and buffer tensors, options and mode, under the same name, so the state dict
 * is unchanged; returns the module (a new one when `module` itself was a BatchNorm).
 * @example const model = convertSyncBatchNorm(resnet50());
 */
export function convertSyncBatchNorm<M extends Module>(module: M): M {
  if (module instanceof BatchNormBase && !(module instanceof SyncBatchNorm)) return toSync(module) as unknown as M;
  for (const [name, child] of module.namedChildren(false)) module.registerModule(name, convertSyncBatchNorm(child));
  return module;
}

function toSync(bn: BatchNormBase): SyncBatchNorm {
  const like = bn.weight ?? bn.running_mean;
  const sync = new SyncBatchNorm(bn.numFeatures, {
    eps: bn.eps, momentum: bn.momentum, affine: bn.affine, trackRunningStats: bn.trackRunningStats,
    dtype: like?.dtype === 'float64' ? 'float64' : 'float32', device: like?.device,
  });
  sync.registerParameter('weight', bn.weight);
  sync.registerParameter('bias', bn.bias);
  sync.registerBuffer('running_mean', bn.running_mean);
  sync.registerBuffer('running_var', bn.running_var);
  sync.registerBuffer('num_batches_tracked', bn.num_batches_tracked);
  sync.train(bn.training);
  return sync;
}
