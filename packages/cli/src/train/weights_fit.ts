/**
 * Why a weights file does not fit the model a command built: the mismatched keys, summarised, and
 * what the keys and shapes say about the ResNet that wrote the file (depth, stem, widths,
 * channels), turned into the flags that would build that ResNet.
 */
import { fmt } from '@nodegrad/autograd';
import { listSome } from './finite.js';

type Shapes = Record<string, { readonly shape: readonly number[] }>;

/** The ResNet a state dict describes, as far as its keys and shapes tell. */
export interface ResNetShape {
  /** resnet18 ... resnet152 when the blocks per layer match torchvision's depth table. */
  model: string | null;
  blocks: number[];
  bottleneck: boolean;
  /** 'imagenet' (7x7 stride-2 conv and max-pool) or 'small' (3x3 stride-1 conv). */
  stem: 'imagenet' | 'small' | null;
  widths: number[];
  inChannels: number | null;
}

// torchvision's depth table: blocks per layer, and whether the blocks are Bottlenecks.
const DEPTHS: [string, string, boolean][] = [
  ['resnet18', '2,2,2,2', false], ['resnet34', '3,4,6,3', false], ['resnet50', '3,4,6,3', true],
  ['resnet101', '3,4,23,3', true], ['resnet152', '3,8,36,3', true],
];

/** Reads a ResNet's shape from its state dict's names and shapes. */
export function resnetShape(dict: Shapes): ResNetShape {
  const keys = Object.keys(dict);
  const blocks = [1, 2, 3, 4].map((i) => new Set(keys.map((k) => new RegExp(`^layer${i}\\.(\\d+)\\.`).exec(k)?.[1]).filter((b) => b !== undefined)).size);
  const bottleneck = keys.some((k) => /^layer\d+\.\d+\.conv3\./.test(k));
  const model = DEPTHS.find(([, b, bn]) => b === blocks.join() && bn === bottleneck)?.[0] ?? null;
  const conv1 = dict['conv1.weight']?.shape;
  const stem = conv1?.length === 4 ? (conv1[3] === 7 ? 'imagenet' : conv1[3] === 3 ? 'small' : null) : null;
  const widths = [1, 2, 3, 4].map((i) => dict[`layer${i}.0.conv1.weight`]?.shape[0] ?? 0);
  return { model, blocks, bottleneck, stem, widths, inChannels: conv1?.length === 4 ? conv1[1]! : null };
}

/** The flags that would build the file's ResNet, where it differs from the model's. */
function hints(file: ResNetShape, model: ResNetShape): string[] {
  const out: string[] = [];
  if (file.blocks.join() !== model.blocks.join() || file.bottleneck !== model.bottleneck) {
    const kind = `${file.bottleneck ? 'Bottleneck' : 'BasicBlock'} blocks ${file.blocks.join(',')}`;
    out.push(file.model ? `the file holds a ${file.model} (${kind}): pass --model ${file.model}` : `the file holds a network of ${kind}, not a ResNet this command builds`);
  } else {
    if (file.stem && model.stem && file.stem !== model.stem) {
      out.push(file.stem === 'imagenet'
        ? 'the file has the 7x7 ImageNet stem, the model the small-image 3x3 stem (--small-stem auto chooses it for images of at most 64 px): pass --small-stem off'
        : 'the file has the small-image 3x3 stem, the model the 7x7 ImageNet stem: pass --small-stem on');
    }
    if (file.widths.every((w) => w > 0) && file.widths.join() !== model.widths.join()) out.push(`the file's layer widths are ${file.widths.join(',')}: pass --widths ${file.widths.join(',')}`);
  }
  if (file.inChannels !== null && model.inChannels !== null && file.inChannels !== model.inChannels) {
    out.push(`the file's conv1 takes ${file.inChannels}-channel images, the dataset's have ${model.inChannels}`);
  }
  return out;
}

/**
 * What keeps `dict` from loading into a model whose state dict is `own` (strictly, less the keys
 * `skip` accepts as missing), in one readable sentence; null when it fits.
 */
export function misfit(own: Shapes, dict: Shapes, skip: (key: string) => boolean = () => false): string | null {
  const missing = Object.keys(own).filter((k) => !(k in dict) && !skip(k));
  const unexpected = Object.keys(dict).filter((k) => !(k in own));
  const sizes = Object.keys(own).filter((k) => k in dict && fmt(own[k]!.shape) !== fmt(dict[k]!.shape));
  if (!missing.length && !unexpected.length && !sizes.length) return null;
  const counted = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const parts = [
    ...(missing.length ? [`${counted(missing.length, 'missing key')} (${listSome(missing)})`] : []),
    ...(unexpected.length ? [`${counted(unexpected.length, 'unexpected key')} (${listSome(unexpected)})`] : []),
    ...(sizes.length ? [`${counted(sizes.length, 'shape')} differing (${listSome(sizes.map((k) => `${k}: file ${fmt(dict[k]!.shape)}, model ${fmt(own[k]!.shape)}`), 3)})`] : []),
  ];
  const why = hints(resnetShape(dict), resnetShape(own));
  return `${parts.join('; ')}${why.length ? `. Likely cause: ${why.join('; ')}` : ''}`;
}
