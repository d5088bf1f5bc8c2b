/**
 * Bad command lines exit 2 with a message naming the flag and what it accepts; a corrupt or
 * mismatched checkpoint exits 1 with a message naming the file, and never a stack trace.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '@nodegrad/autograd';
import { parseSafetensors, serializeSafetensors } from '@nodegrad/nn';
import { REPO, SMALL, runCli } from './cli_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nodegrad-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The child loads the same addons as this process (vitest.setup.ts imports @nodegrad/native), so
// its devices are the ones backends() lists here, less the test-only 'cuda-emu'.
const devices = backends().filter((b) => b.name !== 'cuda-emu');
const available = devices.filter((b) => b.available).map((b) => b.name).join(', ');
const unavailable = devices.filter((b) => !b.available).map((b) => `${b.name}: ${b.reason}`).join('; ');
const badDevice = (v: string) => `nodegrad train: --device must be one of ${available} (got '${v}')${unavailable ? `; unavailable here: ${unavailable}` : ''}`;

describe('nodegrad: bad flags', () => {
  const cases: [string[], string][] = [
    [['train', '--foo', '1'], "nodegrad train: unknown flag --foo"],
    [['train', '--optimizer', 'foo'], "nodegrad train: --optimizer must be one of sgd, adam, adamw (got 'foo')"],
    [['train', '--model', 'resnet19'], "nodegrad train: --model must be one of resnet18, resnet34, resnet50, resnet101, resnet152 (got 'resnet19')"],
    [['train', '--lr', 'abc'], "nodegrad train: --lr must be a non-negative number (got 'abc')"],
    [['train', '--epochs', '-3'], "nodegrad train: --epochs must be a positive integer (got '-3')"],
    [['train', '--batch-size=2.5'], "nodegrad train: --batch-size must be a positive integer (got '2.5')"],
    [['train', '--schedule', 'linear'], "nodegrad train: --schedule must be one of none, step, cosine (got 'linear')"],
    [['train', '--device', 'gpu'], badDevice('gpu')],
    // A device without a backend here (cuda:N without a GPU) is refused up front, naming why.
    [['train', '--device', 'cuda:0'], badDevice('cuda:0')],
    [['eval', '--weights', 'w.safetensors', '--device', 'cuda:1'], badDevice('cuda:1').replace('nodegrad train', 'nodegrad eval')],
    [['train', '--dataset', 'imagenet'], "nodegrad train: --dataset must be one of mnist, cifar10:DIR, folder:DIR (got 'imagenet')"],
    [['train', '--widths', '8,16'], "nodegrad train: --widths must be 4 positive integers separated by commas (got '8,16')"],
    [['train', '--epochs'], 'nodegrad train: --epochs needs a value'],
    [['train', 'mnist'], "nodegrad train: unexpected argument 'mnist' (flags start with --)"],
    [['eval', '--dataset', 'mnist'], 'nodegrad eval: --weights FILE is required'],
    [['frobnicate'], "nodegrad: unknown command 'frobnicate'"],
  ];
  it.each(cases)('%j exits 2', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]!.startsWith(message)).toBe(true);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe('nodegrad --version', () => {
  it("prints the CLI package's version and Node's, exit 0", async () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'packages', 'cli', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`nodegrad ${pkg.version} (Node ${process.version})\n`);
    }
  });
});

describe('nodegrad train --resume: corrupt and mismatched checkpoints', () => {
  const good = join(dir, 'good');
  const trained = runCli(['train', ...SMALL, '--limit-train', '128', '--limit-val', '64', '--epochs', '1', '--batch-size', '32', '--out', good]);
  const copy = async (name: string) => {
    expect((await trained).code).toBe(0);
    const d = join(dir, name);
    cpSync(good, d, { recursive: true });
    return d;
  };
  // A copy into a plain Uint8Array: nn's parseSafetensors misreads a Node Buffer (Buffer#slice is a view).
  const read = (f: string) => new Uint8Array(readFileSync(f));
  const stateFile = (d: string) => join(d, readdirSync(d).find((f) => f.startsWith('last.state.'))!);
  const expectFailure = async (d: string, file: string, why: RegExp, extra: string[] = []) => {
    const r = await runCli(['train', '--resume', d, ...extra]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  };

  it('a truncated last.safetensors', async () => {
    const d = await copy('truncated');
    truncateSync(join(d, 'last.safetensors'), 1000);
    await expectFailure(d, join(d, 'last.safetensors'), /cannot resume from .*last\.safetensors: header length \d+ runs past the end of the 1000-byte file/);
  }, 60_000);

  it('a state file of garbage', async () => {
    const d = await copy('garbage');
    const f = stateFile(d);
    writeFileSync(f, 'this is not a safetensors file at all, just text');
    await expectFailure(d, f, /cannot resume from /);
  }, 60_000);

  it('a state file whose run state is not JSON', async () => {
    const d = await copy('badjson');
    const f = stateFile(d);
    const { tensors, metadata } = parseSafetensors(read(f));
    writeFileSync(f, serializeSafetensors(tensors, { ...metadata!, state: '{"format": "nodegrad-train-checkpoint-1", "config": {' }));
    await expectFailure(d, f, /run state is not valid JSON/);
  }, 60_000);

  it('a missing state file', async () => {
    const d = await copy('nostate');
    const f = stateFile(d);
    rmSync(f);
    await expectFailure(d, f, /does not exist/);
  }, 60_000);

  it('weights of another model', async () => {
    const d = await copy('otherweights');
    const { metadata } = parseSafetensors(read(join(d, 'last.safetensors')));
    const { tensors } = parseSafetensors(read(join(d, 'best.safetensors')));
    delete tensors['fc.bias'];
    writeFileSync(join(d, 'last.safetensors'), serializeSafetensors(tensors, metadata));
    // The run is finished: extending it makes it load the weights.
    await expectFailure(d, join(d, 'last.safetensors'), /weights does not fit the run: .*missing keys: fc\.bias/, ['--epochs', '2']);
  }, 60_000);

  it('a flag that contradicts the recorded run exits 2', async () => {
    const d = await copy('contradict');
    const r = await runCli(['train', '--resume', d, '--lr', '0.5']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`nodegrad train: --lr 0.5 differs from the resumed run's 0.05 (recorded in ${d}); leave it out or give the same value`);
    const o = await runCli(['train', '--resume', d, '--out', join(dir, 'elsewhere')]);
    expect(o.code).toBe(2);
    expect(o.stderr.split('\n')[0]).toBe(`nodegrad train: --out ${join(dir, 'elsewhere')} differs from --resume ${d}; a resumed run writes into its own folder`);
  }, 60_000);
});
