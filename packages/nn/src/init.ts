/**
 * Parameter initialization with PyTorch's formulas (torch.nn.init). Every function fills its
 * tensor in place under noGrad from autograd's seeded generator (manualSeed) and returns it.
 */
import { fmt, fromTypedArray, hostNormal, hostUniform, noGrad, tidy, type Tensor } from '@nodegrad/autograd';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fanIn' | 'fanOut';

/**
 * The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear and
 * sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + a^2)) for leaky_relu (a defaults to 0.01), 3/4 for selu.
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.sqrt(2);
    case 'leaky_relu': {
      const a = param ?? 0.01;
      if (!Number.isFinite(a)) throw new Error(`calculateGain: negative slope ${a} is not a valid number`);
      return Math.sqrt(2 / (1 + a * a));
    }
    case 'selu': return 3 / 4;
    default: throw new Error(`calculateGain: unsupported nonlinearity '${nonlinearity as string}'`);
  }
}

/** [fanIn, fanOut] of a weight [out, in, *kernel]: in (resp. out) times the receptive field size. */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  if (t.ndim < 2) {
    throw new Error(`calculateFanInAndFanOut: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions (shape ${fmt(t.shape)})`);
  }
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1]! * receptive, t.shape[0]! * receptive];
}

function fan(op: string, t: Tensor, mode: FanMode): number {
  if (mode !== 'fanIn' && mode !== 'fanOut') throw new Error(`${op}: mode must be 'fanIn' or 'fanOut', got '${mode as string}'`);
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const f = mode === 'fanIn' ? fanIn : fanOut;
  if (f === 0) throw new Error(`${op}: cannot initialize a tensor with zero elements (shape ${fmt(t.shape)})`);
  return f;
}

let skipping = 0;

/**
 * Runs `build` with every init function here a no-op, as torch.nn.utils.skip_init: the layers it
 * constructs keep the values they were allocated with (zeros, ones) and draw nothing from the
 * random stream. For layers whose values are overwritten next (a copy, a checkpoint to load).
 * @example const fc = skipInit(() => new Linear(2048, 1000)); // no random draws
 */
export function skipInit<T>(build: () => T): T {
  skipping++;
  try {
    return build();
  } finally {
    skipping--;
  }
}

/**
 * Overwrites t's values with f(sample) per element, in place, without recording. Samples come
 * from autograd's host stream in float64, so the values do not depend on t's device; building a
 * model uploads each parameter once.
 */
function fillWith(op: string, t: Tensor, sample: (n: number) => Float64Array, f: (u: number) => number): Tensor {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') {
    throw new Error(`${op}: expected a float tensor, got dtype ${t.dtype} of shape ${fmt(t.shape)}`);
  }
  if (skipping) return t;
  const arr = t.dtype === 'float32' ? new Float32Array(t.size) : new Float64Array(t.size);
  const u = sample(t.size);
  for (let i = 0; i < arr.length; i++) arr[i] = f(u[i]!);
  // The staging copy on t's device is freed at once rather than by the garbage collector.
  noGrad(() => tidy(() => { t.copy_(fromTypedArray(arr, t.shape, { device: t.device })); }));
  return t;
}

/** Fills with U(a, b). */
export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  if (!(a <= b)) throw new Error(`uniform_: expected a <= b, got a=${a}, b=${b}`);
  return fillWith('uniform_', t, hostUniform, (u) => a + (b - a) * u);
}

/** Fills with N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  if (!(std >= 0)) throw new Error(`normal_: std must be non-negative, got ${std}`);
  return fillWith('normal_', t, hostNormal, (z) => mean + std * z);
}

/** Fills with the constant v. */
export function constant_(t: Tensor, v: number): Tensor {
  if (!skipping) noGrad(() => t.fill_(v));
  return t;
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only). */
  a?: number;
  /** fanIn keeps the forward activations' variance; fanOut the backward gradients'. */
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

/** He et al. (2015) normal init: N(0, std^2) with std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' } = opts;
  const std = calculateGain(nonlinearity, a) / Math.sqrt(fan('kaimingNormal_', t, mode));
  return normal_(t, 0, std);
}

/** He et al. (2015) uniform init: U(-bound, bound) with bound = gain * sqrt(3 / fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' } = opts;
  const bound = calculateGain(nonlinearity, a) * Math.sqrt(3 / fan('kaimingUniform_', t, mode));
  return uniform_(t, -bound, bound);
}

/** Glorot & Bengio (2010) uniform init: bound = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

/** Glorot & Bengio (2010) normal init: std = gain * sqrt(2 / (fanIn + fanOut)). */
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}
