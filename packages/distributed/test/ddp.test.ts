// DistributedDataParallel on 2 ranks (test/ranks/ddp.ts under mpirun): five SGD-momentum steps of
// a small ResNet with SyncBatchNorm, batch B per rank, equal one process with BatchNorm2d and
// batch 2B: parameters to 1e-10 in float64 on 'ts' and to 1e-5 (relative to the largest
// parameter) in float32 on 'cpu'; the same with noSync over 2 micro-batches, and with two
// forwards before one backward. Also the error naming parameters that got no gradient, and
// findUnusedParameters. The float32 runs at batch 16 on one device: 'cpu', and in the GPU kit
// 'cuda:0' shared by both ranks (its gradients crossing the 'mpi' group through host copies);
// 'cuda-emu' has no convolution for this.
import { describe, expect, it } from 'vitest';
import { describeOnDevice, mpiMissing, mpirun } from './mpirun.js';

const missing = mpiMissing();
const skip = missing !== '' && process.env.NODEGRAD_REQUIRE_MPI !== '1';

interface Result { params: number; buffers: number; scale: number }

(skip ? describe.skip : describe)(`DistributedDataParallel on 2 ranks${skip ? ` (skipped: ${missing})` : ''}`, () => {
  it('trains as one process with the whole batch; noSync and two forwards per backward too', async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/ddp.ts');
    expect(run.status, run.stderr).toBe(0);
    expect(run.ranks).toHaveLength(2);
    for (const got of run.ranks) {
      for (const name of ['float64 ts', 'float64 ts, noSync over 2 micro-batches', 'float64 ts, two forwards before one backward']) {
        const r = got[name] as Result;
        expect(r.scale, name).toBeGreaterThan(0.5);
        expect(r.params, name).toBeLessThanOrEqual(1e-10);
        expect(r.buffers, name).toBeLessThanOrEqual(1e-10);
      }
      const f32 = got['float32 cpu'] as Result;
      expect(f32.params).toBeLessThanOrEqual(1e-5 * f32.scale);
      expect(f32.buffers).toBeLessThanOrEqual(1e-4 * f32.scale);
      expect(got.unused).toBe('DistributedDataParallel: the previous backward did not finish reducing gradients: ' +
        '2 parameters got no gradient (b.weight, b.bias). Pass findUnusedParameters: true if some parameters are ' +
        'unused in a forward, or make every output take part in the loss.');
      // d(sum(a x + b))/d a.weight row 0 = x = [1, 2], accumulated over two iterations; the head
      // no rank used keeps no gradient, as in PyTorch.
      expect(got.tolerated).toEqual({ a: [[2, 4]], b: null });
      // A head only rank 0 used: its gradient [[1, 2], [1, 2]] averaged with rank 1's zeros.
      expect(got.partial).toEqual([[0.5, 1], [0.5, 1]]);
      // Rank r's x = [r + 1, 1]: the average [1.5, 1], then rank r's own gradient added locally.
      expect(got.twice).toEqual([[1.5 + (got.rank as number) + 1, 2]]);
    }
  }, 120_000);

  it('reduces the backward of a forward outside noSync; findUnusedParameters as PyTorch (noSync use, outputs in objects, two dtypes, eval); the buffer broadcasts', async () => {
    const run = await mpirun(2, 'packages/distributed/test/ranks/ddp_unused.ts');
    expect(run.status, run.stderr).toBe(0);
    expect(run.ranks).toHaveLength(2);
    const close = (a: unknown, b: unknown, what: string) => {
      const flat = (v: unknown): (number | null)[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number | null]);
      const [x, y] = [flat(a), flat(b)];
      expect(x.map((v) => v === null), what).toEqual(y.map((v) => v === null));
      x.forEach((v, i) => expect(v, `${what} [${i}]`).toBeCloseTo(y[i] as number, 5));
    };
    for (const got of run.ranks) {
      for (const name of ['inObject', 'inMap', 'twoDTypes']) {
        const c = got[name] as { ddp: unknown; average: unknown };
        close(c.ddp, c.average, `rank ${got.rank as number} ${name}`);
      }
      // x = [1, 2]: a's weight gradient [1, 2] twice, on both ranks; b's [1, 2] from rank 0's noSync
      // micro-batch averaged with rank 1's nothing.
      expect(got.noSyncUsed).toEqual([[[2, 4]], [2], [[0.5, 1]], [0.5]]);
      // Two eval-mode steps using a alone: a accumulates, b keeps no gradient.
      expect(got.evalUnused).toEqual([[[2, 4]], [2], null, null]);
      // Two steps of a alone, each averaging [1, 1] and [2, 2], after eval forwards that reached b.
      expect(got.lastForward).toEqual([[[3, 3]], [2], null, null]);
      expect(got.twoForwards).toBe("DistributedDataParallel: parameter 'b.bias' got a gradient in this backward after " +
        'it was marked unused: findUnusedParameters looks at the last forward before the backward, and this backward ' +
        "also reaches an earlier forward's output. Call backward after each forward, or use noSync for all but the last.");
      // Rank r's x = [r + 1, 1]: averaged, [1.5, 1].
      expect(got.forwardDecides).toEqual([[[1.5, 1]], [1]]);
      expect(got.noBufferBroadcast).toEqual([[(got.rank as number) + 1, (got.rank as number) + 1], [1, 1]]);
    }
    // Running mean after each forward = 0.9 x the one it started from + 0.1 x its batch mean. It
    // starts from rank 0's after a forward that recorded gradients outside noSync (PyTorch's
    // schedule), from its own otherwise.
    type Entry = { running: number[]; batchMean: number[] };
    const at = (rank: number) => run.ranks[rank]!.bufferSchedule as Entry[];
    const moved = (from: number[], e: Entry) => from.map((v, c) => 0.9 * v + 0.1 * e.batchMean[c]!);
    for (const rank of [0, 1]) {
      const s = at(rank), zero = at(0);
      const near = (got: number[], want: number[], what: string) => got.forEach((v, c) => expect(v, `rank ${rank} ${what}`).toBeCloseTo(want[c]!, 12));
      near(s[0]!.running, moved([0, 0], s[0]!), 'train');
      near(s[1]!.running, zero[0]!.running, 'eval after a training forward: rank 0\'s, no update');
      near(s[2]!.running, moved(s[1]!.running, s[2]!), 'train in noSync after a noGrad forward: its own');
      near(s[3]!.running, moved(s[2]!.running, s[3]!), 'train after a noSync forward: its own');
      near(s[4]!.running, moved(zero[3]!.running, s[4]!), "train after a training forward: rank 0's");
    }
    expect(at(1)[3]!.running[0]).not.toBeCloseTo(at(0)[3]!.running[0]!, 3); // the ranks did differ
  }, 60_000);
});

// The device runs of ranks/ddp.ts (batch 16 per rank, float32): on 'cpu' here, so that CI runs that
// path too, and on 'cuda:0' shared by both ranks in the GPU kit. To 1e-4 of the largest parameter:
// float32 after five momentum steps, with a GPU's own summation orders (1e-5 on 'cpu'); a gradient
// summed instead of averaged, or one rank's left out, is off by orders of magnitude more.
for (const device of ['cpu', 'cuda:0']) {
  describeOnDevice(device, 'DistributedDataParallel on 2 ranks in float32 on one device', () => {
    it(`trains as one process with the whole batch on '${device}', and with noSync`, async () => {
      const run = await mpirun(2, 'packages/distributed/test/ranks/ddp.ts', { NODEGRAD_RANK_DEVICES: device });
      expect(run.status, run.stderr).toBe(0);
      expect(run.ranks).toHaveLength(2);
      for (const got of run.ranks) {
        for (const name of [`float32 ${device}`, `float32 ${device}, noSync over 2 micro-batches`]) {
          const r = got[name] as Result;
          expect(r.scale, name).toBeGreaterThan(0.5);
          expect(r.params, name).toBeLessThanOrEqual(1e-4 * r.scale);
          expect(r.buffers, name).toBeLessThanOrEqual(1e-4 * r.scale);
        }
      }
    }, 120_000);
  });
}
