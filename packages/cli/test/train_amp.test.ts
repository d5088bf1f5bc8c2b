/**
 * nodegrad train --amp: bf16 autocast learns as float32 does on the default device; fp16 with its loss scaler
 * (on 'ts', which emulates float16) is killed mid-run and resumed to the same final weights, bit for
 * bit, as the run left alone: the scaler's scale and growth count come back from the checkpoint.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors } from '@nodegrad/nn';
import { DEVICE, SMALL, runCli } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-amp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lastRow = (out: string) => JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!);

async function runState(out: string): Promise<{ config: { amp: string }; scaler: { scale: number; _growth_tracker: number } | null }> {
  const file = readdirSync(out).find((f) => /^last\.state\..+\.safetensors$/.test(f))!;
  return JSON.parse((await loadSafetensors(join(out, file), { device: 'ts' })).metadata!.state!);
}

describe('nodegrad train --amp', () => {
  it(`bf16 on '${DEVICE}': learns MNIST digits as well as float32 does, and records the choice; no scaler`, { timeout: 300_000 }, async () => {
    const RUN = [...SMALL, '--limit-train', '2048', '--limit-val', '500', '--epochs', '2', '--batch-size', '32'];
    const acc: Record<string, number> = {};
    for (const amp of ['off', 'bf16']) {
      const out = join(dir, `mnist-${amp}`);
      const r = await runCli(['train', ...RUN, '--amp', amp, '--out', out]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.includes('mixed precision bf16')).toBe(amp === 'bf16');
      acc[amp] = lastRow(out).val_acc;
      if (amp === 'bf16') expect([(await runState(out)).config.amp, (await runState(out)).scaler]).toEqual(['bf16', null]);
    }
    // Measured on an Intel Xeon (AVX512_BF16, AMX): float32 92.6%, bf16 94.4%.
    expect(acc.off).toBeGreaterThan(0.85);
    expect(acc.bf16).toBeGreaterThan(acc.off! - 0.03);
  });

  it("fp16 on 'ts': a run killed mid-epoch resumes to the same weights bit for bit, with the scaler restored", { timeout: 600_000 }, async () => {
    const RUN = ['--widths', '4,8,8,8', '--device', 'ts', '--amp', 'fp16', '--limit-train', '192', '--limit-val', '64',
      '--epochs', '2', '--batch-size', '32', '--checkpoint-every', '4', '--seed', '3'];
    const a = join(dir, 'fp16-a'), b = join(dir, 'fp16-b');
    const whole = await runCli(['train', ...RUN, '--out', a]);
    expect(whole.stderr).toBe('');
    expect(whole.code).toBe(0);
    let killedAt = '';
    const killed = await runCli(['train', ...RUN, '--out', b], (all, child) => {
      const m = /checkpoint: epoch 2 step (\d+)\/6/.exec(all);
      if (m && !killedAt) { killedAt = m[0]; child.kill('SIGKILL'); }
    });
    expect(killed.signal).toBe('SIGKILL');
    const mid = await runState(b);
    expect(mid.scaler).not.toBeNull();
    const resumed = await runCli(['train', '--resume', b]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    const [ta, tb] = await Promise.all([a, b].map(async (d) => (await loadSafetensors(join(d, 'last.safetensors'), { device: 'ts' })).tensors));
    const differing = Object.keys(ta!).filter((k) => {
      const x = ta![k]!.toTypedArray(), y = tb![k]!.toTypedArray();
      return Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) !== 0;
    });
    expect(differing).toEqual([]);
    expect((await runState(b)).scaler).toEqual((await runState(a)).scaler);
  });
});
