/**
 * Transfer learning flags: --weights loads a state dict (strict), replacing an fc of another class
 * count by a fresh one sized to the dataset, and explains a mismatch in a few lines;
 * --freeze-backbone trains fc alone; --freeze-bn also keeps BatchNorm's statistics.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, parseSafetensors, serializeSafetensors, resnet18, resnet50 } from '@nodegrad/nn';
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
    expect(r.stderr.trim()).toBe(`nodegrad train: --weights ${bad} does not fit the model: 1 missing key (layer1.0.conv1.weight)`);
  }, 60_000);

  it('summarises a mismatch and names the likely cause: another depth, another stem', async () => {
    manualSeed(1);
    const r50 = join(dir, 'r50.safetensors');
    writeFileSync(r50, serializeSafetensors(resnet50({ numClasses: 10, inChannels: 1, smallImageStem: true, widths: [8, 16, 32, 64] }).stateDict()));
    const deeper = await runCli(['train', ...RUN, '--weights', r50, '--out', join(dir, 'r50')]);
    expect(deeper.code).toBe(1);
    const msg = deeper.stderr.trim();
    expect(msg).toMatch(new RegExp(`^nodegrad train: --weights ${r50} does not fit the model: 198 unexpected keys \\((layer\\S+, ){4}layer\\S+ and 193 more\\); ` +
      '\\d+ shapes differing \\(.* and \\d+ more\\)\\. Likely cause: the file holds a resnet50 \\(Bottleneck blocks 3,4,6,3\\): pass --model resnet50$'));
    expect(msg.length).toBeLessThan(800);
    // ImageNet-stem weights on 28-pixel digits: auto chose the small-image stem.
    const imagenet = join(dir, 'imagenet-stem.safetensors');
    writeFileSync(imagenet, serializeSafetensors(resnet18({ numClasses: 10, inChannels: 1, widths: [8, 16, 32, 64] }).stateDict()));
    const stem = await runCli(['train', ...RUN, '--weights', imagenet, '--out', join(dir, 'stem')]);
    expect(stem.code).toBe(1);
    expect(stem.stderr.trim()).toBe(`nodegrad train: --weights ${imagenet} does not fit the model: 1 shape differing ` +
      '(conv1.weight: file [8, 1, 7, 7], model [8, 1, 3, 3]). Likely cause: the file has the 7x7 ImageNet stem, the model the small-image 3x3 stem ' +
      '(--small-stem auto chooses it for images of at most 64 px): pass --small-stem off');
  }, 60_000);

  it('--freeze-bn with --freeze-backbone leaves every backbone tensor bit-identical, running statistics included', async () => {
    const out = join(dir, 'frozen-bn');
    const r = await runCli(['train', ...RUN, '--weights', pretrained, '--freeze-backbone', '--freeze-bn', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(fc only trainable) (BatchNorm statistics frozen)');
    const after = (await loadSafetensors(join(out, 'last.safetensors'), { device: 'ts' })).tensors;
    const before = source.stateDict();
    const backbone = Object.keys(after).filter((k) => !k.startsWith('fc.'));
    expect(backbone.filter((k) => k.includes('running_'))).toHaveLength(40);
    for (const name of backbone) expect(bytes(after[name]!), name).toEqual(bytes(before[name]!));
  }, 60_000);
});
