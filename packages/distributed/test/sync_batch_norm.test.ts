// SyncBatchNorm on 2 ranks (test/ranks/sync_bn.ts under mpirun) against BatchNorm2d on the
// concatenated batch: outputs, input gradients, weight and bias gradients averaged over ranks as
// DDP does, running statistics and num_batches_tracked after two steps, in float64 to 1e-10 on
// 'ts' (batches 3 and 5, an empty rank, one value per channel per rank, momentum null), in
// float32 on 'cpu' to 1e-5, and with bfloat16 input beside float32 parameters (autocast's mix) to
// 2e-2 (a few bfloat16 steps: the two sides round the same statistics' results differently); the
// float32 cases also on a device both ranks share ('cuda-emu'; 'cuda:0' in the GPU kit). Also:
// eval without communication, and world size 1 as BatchNorm2d.
import { describe, expect, it } from 'vitest';
import { fromTypedArray, noGrad } from '@nodegrad/autograd';
import { convertSyncBatchNorm, SyncBatchNorm } from '@nodegrad/distributed';
import { BatchNorm2d, resnet18 } from '@nodegrad/nn';
import { describeOnDevice, mpiMissing, mpirun, type RankRun } from './mpirun.js';

const missing = mpiMissing();
const skipMpi = missing !== '' && process.env.NODEGRAD_REQUIRE_MPI !== '1';

interface CaseResult { worst: Record<string, number>; scale: Record<string, number>; numBatchesTracked: number[] }

/** Every rank's report of ranks/sync_bn.ts: these cases, each within its dtype's tolerance of BatchNorm2d on the whole batch. */
function expectCases(run: RankRun, names: string[]): void {
  expect(run.status, run.stderr).toBe(0);
  expect(run.ranks).toHaveLength(2);
  for (const [rank, got] of run.ranks.entries()) {
    const cases = Object.entries(got).filter(([k]) => !['rank', 'eval', 'loaded'].includes(k)) as [string, CaseResult][];
    expect(cases.map(([k]) => k)).toEqual(names);
    for (const [name, r] of cases) {
      const tol = name.startsWith('float32') ? 1e-5 : name.startsWith('bfloat16') ? 2e-2 : 1e-10;
      for (const [what, err] of Object.entries(r.worst)) {
        expect(err, `rank ${rank}, ${name}: ${what}`).toBeLessThanOrEqual(tol * Math.max(1, r.scale[what]!));
      }
      // Non-trivial values, except the empty rank's own rows.
      const empty = name.includes('an empty rank') && rank === 0;
      for (const what of ['weight grad', 'bias grad', 'running_var']) expect(r.scale[what]).toBeGreaterThan(0.5);
      if (!empty) for (const what of ['output', 'input grad']) expect(r.scale[what]).toBeGreaterThan(0.05);
      expect(r.numBatchesTracked).toEqual([2, 2]);
    }
  }
}

(skipMpi ? describe.skip : describe)(`SyncBatchNorm on 2 ranks${skipMpi ? ` (skipped: ${missing})` : ''}`, () => {
  it('matches BatchNorm2d on the whole batch, forward and backward, running statistics included', async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/sync_bn.ts');
    expectCases(run, ['batches 3 and 5', 'an empty rank', 'one value per channel per rank',
      'cumulative average (momentum null)', "float32 on 'cpu'", "bfloat16 input, float32 parameters on 'cpu'"]);
    // Running mean 0, variance 1, eps 1e-5: x / sqrt(1 + 1e-5), on rank 1 alone.
    expect(run.ranks[1]!.eval).toEqual([1, 2, 3, 4].map((v) => v / Math.sqrt(1 + 1e-5)));
  });
});

// Both ranks on one device, its tensors crossing the 'mpi' group through host copies: 'cuda-emu'
// here, 'cuda:0' in the GPU kit.
for (const device of ['cuda-emu', 'cuda:0']) {
  describeOnDevice(device, 'SyncBatchNorm on 2 ranks sharing one device', () => {
    it(`matches BatchNorm2d on the whole batch in float32 on '${device}'`, async () => {
      const run = await mpirun(2, 'packages/distributed/test/ranks/sync_bn.ts', { NODEGRAD_RANK_DEVICES: device });
      expectCases(run, [`float32 on '${device}'`, `float32 on '${device}', an empty rank`,
        ...(device === 'cuda-emu' ? [] : [`bfloat16 input, float32 parameters on '${device}'`])]);
    });
  });
}

describe('SyncBatchNorm in one process', () => {
  it('without a process group it is BatchNorm2d: same outputs and running statistics', () => {
    const opts = { device: 'ts', dtype: 'float64' } as const;
    const x = fromTypedArray(Float64Array.from({ length: 24 }, (_, i) => Math.sin(i) * 3), [2, 3, 2, 2], opts);
    const bn = new BatchNorm2d(3, opts), sync = new SyncBatchNorm(3, opts);
    expect(Array.from(sync.call(x).toTypedArray())).toEqual(Array.from(bn.call(x).toTypedArray()));
    expect(Array.from(sync.running_var!.toTypedArray())).toEqual(Array.from(bn.running_var!.toTypedArray()));
  });

  it('convertSyncBatchNorm replaces every BatchNorm2d, keeping the tensors, names and mode', () => {
    const model = resnet18({ numClasses: 10 });
    const before = model.stateDict();
    model.eval();
    const converted = convertSyncBatchNorm(model);
    expect(converted).toBe(model);
    expect(model.modules().filter((m) => m instanceof BatchNorm2d)).toHaveLength(0);
    expect(model.modules().filter((m) => m instanceof SyncBatchNorm)).toHaveLength(20);
    const after = model.stateDict();
    expect(Object.keys(after)).toEqual(Object.keys(before));
    expect(model.modules().every((m) => !m.training)).toBe(true);
    // The very same tensors: an optimizer built before the conversion still updates the model.
    const bn1 = model.bn1 as SyncBatchNorm;
    expect(model.parameters()).toContain(bn1.weight);
    noGrad(() => bn1.running_mean!.fill_(0.5));
    expect(model.stateDict()['bn1.running_mean']!.toTypedArray()[0]).toBe(0.5);
  });

  it('rejects an input of fewer than 2 dimensions', () => {
    expect(() => new SyncBatchNorm(3).call(fromTypedArray(Float32Array.from([1, 2, 3]), [3])))
      .toThrow('SyncBatchNorm: expected at least 2D input (got 1D input of shape [3])');
  });
});
