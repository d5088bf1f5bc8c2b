/**
 * `nodegrad train --nproc N`: the command runs itself again as N ranks under mpirun (the same
 * flags, the output folder fixed first so that every rank writes to one). Each rank then joins
 * the process group, trains its share of each batch (DistributedSampler) through
 * DistributedDataParallel, optionally with SyncBatchNorm, and sums its metrics with the others;
 * rank 0 alone prints and writes files.
 */
import { tensor } from '@nodegrad/autograd';
import { allReduce, convertSyncBatchNorm, DistributedDataParallel, initProcessGroup } from '@nodegrad/distributed';
import type { Module } from '@nodegrad/nn';
import { CliError } from '../args.js';
import { runRanks } from '../mpirun.js';
import type { TrainConfig } from './config.js';

/** Whether this process is a rank of an mpirun job. */
export function insideJob(): boolean {
  return process.env.OMPI_COMM_WORLD_SIZE !== undefined;
}

/**
 * Runs this command line as cfg.nproc ranks; resolves to the job's exit code. `fixOut`: the
 * command line named no folder, so the one chosen here is added for every rank.
 */
export function relaunch(cfg: TrainConfig, argv: readonly string[], fixOut: boolean): Promise<number> {
  const args = fixOut ? [...argv, '--out', cfg.out] : [...argv];
  return runRanks(cfg.nproc, null, [...process.execArgv, process.argv[1]!, 'train', ...args]);
}

/** This rank's place in the job, and the sum over ranks. */
export interface Ranks {
  rank: number;
  worldSize: number;
  /** Rank 0: prints, and writes the output folder. */
  writer: boolean;
  /** Element-wise sums of `values` over every rank (one all-reduce; identity for one rank). */
  sum(values: number[]): number[];
  /** This rank's device when it is not the run's (a 'cuda' run: the GPU of the local rank). */
  device?: string;
}

export const SINGLE: Ranks = { rank: 0, worldSize: 1, writer: true, sum: (v) => v };

/**
 * Joins the job's process group; the world must be the run's --nproc. A 'cuda' run takes NCCL,
 * each rank on the GPU of its local rank (`device`); a host run takes MPI.
 */
export function joinJob(cfg: TrainConfig): Ranks {
  const cudaRun = cfg.device.startsWith('cuda:');
  const pg = initProcessGroup({ backend: cudaRun ? 'nccl' : 'mpi' });
  if (pg.worldSize !== cfg.nproc) {
    throw new CliError(`this run is for --nproc ${cfg.nproc} but mpirun started ${pg.worldSize} processes`);
  }
  return {
    rank: pg.rank, worldSize: pg.worldSize, writer: pg.rank === 0, device: cudaRun ? `cuda:${pg.localRank}` : cfg.device,
    sum: (v) => Array.from(allReduce(tensor(v, { device: 'ts', dtype: 'float64' }), 'sum').toTypedArray()),
  };
}

/** The module each step runs: the model wrapped in DDP (and its BatchNorms synced with --sync-bn). */
export function parallelModel<M extends Module>(cfg: TrainConfig, model: M): { model: M; forward: Module } {
  const m = cfg.syncBn ? convertSyncBatchNorm(model) : model;
  return { model: m, forward: new DistributedDataParallel(m) };
}
