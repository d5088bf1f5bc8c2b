/**
 * Matrix multiply for the TS backend: a register-blocked GEMM in the Goto/BLIS arrangement
 * (Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication", 2008).
 *
 * C += A·B is cut into blocks that fit the caches; each block of A and B is first copied
 * ("packed") into contiguous panels, and a 4x4 micro-kernel then runs over the panels keeping
 * its 16 partial sums in locals, so each loaded element feeds four multiply-adds instead of one.
 * All arithmetic is float64 on Float64Array buffers: float32 inputs are widened once up front,
 * which keeps every hot function monomorphic for V8 and makes float32 results the correctly
 * rounded float64 sums.
 */
import type { Kernels, Raw } from '../../backend.js';
import { allocArray, type DType } from '../../dtype.js';
import { fmt, type Shape } from '../../shape.js';
import { farr, out } from './util.js';

/** A strided matrix inside a float64 buffer: element (i, j) is data[off + i * rs + j * cs]. */
export interface MatView {
  data: Float64Array;
  off: number;
  rs: number;
  cs: number;
}

// MR x NR is the micro-tile: its 16 accumulators fill the 16 x86-64 vector registers V8
// allocates from (a 4x8 tile, 32 accumulators, measured ~15% slower here from spills).
// A KC x NR panel of packed B (8 KiB) stays in L1 while the micro-kernel walks the packed
// MC x KC block of A (128 KiB, L2); NC bounds the packed block of B (KC x NC, 2 MiB, L3).
const MR = 4;
const NR = 4;
const KC = 256;
const MC = 64;
const NC = 1024;

// Scratch reused across calls: kernels run synchronously and gemm never re-enters itself.
const aPack = new Float64Array(MC * KC);
let bPack = new Float64Array(0);
const tile = new Float64Array(MR * NR);

/** C[m x n] += A[m x k] · B[k x n] on float64 views; a transpose is just swapped strides. */
export function gemm(m: number, n: number, k: number, a: MatView, b: MatView, c: MatView): void {
  if (m <= 0 || n <= 0 || k <= 0) return;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const bp = packB(b, pc, jc, kc, nc);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        const ap = packA(a, ic, pc, mc, kc);
        // jr outside ir: one B panel is reused from L1 against every A panel of the block.
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = Math.min(NR, nc - jr);
          for (let ir = 0; ir < mc; ir += MR) {
            microKernel(kc, ap, ir * kc, bp, jr * kc);
            addTile(c, ic + ir, jc + jr, Math.min(MR, mc - ir), cols);
          }
        }
      }
    }
  }
}

/**
 * Copies A[i0 : i0+mc, p0 : p0+kc] into MR-row panels, each stored k-major (MR values per k),
 * so the micro-kernel reads A sequentially. Rows past the edge are zero, which lets the
 * micro-kernel always compute a full tile; addTile drops the padding.
 */
function packA(a: MatView, i0: number, p0: number, mc: number, kc: number): Float64Array {
  const { data, rs, cs } = a;
  let q = 0;
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = Math.min(MR, mc - ir);
    let src = a.off + (i0 + ir) * rs + p0 * cs;
    for (let p = 0; p < kc; p++, q += MR, src += cs) {
      for (let i = 0; i < MR; i++) aPack[q + i] = i < rows ? data[src + i * rs]! : 0;
    }
  }
  return aPack;
}

/** Copies B[p0 : p0+kc, j0 : j0+nc] into NR-column panels, k-major, zero-padded like packA. */
function packB(b: MatView, p0: number, j0: number, kc: number, nc: number): Float64Array {
  const need = kc * Math.ceil(nc / NR) * NR;
  if (bPack.length < need) bPack = new Float64Array(Math.max(need, KC * NR));
  const { data, rs, cs } = b;
  let q = 0;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = Math.min(NR, nc - jr);
    let src = b.off + p0 * rs + (j0 + jr) * cs;
    for (let p = 0; p < kc; p++, q += NR, src += rs) {
      for (let j = 0; j < NR; j++) bPack[q + j] = j < cols ? data[src + j * cs]! : 0;
    }
  }
  return bPack;
}

/** tile = (MR x kc panel of A) · (kc x NR panel of B), the 16 sums held in locals. */
function microKernel(kc: number, ap: Float64Array, ai: number, bp: Float64Array, bi: number): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < kc; p++, ai += MR, bi += NR) {
    const a0 = ap[ai]!, a1 = ap[ai + 1]!, a2 = ap[ai + 2]!, a3 = ap[ai + 3]!;
    const b0 = bp[bi]!, b1 = bp[bi + 1]!, b2 = bp[bi + 2]!, b3 = bp[bi + 3]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  tile[0] = c00; tile[1] = c01; tile[2] = c02; tile[3] = c03;
  tile[4] = c10; tile[5] = c11; tile[6] = c12; tile[7] = c13;
  tile[8] = c20; tile[9] = c21; tile[10] = c22; tile[11] = c23;
  tile[12] = c30; tile[13] = c31; tile[14] = c32; tile[15] = c33;
}

/** Adds the valid rows x cols corner of the tile into C at (i0, j0). */
function addTile(c: MatView, i0: number, j0: number, rows: number, cols: number): void {
  const { data, rs, cs } = c;
  for (let i = 0; i < rows; i++) {
    const row = c.off + (i0 + i) * rs + j0 * cs;
    for (let j = 0; j < cols; j++) data[row + j * cs] += tile[i * NR + j]!;
  }
}

/** The buffer of a float tensor as float64: the buffer itself when it already is one, else a widened copy. */
export function toF64(x: Raw): Float64Array {
  const b = farr(x);
  return b instanceof Float64Array ? b : Float64Array.from(b);
}

/** A raw tensor of `dtype` holding float64 results (rounded once when dtype is float32). */
export function fromF64(data: Float64Array, shape: Shape, dtype: DType): Raw {
  if (dtype === 'float64') return out(shape, dtype, data);
  const buf = allocArray(dtype, data.length);
  buf.set(data);
  return out(shape, dtype, buf);
}

export const matmulKernels: Pick<Kernels, 'BatchMatMul'> = {
  BatchMatMul(a, b, transA, transB) {
    if (a.shape.length !== 3 || b.shape.length !== 3) {
      throw new Error(`ts BatchMatMul: expected rank-3 operands, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
    }
    const [batch, a1, a2] = a.shape as [number, number, number];
    const [bBatch, b1, b2] = b.shape as [number, number, number];
    const [m, k] = transA ? [a2, a1] : [a1, a2];
    const [kb, n] = transB ? [b2, b1] : [b1, b2];
    if (batch !== bBatch || k !== kb) {
      throw new Error(`ts BatchMatMul: shapes ${fmt(a.shape)}${transA ? ' (transposed)' : ''} and ` +
        `${fmt(b.shape)}${transB ? ' (transposed)' : ''} do not match (batch ${batch} vs ${bBatch}, inner ${k} vs ${kb})`);
    }
    const A = toF64(a), B = toF64(b);
    const C = new Float64Array(batch * m * n);
    for (let i = 0; i < batch; i++) {
      gemm(m, n, k,
        { data: A, off: i * m * k, rs: transA ? 1 : k, cs: transA ? m : 1 },
        { data: B, off: i * k * n, rs: transB ? 1 : n, cs: transB ? k : 1 },
        { data: C, off: i * m * n, rs: n, cs: 1 });
    }
    return fromF64(C, [batch, m, n], a.dtype);
  },
};
