/**
 * nodegrad's resnet18 and resnet50 against torchvision's, and preactResnet50 against timm's
 * resnetv2_50: the same weights (rebuilt bit for bit
 * from the formula in golden_weights.ts, saved and loaded through safetensors), one training step
 * and one eval forward, compared with PyTorch's numbers from
 * scripts/fixtures/make_resnet_goldens.py (computed in float64; see its docstring).
 *
 * Error measure: max |ours - PyTorch| / max |PyTorch| over the tensor (or its committed strided
 * sample). float32 is held to 1e-4, float64 to 1e-8. The largest errors are printed, next to
 * PyTorch's own float32 error against the same float64 reference.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy, noGrad, tensor, type Tensor } from '@nodegrad/autograd';
import { loadSafetensors, preactResnet50, resnet18, resnet50, saveSafetensors, type Module } from '@nodegrad/nn';
import { crc32, formulaInput, formulaStateDict, tensorCrc32 } from './golden_weights.js';

interface GoldenGrad { shape: number[]; stride: number; values: number[]; sum: number; absSum: number; sumSq: number }
interface Golden {
  torch: string;
  arch: string;
  input: { key: number; shape: number[]; crc32: number };
  targets: number[];
  weights: [string, number[], string, number][];
  safetensorsFile: { bytes: number; crc32: number };
  train: {
    logits: number[];
    loss: number;
    grads: Record<string, GoldenGrad>;
    buffers: Record<string, number[]>;
    numBatchesTracked: Record<string, number>;
  };
  eval: { logits: number[] };
  torchFloat32Error: Record<string, number>;
}

const F32_TOL = 1e-4;
const F64_TOL = 1e-8;
const BUILDERS = { resnet18, resnet50, resnetv2_50: preactResnet50 } as const;
/** Where each architecture comes from in PyTorch's world. */
const ORIGIN = { resnet18: 'torchvision', resnet50: 'torchvision', resnetv2_50: 'timm' } as const;
const fixture = (arch: string): Golden =>
  JSON.parse(readFileSync(new URL(`./fixtures/${arch}_golden.json`, import.meta.url), 'utf8')) as Golden;

/** max |actual[i * stride] - expected[i]| / max |expected|. */
function relErr(actual: ArrayLike<number>, expected: readonly number[], stride = 1): number {
  if (Math.ceil(actual.length / stride) !== expected.length) {
    throw new Error(`relErr: ${actual.length} values at stride ${stride} vs ${expected.length} expected`);
  }
  let diff = 0;
  let scale = 0;
  expected.forEach((e, i) => {
    diff = Math.max(diff, Math.abs(actual[i * stride]! - e));
    scale = Math.max(scale, Math.abs(e));
  });
  return diff / scale;
}

interface StepResult {
  logits: Float32Array | Float64Array;
  loss: number;
  evalLogits: Float32Array | Float64Array;
  grads: Map<string, Tensor>;
  buffers: Map<string, Tensor>;
}

/** What the script does: train-mode forward, cross-entropy, backward; then eval-mode logits. */
function runStep(model: Module, x: Tensor, targets: number[]): StepResult {
  model.zeroGrad();
  model.train();
  const logits = model.call(x) as Tensor;
  const loss = crossEntropy(logits, tensor(targets, { dtype: 'int64', device: x.device }));
  loss.backward();
  model.eval();
  const evalLogits = noGrad(() => model.call(x) as Tensor);
  return {
    logits: logits.detach().toTypedArray() as Float32Array | Float64Array,
    loss: loss.item(),
    evalLogits: evalLogits.toTypedArray() as Float32Array | Float64Array,
    grads: new Map(model.namedParameters().filter(([, p]) => p.grad).map(([n, p]) => [n, p.grad!])),
    buffers: new Map(model.namedBuffers()),
  };
}

/** Every compared quantity with its error (and PyTorch float32's, the yardstick). */
function errors(g: Golden, r: StepResult): { name: string; err: number; torchKey: string }[] {
  const rows = [
    { name: 'logits', err: relErr(r.logits, g.train.logits), torchKey: 'logits' },
    { name: 'loss', err: Math.abs(r.loss - g.train.loss) / Math.abs(g.train.loss), torchKey: 'loss' },
    { name: 'eval logits', err: relErr(r.evalLogits, g.eval.logits), torchKey: 'evalLogits' },
  ];
  for (const [name, e] of Object.entries(g.train.grads)) {
    const grad = r.grads.get(name);
    if (!grad) throw new Error(`${name} has no gradient`);
    expect(grad.shape).toEqual(e.shape);
    const a = grad.toTypedArray();
    let sum = 0;
    let sumSq = 0;
    for (const v of a) { sum += v; sumSq += v * v; }
    // The sums cover every element, not only the sample; scaled like the elementwise measure.
    const whole = Math.max(Math.abs(sum - e.sum) / e.absSum, Math.abs(sumSq - e.sumSq) / e.sumSq / 2);
    const what = e.stride === 1 ? 'all' : `1 in ${e.stride} + sums`;
    rows.push({ name: `grad ${name} (${what})`, err: Math.max(relErr(a, e.values, e.stride), whole), torchKey: `grad ${name}` });
  }
  for (const [name, e] of Object.entries(g.train.buffers)) {
    rows.push({ name, err: relErr(r.buffers.get(name)!.toTypedArray(), e), torchKey: name });
  }
  return rows;
}

/** num_batches_tracked of every BatchNorm after the step, against PyTorch's (the loaded k, plus 1). */
function counters(r: StepResult): Record<string, number> {
  return Object.fromEntries([...r.buffers].filter(([n]) => n.endsWith('num_batches_tracked')).map(([n, t]) => [n, t.item()]));
}

const report: string[] = [];
afterAll(() => {
  if (report.length) console.log(`ResNet goldens: max |error| / max |PyTorch value|\n${report.join('\n')}`);
});

function logRows(arch: string, dtype: string, device: string, g: Golden, rows: ReturnType<typeof errors>, tol: number): void {
  const worst = rows.reduce((a, b) => (b.err > a.err ? b : a));
  report.push(`${arch} ${dtype} on device '${device}' (tolerance ${tol}): worst ${worst.err.toExponential(2)} (${worst.name})`);
  for (const r of rows) {
    const torch = dtype === 'float32' ? `   PyTorch float32: ${g.torchFloat32Error[r.torchKey]!.toExponential(1)}` : '';
    report.push(`  ${r.name.padEnd(44)} ${r.err.toExponential(2)}${torch}`);
  }
}

/**
 * Registers the golden suites: on `device` (a registered backend), in the given dtypes. The 'ts'
 * run lives in resnet_golden.test.ts; native backends call this from their own packages' tests.
 */
export function goldenSuites(device: string, dtypes: readonly ('float32' | 'float64')[]): void {
for (const arch of ['resnet18', 'resnet50', 'resnetv2_50'] as const) {
  describe(`${arch} against ${ORIGIN[arch]} on '${device}'`, () => {
    const g = fixture(arch);
    const build = (): Module => BUILDERS[arch]();
    let dir = '';
    let loaded: Record<string, Tensor> = {};
    let fileBytes = new Uint8Array();

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `nodegrad-${arch}-`));
      const path = join(dir, `${arch}.safetensors`);
      await saveSafetensors(path, formulaStateDict(g.weights.map(([n, shape]) => [n, shape] as const)));
      fileBytes = readFileSync(path);
      loaded = (await loadSafetensors(path)).tensors;
    }, 120_000);
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('rebuilds the weights and the input PyTorch used, bit for bit (CRC-32 of every tensor)', () => {
      expect(g.arch).toBe(arch);
      expect(Object.keys(loaded)).toHaveLength(g.weights.length);
      const wrong = g.weights.filter(([n, shape, dtype, crc]) => {
        const t = loaded[n];
        return !t || t.dtype !== dtype || t.shape.join() !== shape.join() || tensorCrc32(t) !== crc;
      }).map(([n]) => n);
      expect(wrong).toEqual([]);
      expect(tensorCrc32(formulaInput(g.input.key, g.input.shape))).toBe(g.input.crc32);
    });

    it('writes the same safetensors bytes as the safetensors package, and loads them unchanged (strict)', () => {
      expect(fileBytes.length).toBe(g.safetensorsFile.bytes);
      expect(crc32(fileBytes)).toBe(g.safetensorsFile.crc32);
      const model = build();
      expect(model.loadStateDict(loaded)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      // Names in PyTorch's order, so the state dict round-trips to the same file.
      expect(Object.keys(model.stateDict())).toEqual(g.weights.map(([n]) => n));
      const changed = Object.entries(model.stateDict()).filter(([n, t]) => tensorCrc32(t) !== g.weights.find(([k]) => k === n)![3]);
      expect(changed.map(([n]) => n)).toEqual([]);
    }, 60_000);

    for (const dtype of dtypes) {
      const tol = dtype === 'float32' ? F32_TOL : F64_TOL;
      it(`${dtype}: a training step (logits, loss, gradients, running statistics, num_batches_tracked) and eval logits match PyTorch`, () => {
        const model = build();
        model.loadStateDict(loaded);
        if (dtype === 'float64') model.to('float64');
        model.to(device);
        const x = formulaInput(g.input.key, g.input.shape).to(dtype).to(device);
        const r = runStep(model, x, g.targets);
        expect(r.logits.length).toBe(g.train.logits.length);
        const rows = errors(g, r);
        logRows(arch, dtype, x.device, g, rows, tol);
        expect(rows.filter((row) => !(row.err <= tol)).map((row) => `${row.name}: ${row.err.toExponential(2)}`)).toEqual([]);
        expect(counters(r)).toEqual(g.train.numBatchesTracked);
      }, 600_000);
    }
  });
}
}
