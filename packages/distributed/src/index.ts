/**
 * @nodegrad/distributed: torch.distributed for nodegrad. Process groups on MPI (collectives bound
 * in @nodegrad/native), and the collectives themselves.
 */
export {
  destroyProcessGroup, getRank, getWorldSize, initProcessGroup, isInitialized, Work,
  type DistBackend, type InitOptions, type ProcessGroup,
} from './process_group.js';
export {
  allGather, allGatherAsync, allGatherInto, allGatherIntoAsync, allReduce, allReduceAsync, allReduceCoalesced,
  allReduceCoalescedAsync, barrier, barrierAsync, broadcast, broadcastAsync, broadcastCoalesced, broadcastCoalescedAsync,
  reduceScatter, reduceScatterAsync,
  type ReduceOp,
} from './collectives.js';
export { convertSyncBatchNorm, SyncBatchNorm } from './sync_batch_norm.js';
export { DistributedDataParallel, type DDPOptions } from './ddp.js';
