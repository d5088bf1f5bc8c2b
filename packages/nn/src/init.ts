/**
 * Parameter initialization with PyTorch's formulas (torch.nn.init). Every function fills its
 * tensor in place under noGrad from autograd's seeded generator (manualSeed) and returns it.
 */
import { fmt, fromTypedArray, hostNormal, hostUniform, isFloat, noGrad, tidy, type Tensor } from '@nodegrad/autograd';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fanIn' | 'fanOut';

/**
 * The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear and
 * sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + a^2)) for leaky_relu (a defaults to 0.01), 3/4 for selu.
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d': case 'sigmoid':
    case 'conv_transpose1d': case 'conv_transpose2d': case 'conv_transpose3d': return 1;
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
  return mode === 'fanIn' ? fanIn : fanOut;
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
  return fillValues(op, t, (arr) => {
    const u = sample(t.size);
    for (let i = 0; i < arr.length; i++) arr[i] = f(u[i]!);
  });
}

/**
 * Writes values computed on the host into t (a half tensor gets them rounded from float32).
 * `write` is not called under skipInit, so it is where random draws belong.
 */
function fillValues(op: string, t: Tensor, write: (arr: Float32Array | Float64Array) => void): Tensor {
  if (!isFloat(t.dtype)) throw new Error(`${op}: expected a floating-point tensor, got dtype ${t.dtype} of shape ${fmt(t.shape)}`);
  if (skipping) return t;
  const arr = t.dtype === 'float64' ? new Float64Array(t.size) : new Float32Array(t.size);
  write(arr);
  // The staging copy on t's device is freed at once rather than by the garbage collector.
  noGrad(() => tidy(() => { t.copy_(fromTypedArray(arr, t.shape, { device: t.device }).to(t.dtype)); }));
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

/** He et al. (2015) normal init: N(0, std^2) with std = gain / sqrt(fan). A tensor with no elements is left as it is, as PyTorch. */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' } = opts;
  if (t.size === 0) return t;
  const std = calculateGain(nonlinearity, a) / Math.sqrt(fan('kaimingNormal_', t, mode));
  return normal_(t, 0, std);
}

/** He et al. (2015) uniform init: U(-bound, bound) with bound = gain * sqrt(3 / fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' } = opts;
  if (t.size === 0) return t;
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

/**
 * N(mean, std^2) truncated to [a, b], as torch.nn.init.trunc_normal_: uniform samples between the
 * normal CDF at a and at b, mapped back through the inverse CDF, then clamped to [a, b].
 */
export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2): Tensor {
  if (!(std >= 0) || !(a <= b)) throw new Error(`truncNormal_: needs std >= 0 and a <= b, got std=${std}, a=${a}, b=${b}`);
  const cdf = (x: number) => (1 + erf((x - mean) / std / Math.SQRT2)) / 2;
  const [l, u] = [cdf(a), cdf(b)];
  return fillWith('truncNormal_', t, hostUniform, (r) => {
    const p = 2 * (l + (u - l) * r) - 1;
    return Math.min(b, Math.max(a, mean + std * Math.SQRT2 * erfinv(p)));
  });
}

/** The identity matrix in a 2-d tensor (ones on the diagonal of a non-square one too). */
export function eye_(t: Tensor): Tensor {
  if (t.ndim !== 2) throw new Error(`eye_: only 2-d tensors are supported, got shape ${fmt(t.shape)}`);
  const [n, m] = t.shape as [number, number];
  return fillValues('eye_', t, (arr) => { for (let i = 0; i < Math.min(n, m); i++) arr[i * m + i] = 1; });
}

/**
 * The Dirac delta in a 3-, 4- or 5-d convolution weight [out, in, *kernel]: each of `groups`
 * groups passes input channel i to output channel i at the kernel's centre, keeping the identity.
 */
export function dirac_(t: Tensor, groups = 1): Tensor {
  if (t.ndim < 3 || t.ndim > 5) throw new Error(`dirac_: only 3-, 4- and 5-d tensors are supported, got shape ${fmt(t.shape)}`);
  const [out, inCh, ...kernel] = t.shape as [number, number, ...number[]];
  if (!Number.isInteger(groups) || groups < 1 || out % groups !== 0) {
    throw new Error(`dirac_: dim 0 (${out}) must be divisible by groups (${groups})`);
  }
  const perGroup = out / groups;
  const k = kernel.reduce((x, y) => x * y, 1);
  const centre = kernel.reduce((off, d) => off * d + Math.floor(d / 2), 0);
  return fillValues('dirac_', t, (arr) => {
    for (let g = 0; g < groups; g++) {
      for (let d = 0; d < Math.min(perGroup, inCh); d++) arr[((g * perGroup + d) * inCh + d) * k + centre] = 1;
    }
  });
}

/**
 * A (semi-)orthogonal matrix times gain, as torch.nn.init.orthogonal_ (Saxe et al. 2013): the Q
 * of a Gaussian matrix's QR factorization, signs fixed by R's diagonal; dims after the first are
 * flattened. Q comes from Gram-Schmidt run twice (CGS2), orthogonal to rounding in float64.
 */
export function orthogonal_(t: Tensor, gain = 1): Tensor {
  if (t.ndim < 2) throw new Error(`orthogonal_: only tensors with 2 or more dimensions are supported, got shape ${fmt(t.shape)}`);
  if (t.size === 0) return t;
  const rows = t.shape[0]!, cols = t.size / rows;
  const [n, m] = rows < cols ? [cols, rows] : [rows, cols]; // factor the tall way: n >= m
  return fillValues('orthogonal_', t, (arr) => {
    const z = hostNormal(rows * cols);
    // Column j of the tall matrix A (n x m); when rows < cols, A is the sample's transpose.
    const colOf = (j: number) => Float64Array.from({ length: n }, (_, i) => (rows < cols ? z[j * cols + i]! : z[i * cols + j]!));
    const q: Float64Array[] = [];
    for (let j = 0; j < m; j++) {
      const v = colOf(j);
      for (let pass = 0; pass < 2; pass++) {
        for (const qk of q) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += qk[i]! * v[i]!;
          for (let i = 0; i < n; i++) v[i]! -= dot * qk[i]!;
        }
      }
      // R's diagonal is <q_j, a_j> = |v| > 0, so sign(diag(R)) is +1 and Q's column is v / |v|.
      let norm = 0;
      for (let i = 0; i < n; i++) norm += v[i]! * v[i]!;
      norm = Math.sqrt(norm);
      for (let i = 0; i < n; i++) {
        const value = (gain * v[i]!) / norm;
        if (rows < cols) arr[j * cols + i] = value;
        else arr[i * cols + j] = value;
      }
      q.push(v.map((x) => x / norm));
    }
  });
}

/** erf in float64 (to ~1e-12): its Maclaurin series up to 3, the continued fraction of erfc beyond. */
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x);
  if (a > 6) return s;
  if (a <= 3) {
    let term = a, sum = a;
    for (let k = 1; k < 80; k++) {
      term *= -a * a / k;
      sum += term / (2 * k + 1);
    }
    return s * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a^2) / (sqrt(pi) K), K = a + (1/2) / (a + 1 / (a + (3/2) / (a + ...))), by Lentz's method.
  let f = a, c = a, d = 0;
  for (let k = 1; k < 60; k++) {
    const an = k / 2;
    d = a + an * d; d = 1 / d;
    c = a + an / c;
    f *= c * d;
  }
  return s * (1 - Math.exp(-a * a) / (f * Math.sqrt(Math.PI)));
}

/** The inverse of erf on (-1, 1): Giles's (2010) approximation refined by two Newton steps on erf. */
function erfinv(p: number): number {
  if (p <= -1) return -Infinity;
  if (p >= 1) return Infinity;
  let w = -Math.log((1 - p) * (1 + p));
  let x: number;
  if (w < 5) {
    w -= 2.5;
    x = 2.81022636e-08;
    for (const c of [3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]) x = c + x * w;
  } else {
    w = Math.sqrt(w) - 3;
    x = -0.000200214257;
    for (const c of [0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]) x = c + x * w;
  }
  x *= p;
  for (let i = 0; i < 2; i++) x -= (erf(x) - p) / ((2 / Math.sqrt(Math.PI)) * Math.exp(-x * x));
  return x;
}
