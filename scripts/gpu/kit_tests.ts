/**
 * The GPU kit's test program: the repository's parity and golden suites, bundled with
 * mini_test.ts for 'vitest', run on every registered 'cuda:N' device (tests whose name carries no
 * CUDA device are left out: their backends are checked in CI), or on the devices named in
 * NODEGRAD_KIT_DEVICES (e.g. 'cpu', to check the kit itself on a machine without a GPU), and of
 * those only the tests whose name contains NODEGRAD_KIT_MATCH when it is set, and none whose name
 * contains one of the comma-separated NODEGRAD_KIT_EXCLUDE. Writes
 * $OUT/tests.json and prints a line per test (run.sh keeps them as tests.log).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backends, setDefaultDevice } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native';
import { run } from './mini_test.js';
// Every suite written with describeBackends, and the goldens: importing registers them.
import '../../packages/autograd/test/ops_backends.test.js';
import '../../packages/autograd/test/ops_backends_shape.test.js';
import '../../packages/autograd/test/ops_backends_nn.test.js';
import '../../packages/autograd/test/contract.test.js';
import '../../packages/autograd/test/contract_dtypes.test.js';
import '../../packages/autograd/test/contract_matmul_conv.test.js';
import '../../packages/autograd/test/contract_norm.test.js';
import '../../packages/autograd/test/contract_pool.test.js';
import '../../packages/autograd/test/batch_norm_parts.test.js';
import '../../packages/autograd/test/gradcheck.test.js';
import '../../packages/autograd/test/autocast.test.js';
import '../../packages/nn/test/layers.test.js';
import '../../packages/nn/test/batch_norm_count.test.js';
import '../../packages/nn/test/amp.test.js';
import '../../packages/nn/test/train_fuse.test.js';
import '../../native/test/host_roundtrips.test.js';
import '../../native/test/optim_fused.test.js';
import '../../native/test/amp_unscale.test.js';
import '../../native/test/half_ops.test.js';
import '../../packages/distributed/test/nccl.test.js';
import '../../native/test/resnet_golden_cuda.test.js';
// Two ranks sharing the GPU through the 'mpi' group, under the kit's own Open MPI (run.sh): last,
// as each waits on mpirun, so that a stall there cannot cost the suites above their results.
import '../../packages/distributed/test/collectives.test.js';
import '../../packages/distributed/test/sync_batch_norm.test.js';
import '../../packages/distributed/test/ddp.test.js';

setDefaultDevice('ts');
// The suites hold float32 results to float32's tolerances and compare repeated runs bit for bit:
// no TF32 convolutions (cuDNN's default, as PyTorch's) and deterministic algorithms. The
// benchmarks keep the defaults.
if (cuda.isAvailable()) {
  cuda.setAllowTF32({ cudnn: false });
  cuda.setDeterministic(true);
}
const out = process.env.OUT ?? '.';
const devices = process.env.NODEGRAD_KIT_DEVICES?.split(',')
  ?? backends().filter((b) => b.name.startsWith('cuda:') && b.available).map((b) => b.name);
console.log(`kit tests: devices ${devices.join(', ') || 'none'}${cuda.isAvailable() ? '' : ` (cuda unavailable: ${cuda.reason()})`}`);
const exclude = process.env.NODEGRAD_KIT_EXCLUDE?.split(',').filter((s) => s !== '') ?? [];
const t0 = performance.now();
const r = devices.length === 0 ? { passed: 0, failed: 0, skipped: 0, failures: [] }
  : await run((l) => console.log(l), (name) => devices.some((d) => name.includes(`[${d}]`) || name.includes(`'${d}'`))
    && name.includes(process.env.NODEGRAD_KIT_MATCH ?? '') && !exclude.some((s) => name.includes(s)));
const summary = { devices, ...r, seconds: (performance.now() - t0) / 1000 };
writeFileSync(join(out, 'tests.json'), JSON.stringify(summary, null, 2));
console.log(`kit tests: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped in ${summary.seconds.toFixed(1)} s`);
process.exitCode = r.failed > 0 ? 1 : 0;
