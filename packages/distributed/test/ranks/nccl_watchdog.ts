// Run alone by nccl.test.ts (the GPU kit): a one-rank 'nccl' group whose communicator's stream is
// held for 20 s, as a rank that never joins would hold it, then an allReduce and a read of its
// result, which waits on that stream. The watchdog must end this process (status 1, naming the
// collective and rank) at the group's timeout of 500 ms; the report below is never written.
import { tensor } from '@nodegrad/autograd';
import '@nodegrad/native';
import { allReduce, initProcessGroup } from '@nodegrad/distributed';
import { group } from '../../src/process_group.js';
import { report } from './report.js';

initProcessGroup({ backend: 'nccl', timeoutMs: 500 });
const { nccl } = group('watchdog test');
nccl!.addon.stallForTesting(nccl!.comm, 20_000);
const sum = allReduce(tensor([1, 2], { device: nccl!.device }), 'sum');
report({ reached: sum.toArray() });
