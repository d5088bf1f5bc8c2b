/** `nodegrad eval`: accuracy and confusion matrix of a checkpoint on a dataset's validation split. */
import { getNumThreads, setNumThreads } from '@nodegrad/native';
import { DataLoader } from '@nodegrad/data';
import { CliError, UsageError, formatFlags, parseFlags, type FlagSpecs } from '../args.js';
import { TRAIN_FLAGS, checkDevice, clampThreads, defaultDevice, parseWidths, type TrainConfig } from '../train/config.js';
import { evaluate, type EvalResult } from '../train/evaluate.js';
import { listSome, nonFiniteTensors } from '../train/finite.js';
import { misfit } from '../train/weights_fit.js';
import { buildModel, FACTORIES, imageShape, loadDatasets, recordedArchitecture } from '../train/setup.js';
import { loadSafetensors } from '@nodegrad/nn';

const pick = (...names: string[]): FlagSpecs => Object.fromEntries(names.map((n) => [n, TRAIN_FLAGS[n]!]));

const FLAGS: FlagSpecs = {
  weights: { type: 'string', placeholder: 'FILE', help: 'the safetensors state dict to evaluate (required), e.g. runs/<time>/best.safetensors' },
  ...pick('model', 'widths', 'small-stem', 'dataset', 'image-size', 'batch-size', 'device', 'threads', 'limit-val', 'on-bad-image'),
  json: { type: 'bool', help: 'print the result as one JSON object' },
  help: { type: 'bool', help: 'show this help' },
};

export const summary = 'accuracy and confusion matrix of a checkpoint on a dataset';

export const usage = `usage: nodegrad eval --weights FILE [flags]

Evaluates FILE on the validation split of the dataset (MNIST's 2,000 held-out digits, CIFAR-10's
test batch, or DIR/val). A checkpoint of 'nodegrad train' records its model, widths and stem,
and eval rebuilds that network; for other files (or to override) the model flags describe it.

flags:
${formatFlags(FLAGS)}`;

/** The confusion matrix as an aligned table: rows are true classes, columns predictions. */
export function formatConfusion(classes: readonly string[], m: number[][]): string {
  const labels = classes.map((c) => (c.length > 8 ? c.slice(0, 8) : c));
  const w = Math.max(4, ...labels.map((l) => l.length), ...m.flat().map((v) => String(v).length)) + 1;
  const head = 'true\\pred'.padEnd(10) + labels.map((l) => l.padStart(w)).join('');
  const rows = m.map((r, i) => labels[i]!.padEnd(10) + r.map((v) => String(v).padStart(w)).join(''));
  return [head, ...rows].join('\n');
}

export async function run(argv: readonly string[]): Promise<number> {
  const given = parseFlags('eval', FLAGS, argv);
  if (given.help) {
    console.log(usage);
    return 0;
  }
  if (given.weights === undefined) throw new UsageError('eval', '--weights FILE is required');
  const device = (given.device as string | undefined) ?? defaultDevice().device;
  if (given.device !== undefined) checkDevice('eval', device);
  // The file first: a checkpoint of `nodegrad train` records its architecture, which the flags override.
  const file = given.weights as string;
  let loaded;
  try {
    loaded = await loadSafetensors(file, { device });
  } catch (e) {
    throw new CliError(`cannot evaluate ${file}: ${(e as Error).message}`);
  }
  const dict = loaded.tensors;
  const recorded = recordedArchitecture(loaded.metadata);
  const widths = (given.widths ?? recorded.widths) as string | undefined;
  const cfg = {
    model: (given.model ?? recorded.model ?? 'resnet18') as TrainConfig['model'],
    widths: widths === undefined ? null : parseWidths('eval', widths),
    smallStem: (given['small-stem'] ?? recorded.smallStem ?? 'auto') as TrainConfig['smallStem'],
    dataset: (given.dataset ?? 'mnist') as string,
    imageSize: (given['image-size'] ?? 224) as number,
    limitTrain: 1,
    limitVal: (given['limit-val'] ?? null) as number | null,
    seed: 0,
    device,
    onBadImage: (given['on-bad-image'] ?? 'skip') as TrainConfig['onBadImage'],
  };
  if (!/^(mnist|cifar10:.+|folder:.+)$/.test(cfg.dataset)) {
    throw new UsageError('eval', `--dataset must be one of mnist, cifar10:DIR, folder:DIR (got '${cfg.dataset}')`);
  }
  const notes: string[] = [];
  const threads = given.threads === undefined ? undefined : clampThreads(given.threads as number, `--threads ${String(given.threads)}`, notes);
  for (const n of notes) console.error(n);
  if (device === 'cpu' && threads !== undefined && threads !== getNumThreads()) setNumThreads(threads);

  const { train, val, name, warnings } = await loadDatasets(cfg);
  for (const w of warnings) console.error(w);
  if (!(cfg.model in FACTORIES)) throw new CliError(`cannot evaluate ${file}: it records model '${cfg.model}', which nodegrad does not know`);
  const { model } = buildModel(cfg, await imageShape(train), val.classes.length);
  const bad = nonFiniteTensors(dict);
  if (bad.length) {
    throw new CliError(`cannot evaluate ${file}: ${bad.length} of ${Object.keys(dict).length} tensors hold NaN or Inf (${listSome(bad)}); ` +
      'the run that wrote it diverged');
  }
  const problem = misfit(model.stateDict(), dict);
  if (problem) {
    throw new CliError(`cannot evaluate ${file}: it does not fit ${cfg.model}${cfg.widths ? ` --widths ${cfg.widths.join(',')}` : ''} ` +
      `with ${val.classes.length} classes: ${problem}`);
  }
  model.loadStateDict(dict);
  const loader = new DataLoader(val, { batchSize: (given['batch-size'] as number | undefined) ?? 200, device });
  let r: EvalResult;
  try {
    r = await evaluate(model, loader, val.classes.length);
  } finally {
    await loader.close();
  }
  if (given.json) {
    console.log(JSON.stringify({ weights: file, dataset: cfg.dataset, samples: r.samples, accuracy: r.acc, loss: r.loss, classes: val.classes, confusion: r.confusion }));
  } else {
    console.log(`${file} on ${name}, ${r.samples} validation images: accuracy ${(100 * r.acc).toFixed(2)}%, loss ${r.loss.toFixed(4)}`);
    console.log(formatConfusion(val.classes, r.confusion));
  }
  return 0;
}
