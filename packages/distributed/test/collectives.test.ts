// The MPI process group's collectives on 2 ranks (test/ranks/collectives.ts under mpirun), on
// 'cpu' and 'ts' tensors and on a device both ranks share ('cuda-emu'; 'cuda:0' in the GPU kit),
// against the values each collective must leave on every rank; and its errors: a singleton world,
// bad arguments, a mismatched collective caught by the debug handshake, and the watchdog timeout.
import { describe, expect, it } from 'vitest';
import { roundBFloat16, roundFloat16 } from '@nodegrad/autograd';
import { describeOnDevice, mpiMissing, mpirun, type RankRun } from './mpirun.js';

const missing = mpiMissing();
const required = process.env.NODEGRAD_REQUIRE_MPI === '1';
const suite = missing && !required ? describe.skip : describe;

/** Every rank's report of ranks/collectives.ts on these devices, against the values each collective must leave. */
function expectCollectives(run: RankRun, devices: string[]): void {
  expect(run.status, run.stderr).toBe(0);
  expect(run.ranks).toHaveLength(2);
  for (const [r, got] of run.ranks.entries()) {
    expect(got.worldSize).toBe(2);
    for (const device of devices) {
      // Rank r holds [r + 1, -2r, 0.5].
      expect(got[`${device} float32 sum`]).toEqual([3, -2, 1]);
      expect(got[`${device} float32 avg`]).toEqual([1.5, -1, 0.5]);
      expect(got[`${device} float32 max`]).toEqual([2, 0, 0.5]);
      expect(got[`${device} float32 min`]).toEqual([1, -2, 0.5]);
      // float64 keeps 1/3 + (1/3 + 1) to the last bit, and 4e300 - 4e300 = 0 without overflow.
      expect(got[`${device} float64 sum`]).toEqual([1 / 3 + (1 / 3 + 1), 4, 6, 0]);
      expect(got[`${device} int64 sum`]).toEqual([2 * 2 ** 40 + 1, -14]);
      expect(got[`${device} int32 max`]).toEqual([1, 0]);
      // Rank 0 holds [NaN, 1, NaN, -3], rank 1 [2, NaN, NaN, -4].
      for (const dtype of device === 'cuda-emu' ? ['float32', 'float64'] : ['float32', 'float64', 'bfloat16']) {
        expect(got[`${device} ${dtype} max with NaN`], dtype).toEqual([2, 1, 'NaN', -3]);
        expect(got[`${device} ${dtype} min with NaN`], dtype).toEqual([2, 1, 'NaN', -4]);
      }
      expect(got[`${device} reduceScatter max with NaN`]).toEqual(r === 0 ? [1] : [5]);
      // Rank r holds [r + 1, 0.1 (r + 1), 300 + r] rounded to the type; sums in float32, rounded once.
      const rank0 = [1, 0.1, 300], rank1 = [2, 0.2, 301];
      const half = (round: (v: number) => number, scale: number) =>
        rank0.map((v, i) => round((round(v) + round(rank1[i]!)) * scale));
      if (device !== 'cuda-emu') { // it holds no half types
        expect(got[`${device} bfloat16 sum`]).toEqual({ dtype: 'bfloat16', values: half(roundBFloat16, 1) });
        expect(got[`${device} float16 avg`]).toEqual({ dtype: 'float16', values: half(roundFloat16, 0.5) });
      }
      expect(got[`${device} broadcast from 1`]).toEqual([1, 11]);
      expect(got[`${device} broadcastCoalesced from 1`]).toEqual([[1, 11], [[2]]]);
      expect(got[`${device} allGatherInto`]).toEqual([[0, 0], [1, -1]]);
      expect(got[`${device} allGather`]).toEqual([
        { shape: [1, 2], values: [0, 0], device },
        { shape: [2, 2], values: [10, 0, 11, -1], device },
      ]);
      // Sum over ranks of (r + 1) [[1, 2], [3, 4]] = 3 [[1, 2], [3, 4]]; rank r keeps row r.
      expect(got[`${device} reduceScatter`]).toEqual(r === 0 ? [3, 6] : [9, 12]);
      // Rank r's base is (r + 1) [1, 2, 3, 4]; its slice [1:3] is summed over ranks.
      expect(got[`${device} float32 allReduce into a slice`]).toEqual([r + 1, 6, 9, 4 * (r + 1)]);
      expect(got[`${device} int64 allReduce into a slice`]).toEqual([r + 1, 6, 9, 4 * (r + 1)]);
      expect(got[`${device} allGatherInto a slice`]).toEqual([[0, 0], [1, 0], [2, -1]]);
      expect(got[`${device} allReduceCoalesced into a slice`]).toEqual([r + 1, 6, 9]);
      // The base [1, 2, 3, 4] times r + 1 after slicing [0:2]: the slice sums [1, 2] + [2, 4].
      expect(got[`${device} allReduce into a slice of a changed base`]).toEqual([[3, 6], [3, 6, 3 * (r + 1), 4 * (r + 1)]]);
      expect(got[`${device} allReduce into a view of a slice`]).toEqual([r + 1, 2 * (r + 1), 9, 12, 15, 18]);
    }
    expect(got['dropped float16 work']).toEqual([3]);
    if (!devices.some((d) => d.startsWith('cuda'))) {
      expect(got['tidy: gathered input']).toEqual([[4096, 1, 1], [4096, 2, 2]]);
      expect(got['tidy: dropped work, a tensor made after']).toEqual([7, 7, 999]);
      expect(got['tidy: float16 work']).toEqual([3, 3, 3, 3]);
      expect(got['tidy: dropped work into a slice']).toEqual([2, 4, 3, 4]);
    }
    expect(got['async in order']).toEqual([[3], [6], [9]]);
    if (!devices.some((d) => d.startsWith('cuda'))) {
      expect(got['dropped work'], `rank ${r}`).toEqual([3]);
      if (r === 0) expect(got['dropped work released']).toBe(true);
    }
    // Where OPAL_PREFIX moves Open MPI (the GPU kit carries its own), the ranks ran that one.
    const prefix = process.env.OPAL_PREFIX;
    if (prefix) for (const [lib, file] of Object.entries(got.loaded as object)) expect(String(file), `rank ${r}'s ${lib}`).toMatch(prefix);
  }
}

suite(`the 'mpi' process group on 2 ranks${missing && !required ? ` (skipped: ${missing})` : ''}`, () => {
  it('MPI is built and mpirun runs (NODEGRAD_REQUIRE_MPI)', () => {
    expect(missing).toBe('');
  });

  it('allReduce, broadcast, allGather (unequal sizes), reduceScatter and async works, on cpu and ts', async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/collectives.ts');
    expectCollectives(run, ['cpu', 'ts']);
  });

  it('alone (no mpirun) a process is rank 0 of 1; arguments are checked, naming the collective', async () => {
    const run = await mpirun(0, 'packages/distributed/test/ranks/errors.ts', { CASE: 'singleton' });
    expect(run.status, run.stderr).toBe(0);
    expect({ ...run.ranks[0], loaded: undefined }).toEqual({
      beforeInit: 'getRank: the default process group is not initialized; call initProcessGroup() first',
      rank: 0, worldSize: 1, sum: [1.5, 2], gather: [[1, 2]],
      badOp: "allReduce: op must be one of 'sum', 'avg', 'max', 'min', got prod",
      badSrc: 'broadcast: src 1 is not a rank of a world of 1',
      badScatter: "reduceScatter: 'input' ([]) must have a first dimension divisible by the world size 1",
      rawCounts: 'allGather: the counts add up to 3 elements, the output has 2',
      rawRanks: 'allGather: 2 counts for a world of 1 ranks',
      staged: [[2.5], 'cuda-emu'],
      nccl: "initProcessGroup: already initialized with backend 'mpi'",
    });
  });

  it('with the debug handshake, a shape, list length, op, src or collective that differs across ranks is an error on both, naming the other rank', async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/errors.ts', { CASE: 'mismatch' });
    expect(run.status, run.stderr).toBe(0);
    // What each rank's error says, rank 0's then rank 1's, per mismatch.
    const want: Record<string, [string, string]> = {
      error: ['allReduce on rank 0: shape [3] here, [2] on rank 1', 'allReduce on rank 1: shape [2] here, [3] on rank 0'],
      countError: ['allReduceCoalesced on rank 0: 2 tensors here, 1 on rank 1', 'allReduceCoalesced on rank 1: 1 tensor here, 2 on rank 0'],
      opError: ["allReduce on rank 0: op 'sum' here, op 'max' on rank 1", "allReduce on rank 1: op 'max' here, op 'sum' on rank 0"],
      srcError: ['broadcastCoalesced on rank 0: src 0 here, src 1 on rank 1', 'broadcastCoalesced on rank 1: src 1 here, src 0 on rank 0'],
      collectiveError: ['barrier on rank 0: rank 1 issued allReduce at this point', 'allReduce on rank 1: rank 0 issued barrier at this point'],
    };
    for (const [key, messages] of Object.entries(want)) expect(run.ranks.map((o) => o[key]), key).toEqual(messages);
    expect(run.ranks.map((o) => o.after)).toEqual([[3], [3]]); // the group is still in step
  });

  // The rank with no batch would have joined the gather alone, and waited there until the timeout.
  it("a SyncBatchNorm dtype the device cannot normalize is an error on every rank, an empty batch's too", async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/errors.ts', { CASE: 'syncbn' });
    expect(run.status, run.stderr).toBe(0);
    const why = "the 'cpu' backend does not compute batch norm in float64";
    expect(run.ranks.map((o) => o.error)).toEqual([
      `SyncBatchNorm: ${why} (input of shape [3, 2]); it computes it in float32, bfloat16, float16`,
      `SyncBatchNorm: ${why} (input of shape [0, 2]); it computes it in float32, bfloat16, float16`,
    ]);
    expect(run.ranks.map((o) => o.after)).toEqual([[3], [3]]); // the group is still in step
  });

  it('a collective another rank never joins times out with an error, and the job ends as failed, not hung', async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/errors.ts', { CASE: 'timeout' });
    expect(run.ranks[0]!.error).toMatch(/^allReduce on rank 0 did not finish within 300 ms: another rank died/);
    expect(run.status).not.toBe(0); // rank 0 left without MPI_Finalize: mpirun calls the job failed
    expect(run.ms).toBeLessThan(20_000);
  });
});

// A device's tensors cross an 'mpi' group through host copies: on 'cuda-emu' here, and on 'cuda:0'
// shared by both ranks in the GPU kit (NCCL refuses two ranks on one GPU).
for (const device of ['cuda-emu', 'cuda:0']) {
  describeOnDevice(device, "the 'mpi' process group on 2 ranks sharing one device", () => {
    it(`collectives on '${device}' tensors through host copies`, async () => {
      expectCollectives(await mpirun(2, 'packages/distributed/test/ranks/collectives.ts', { NODEGRAD_RANK_DEVICES: device }), [device]);
    });
  });
}
