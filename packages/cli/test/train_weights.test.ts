/**
 * Transfer learning flags: --weights loads a state dict (strict), replacing an fc of another class
 * count by a fresh one sized to the dataset; --freeze-backbone trains fc alone.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, parseSafetensors, serializeSafetensors, resnet18 } from '@nodegrad/nn';
import { manualSeed } from '@nodegrad/autograd';
import { SMALL, runCli } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-weights-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RUN = [...SMALL, '--limit-train', '128', '--limit-val', '64', '--epochs', '1', '--batch-size', '32'];
const bytes = (t: { toTypedArray(): ArrayLike<number> }) => Array.from(t.toTypedArray());

describe('nodegrad train --weights / --freeze-backbone', () => {
  // A 5-class "pretrained" model: its fc cannot serve MNIST's 10 classes.
  const pretrained = join(dir, 'pretrained.safetensors');
  manualSeed(123);
  const source = resnet18({ numClasses: 5, inChannels: 1, smallImageStem: true, widths: [8, 16, 32, 64] });
  writeFileSync(pretrained, serializeSafetensors(source.stateDict()));

  it('replaces a mismatched fc, freezes the rest, and trains fc only', async () => {
    const out = join(dir, 'frozen');
    const r = await runCli(['train', ...RUN, '--weights', pretrained, '--freeze-backbone', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("fc: the checkpoint's 5-class fc was replaced by a new Linear(64, 10)");
    expect(r.stdout).toContain('(fc only trainable)');
    const after = (await loadSafetensors(join(out, 'last.safetensors'), { device: 'ts' })).tensors;
    const before = source.stateDict();
    const params = new Set(source.namedParameters().map(([n]) => n));
    for (const [name, t] of Object.entries(after)) {
      if (name.startsWith('fc.')) expect(t.shape).toEqual(name === 'fc.weight' ? [10, 64] : [10]);
      // Frozen parameters are untouched; BatchNorm's running statistics still update in train mode, as in PyTorch.
      else if (params.has(name)) expect(bytes(t), name).toEqual(bytes(before[name]!));
    }
    // fc trained away from a fresh init: it is neither the source's nor constant.
    expect(new Set(bytes(after['fc.weight']!)).size).toBeGreaterThan(100);
  }, 60_000);

  it('refuses weights of another architecture, naming the file and the keys', async () => {
    const bad = join(dir, 'bad.safetensors');
    const { tensors } = parseSafetensors(new Uint8Array(readFileSync(pretrained)));
    delete tensors['layer1.0.conv1.weight'];
    writeFileSync(bad, serializeSafetensors(tensors));
    const r = await runCli(['train', ...RUN, '--weights', bad, '--out', join(dir, 'bad')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`nodegrad train: --weights ${bad} does not fit --model: missing keys: layer1.0.conv1.weight`);
  }, 60_000);
});
