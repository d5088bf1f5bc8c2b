/** Conv2d: a learned 2-D convolution over NCHW inputs, as torch.nn.Conv2d. */
import { conv2d, defaultDevice, zeros, type Size2, type Tensor } from '@nodegrad/autograd';
import { Module } from '../module.js';
import { calculateFanInAndFanOut, kaimingUniform_, uniform_ } from '../init.js';
import { py } from './repr.js';

export interface Conv2dOptions {
  stride?: Size2;
  /** Zero padding on each side, or 'same' (output size = input size, stride 1) or 'valid' (none). */
  padding?: Size2 | 'same' | 'valid';
  dilation?: Size2;
  groups?: number;
  bias?: boolean;
  dtype?: 'float32' | 'float64';
  device?: string;
}

function pairOf(name: string, v: Size2, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`Conv2d: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

/**
 * 2-D convolution layer: `weight` [out, in / groups, kh, kw] and optional `bias` [out].
 * @example new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false })
 */
export class Conv2d extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Size2, opts: Conv2dOptions = {}) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true } = opts;
    for (const [name, v] of [['inChannels', inChannels], ['outChannels', outChannels], ['groups', groups]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`Conv2d: ${name} must be a positive integer, got ${v}`);
    }
    if (inChannels % groups !== 0) throw new Error(`Conv2d: inChannels (${inChannels}) must be divisible by groups (${groups})`);
    if (outChannels % groups !== 0) throw new Error(`Conv2d: outChannels (${outChannels}) must be divisible by groups (${groups})`);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pairOf('kernelSize', kernelSize, 1);
    this.stride = pairOf('stride', stride, 1);
    this.dilation = pairOf('dilation', dilation, 1);
    this.groups = groups;
    if (padding === 'same' || padding === 'valid') {
      // As PyTorch: 'same' is only defined when every output position maps to one input position.
      if (padding === 'same' && (this.stride[0] !== 1 || this.stride[1] !== 1)) {
        throw new Error(`Conv2d: padding='same' is not supported for strided convolutions (stride ${py(this.stride)})`);
      }
      this.padding = padding;
    } else {
      this.padding = pairOf('padding', padding, 0);
    }
    const t = { dtype: opts.dtype ?? 'float32', device: opts.device ?? defaultDevice() };
    this.registerParameter('weight', zeros([outChannels, inChannels / groups, ...this.kernelSize], t));
    this.registerParameter('bias', bias ? zeros([outChannels], t) : null);
    this.resetParameters();
  }

  /** PyTorch's default init: kaiming_uniform_(a = sqrt(5)), i.e. U(±1/sqrt(fanIn)), for weight and bias. */
  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const [fanIn] = calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      uniform_(this.bias, -bound, bound);
    }
  }

  override forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups,
    });
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}`;
    const p = this.padding;
    if (typeof p === 'string' || p[0] !== 0 || p[1] !== 0) s += `, padding=${py(p)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${py(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}
