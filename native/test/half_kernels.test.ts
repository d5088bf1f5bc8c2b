/**
 * bfloat16 and float16 on the 'cpu' backend, and on 'cuda-emu' (the 'cuda' kernel families compiled
 * for the host), kernel by kernel against the 'ts' reference in the same dtype, where the result is
 * defined exactly: uploads and reads (every half bit pattern, random float32 bit patterns,
 * PyTorch's own casts), Cast, elementwise ops, movement, Copy, Fill and the random draws are
 * bit-identical; Sum is within the type's tolerance (it accumulates). The families a backend does
 * not declare in a dtype throw naming kernel, backend and dtype.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Conv2DParams, DType, Raw } from '@nodegrad/autograd';
import { mpiBinding, type MpiAddon } from '@nodegrad/native';
import { CUDA_DTYPES } from '../lib/backend.js';
import { loadAddon } from '../lib/load.js';
import {
  cpu, edgeValues, everyValue, expectBits, expectIdentical, expectKernel, HALVES, DEVICES_UNDER_TEST, helpersFor, normals, pair, put, read,
  ROUND, skipReason, TOL, ts,
} from './half_util.js';

const suite = skipReason ? describe.skip : describe;
const fixture = JSON.parse(readFileSync(new URL('../../packages/autograd/test/fixtures/half_rounding.json', import.meta.url),
  'utf8')) as { float32: (number | string)[]; bfloat16: (number | string)[]; float16: (number | string)[] };
const num = (v: number | string) => (typeof v !== 'string' ? v : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN);

suite(`cpu half types: upload and read back${skipReason}`, () => {
  for (const dtype of HALVES) {
    it(`${dtype}: every bit pattern survives a round trip unchanged, NaN payloads included`, () => {
      const f = everyValue(dtype);
      const back = cpu().readSync(cpu().fromArray(f, [65536], dtype));
      expect(back).toBeInstanceOf(Float32Array);
      expectBits(back as Float32Array, f, `${dtype} patterns`);
    });

    it(`${dtype}: random float32 bit patterns round as the 'ts' rounding does (to nearest even), bit for bit`, () => {
      const x = edgeValues(200_000, 7);
      const got = cpu().readSync(put(cpu(), x, [x.length], dtype)) as Float32Array;
      expectBits(got, ts().readSync(put(ts(), x, [x.length], dtype)) as Float32Array, `${dtype} upload`);
      expectIdentical(got, Array.from(x, ROUND[dtype]), `${dtype} upload against ${ROUND[dtype].name}`);
    });

    it(`${dtype}: PyTorch's casts of ${fixture.float32.length} values (ties, subnormals, overflow)`, () => {
      const x = fixture.float32.map(num), want = fixture[dtype].map(num);
      expectIdentical(read(cpu(), put(cpu(), x, [x.length], dtype)), want, `${dtype} vs torch`);
    });
  }
});


const FROM: DType[] = ['float32', 'float64', 'int32', 'int64', 'bfloat16', 'float16'];
const UNARY = ['Neg', 'Exp', 'Log', 'Sqrt', 'Rsqrt', 'Abs', 'Sign', 'Relu', 'Sigmoid', 'Tanh', 'Log1p', 'Expm1', 'Sin', 'Cos', 'Erf'];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Maximum', 'Minimum', 'Equal', 'NotEqual', 'Less', 'LessEqual',
  'Greater', 'GreaterEqual', 'ReluBackward'];

// On 'cpu' and on 'cuda-emu' (half_util.ts DEVICES_UNDER_TEST).
for (const [device, why] of DEVICES_UNDER_TEST) {
  const dut = helpersFor(device);
  const describeOn = why ? describe.skip : describe;

  describeOn(`${device} half types: Cast to and from every dtype, bit-identical${why}`, () => {
    for (const half of HALVES) {
      it(`${half} <-> float32, float64, int32, int64 and the other half type`, () => {
        const x = edgeValues(3000, 11);
        // Integers, and the values a cast to an integer type is defined on (finite, in int32's range).
        const ints = Array.from(normals(3000, 12, 1e5), Math.trunc), small = normals(3000, 13, 1e4);
        for (const from of FROM) {
          const src = dut.pair(from.startsWith('int') ? ints : x, [3000], from);
          dut.expectKernel('Cast', (at) => [at(src), half]);
        }
        const h = dut.pair(x, [3000], half), hSmall = dut.pair(small, [3000], half);
        for (const to of FROM) dut.expectKernel('Cast', (at) => [at(to.startsWith('int') ? hSmall : h), to]);
      });
    }
  });

  describeOn(`${device} half types: elementwise results are the float32 results rounded once, as on 'ts'${why}`, () => {
    for (const dtype of HALVES) {
      it(`${dtype}: ${UNARY.join(', ')} on every value of the type`, () => {
        const x = dut.pair(everyValue(dtype), [256, 256], dtype);
        for (const op of UNARY) dut.expectKernel(op, (at) => [at(x)]);
      });

      it(`${dtype}: the binary ops and comparisons, same shape, broadcast and scalar operands`, () => {
        const a = edgeValues(4096, 31), b = normals(4096, 32, 3);
        b.set(a.subarray(0, 512), 0); // equal pairs for the comparisons
        const A = dut.pair(a, [64, 64], dtype), B = dut.pair(b, [64, 64], dtype);
        const col = dut.pair(normals(64, 33), [64, 1], dtype), row = dut.pair(normals(64, 34), [1, 64], dtype);
        const scalar = dut.pair([0.3], [], dtype);
        // A float32 scalar the half type cannot hold, either side: computed with it unrounded.
        const third = dut.pair([1 / 3], [], 'float32'), big = dut.pair([70000.5], [], 'float32');
        for (const op of BINARY) {
          dut.expectKernel(op, (at) => [at(A), at(B)]);
          dut.expectKernel(op, (at) => [at(col), at(row)]);
          dut.expectKernel(op, (at) => [at(A), at(scalar)]);
          dut.expectKernel(op, (at) => [at(A), at(third)]);
          dut.expectKernel(op, (at) => [at(big), at(A)]);
        }
      });

      it(`${dtype}: Where with a condition of each dtype, Clamp with bounds the type cannot hold, and every Activation`, () => {
        const c = Array.from(normals(96, 41), (v) => (v > 0 ? 1 : 0));
        const a = dut.pair(normals(96, 42), [4, 24], dtype), b = dut.pair(normals(24, 43), [24], dtype);
        for (const cd of ['float32', 'int32', 'float64', 'bfloat16', 'float16'] as DType[]) {
          const cond = dut.pair(c, [4, 24], cd);
          dut.expectKernel('Where', (at) => [at(cond), at(a), at(b)]);
        }
        const x = dut.pair(edgeValues(4096, 44), [4096], dtype);
        dut.expectKernel('Clamp', (at) => [at(x), -0.1, 0.30000001]);
        dut.expectKernel('Clamp', (at) => [at(x), -1e5, 7e4]);
        for (const [kind, a, b] of [['softplus', 2, 1], ['gelu', 0, 0], ['geluTanh', 0, 0], ['silu', 0, 0], ['elu', 0.7, 0],
          ['leakyRelu', 0.1, 0], ['hardtanh', -0.4, 0.6]] as const) dut.expectKernel('Activation', (at) => [at(x), kind, a, b]);
      });
    }
  });

  describeOn(`${device} half types: movement and creation, bit-identical${why}`, () => {
    for (const dtype of HALVES) {
      it(`${dtype}: Transpose, BroadcastTo, Slice, Pad, Concat, OneHot`, () => {
        const x = dut.pair(edgeValues(2 * 3 * 4 * 5, 51), [2, 3, 4, 5], dtype), y = dut.pair(normals(2 * 2 * 4 * 5, 52), [2, 2, 4, 5], dtype);
        dut.expectKernel('Transpose', (at) => [at(x), [3, 1, 0, 2]]);
        dut.expectKernel('BroadcastTo', (at) => [at(dut.pair(normals(5, 53), [1, 5], dtype)), [3, 4, 5]]);
        dut.expectKernel('Slice', (at) => [at(x), [1, 0, 1, 1], [1, 2, 2, 2], [1, 2, 2, 3]]);
        dut.expectKernel('Pad', (at) => [at(x), [[0, 1], [2, 0], [1, 1], [0, 0]], 0.1]);
        dut.expectKernel('Pad', (at) => [at(x), [[0, 0], [0, 0], [1, 0], [0, 2]], 70000]);
        dut.expectKernel('Concat', (at) => [[at(x), at(y), at(x)], 1]);
        const idx = dut.pair([3, 0, 2, 5, 1, 4], [2, 3], 'int64');
        dut.expectKernel('OneHot', (at) => [at(idx), 6, dtype]);
        dut.expectKernel('OneHot', (at) => [at(idx), 6, dtype, 2]);
      });

      it(`${dtype}: Copy, Fill (values the type rounds or overflows on), RandomUniform, RandomNormal, Bernoulli`, () => {
        const x = dut.pair(edgeValues(999, 61), [999], dtype);
        dut.expectKernel('Copy', (at) => [at(x)]);
        for (const v of [0.1, -3.14159, 65519, 70000, 1e-7, NaN]) dut.expectKernel('Fill', () => [[3, 7], v, dtype]);
        dut.expectKernel('RandomUniform', () => [[50_000], dtype, 1234, 99]);
        dut.expectKernel('RandomNormal', () => [[50_000], dtype, 1234, 7]);
        dut.expectKernel('Bernoulli', () => [[10_000], 0.3, 1 / 0.7, dtype, 5, 3]);
        // Exact in the type and below 1: 8 random bits for bfloat16, 11 for float16.
        const u = read(dut.dev(), dut.dev().kernels.RandomUniform([4096], dtype, 3, 0));
        expect(u.every((v) => v >= 0 && v < 1 && ROUND[dtype](v) === v)).toBe(true);
        expect(new Set(u).size).toBeGreaterThan(dtype === 'bfloat16' ? 200 : 1500);
      });
    }
  });

  describeOn(`${device} half types: reductions${why}`, () => {
    for (const dtype of HALVES) {
      it(`${dtype}: Max, Min, ArgMax, ArgMin bit-identical (NaN wins); Sum within ${TOL[dtype].rtol} relative`, () => {
        const v = normals(6 * 50 * 7, 71, 4);
        v[123] = NaN;
        const x = dut.pair(v, [6, 50, 7], dtype);
        for (const axes of [[0], [1], [0, 2], [0, 1, 2]]) {
          dut.expectKernel('Max', (at) => [at(x), axes]);
          dut.expectKernel('Min', (at) => [at(x), axes]);
        }
        for (const axis of [0, 1, 2]) {
          dut.expectKernel('ArgMax', (at) => [at(x), axis]);
          dut.expectKernel('ArgMin', (at) => [at(x), axis]);
        }
        const y = dut.pair(normals(6 * 500 * 7, 72), [6, 500, 7], dtype);
        for (const axes of [[1], [0, 2], [0, 1, 2]]) dut.expectKernel('Sum', (at) => [at(y), axes], TOL[dtype]);
      });
    }
  });
}

suite(`cpu half types: what 'cpu' does not declare${skipReason}`, () => {
  it('float16 matmul and conv are refused by the declaration, naming kernel, backend and dtype', () => {
    const a = put(cpu(), normals(12, 81), [1, 3, 4], 'float16'), b = put(cpu(), normals(8, 82), [1, 4, 2], 'float16');
    expect(() => cpu().kernels.BatchMatMul(a, b, false, false))
      .toThrow("BatchMatMul: the 'cpu' backend does not compute matmul kernels in float16 (it declares float32, bfloat16)");
    const x = put(cpu(), normals(2 * 3 * 5 * 5, 83), [2, 3, 5, 5], 'float16');
    const w = put(cpu(), normals(4 * 3 * 3 * 3, 84), [4, 3, 3, 3], 'float16');
    const p: Conv2DParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    expect(() => cpu().kernels.Conv2D(x, w, p))
      .toThrow("Conv2D: the 'cpu' backend does not compute conv kernels in float16 (it declares float32, bfloat16)");
    expect(() => cpu().kernels.Conv2DBackpropFilter(x, x, [4, 3, 3, 3], p))
      .toThrow("Conv2DBackpropFilter: the 'cpu' backend does not compute conv kernels in float16");
  });

  it("the addon's own kernels say what float16 matmul and conv need (oneDNN 2.6 has no float16 for CPUs)", () => {
    const raw = loadAddon().addon!.cpu;
    const a = raw.fromArray(normals(12, 85), [1, 3, 4], 'float16'), b = raw.fromArray(normals(8, 86), [1, 4, 2], 'float16');
    expect(() => raw.kernels.BatchMatMul(a, b, false, false)).toThrow(/^BatchMatMul: float16 matmul is not implemented by the linked oneDNN 2\.6.*AVX512-FP16/);
    const x = raw.fromArray(normals(50, 87), [1, 2, 5, 5], 'float16'), w = raw.fromArray(normals(18, 88), [1, 2, 3, 3], 'float16');
    expect(() => raw.kernels.Conv2D(x, w, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }))
      .toThrow(/^Conv2D: float16 convolution is not implemented by the linked oneDNN 2\.6.*avx512_core_fp16/);
    // bfloat16 runs on the same path.
    const xb = raw.fromArray(normals(50, 87), [1, 2, 5, 5], 'bfloat16'), wb = raw.fromArray(normals(18, 88), [1, 2, 3, 3], 'bfloat16');
    expect(raw.kernels.Conv2D(xb, wb, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }).dtype).toBe('bfloat16');
  });

  it('mixed dtypes and non-float types are refused by the kernels themselves', () => {
    const raw = loadAddon().addon!.cpu;
    const a = raw.fromArray(normals(12, 91), [1, 3, 4], 'bfloat16'), b = raw.fromArray(normals(8, 92), [1, 4, 2], 'float32');
    expect(() => raw.kernels.BatchMatMul(a, b, false, false)).toThrow("BatchMatMul: 'a' is bfloat16 [1, 3, 4] but 'b' is float32 [1, 4, 2]; both operands must have one dtype");
    const i = raw.fromArray(new Int32Array(6), [1, 6], 'int32');
    expect(() => raw.kernels.Softmax(i, 1)).toThrow("Softmax: argument 'x' is int32");
    expect(() => raw.fromArray(new Float64Array(2), [2], 'bfloat16')).toThrow('fromArray: bfloat16 data must be a Float32Array');
  });

  const mpi = mpiBinding();
  it.skipIf(!('mpi' in mpi))('the MPI collectives refuse half tensors of either host backend before touching them', () => {
    const { mpi: m } = mpi as { mpi: MpiAddon };
    for (const b of [cpu(), ts()]) {
      const t = put(b, [1, 2, 3], [3], 'bfloat16');
      expect(() => m.allReduce(t, 'sum')).toThrow("allReduce: 'tensor' is bfloat16; the MPI collectives take float32");
    }
  });

  // 'cuda' computes the half types in every family: its own kernels (checked on 'cuda-emu' above),
  // cuBLAS and cuDNN (their half parity tables run on a GPU through the kit, scripts/gpu, not here).
  it("'cuda' declares both half types in every kernel family", () => {
    for (const [family, dtypes] of Object.entries(CUDA_DTYPES)) {
      expect([family, dtypes.includes('bfloat16') && dtypes.includes('float16')]).toEqual([family, true]);
    }
  });
});
