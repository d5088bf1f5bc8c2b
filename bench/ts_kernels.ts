/**
 * GFLOP/s of the TS backend's GEMM-based kernels: a 512³ float32 matmul and a 3x3, pad-1 conv
 * on a 32x64x32x32 float32 input with 64 output channels, forward and both backward kernels.
 * Each figure is the median of a few timed runs after a warm-up run; the best run is shown beside
 * it, since other processes on a small machine slow single runs down.
 *   npx tsx bench/ts_kernels.ts
 */
import { tsBackend, type Conv2DParams, type Raw } from '../packages/autograd/src/index.js';

const k = tsBackend.kernels;

function random(shape: number[]): Raw {
  const buf = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < buf.length; i++) buf[i] = Math.random() * 2 - 1;
  return { buf, shape, dtype: 'float32' };
}

/** Median and best seconds of `runs` calls of fn, after one untimed warm-up call. */
function time(fn: () => unknown, runs: number): { median: number; best: number } {
  fn();
  const ts: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1e3);
  }
  ts.sort((a, b) => a - b);
  return { median: ts[Math.floor(ts.length / 2)]!, best: ts[0]! };
}

function report(name: string, flops: number, t: { median: number; best: number }): void {
  const rate = (s: number) => (flops / s / 1e9).toFixed(2);
  console.log(`${name.padEnd(40)} ${rate(t.median).padStart(6)} GFLOP/s median, ${rate(t.best)} best ` +
    `(${(t.median * 1e3).toFixed(0)} ms)`);
}

const n = 512;
const a = random([1, n, n]), b = random([1, n, n]);
report(`matmul ${n}x${n}x${n} float32`, 2 * n * n * n, time(() => k.BatchMatMul(a, b, false, false), 9));

const [N, C, H, W, O, KH, KW] = [32, 64, 32, 32, 64, 3, 3];
const p: Conv2DParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
const x = random([N, C, H, W]), w = random([O, C / p.groups, KH, KW]);
const y = k.Conv2D(x, w, p);
const [, , HO, WO] = y.shape as [number, number, number, number];
const dy = random([N, O, HO, WO]);
// Each direction does the same multiply-adds: 2·N·Cout·Hout·Wout·(Cin/groups)·kh·kw.
const convFlops = 2 * N * O * HO * WO * (C / p.groups) * KH * KW;
const label = `${N}x${C}x${H}x${W} -> ${O}, ${KH}x${KW}`;
report(`conv2d fwd ${label}`, convFlops, time(() => k.Conv2D(x, w, p), 5));
report(`conv2d bwd-input ${label}`, convFlops, time(() => k.Conv2DBackpropInput(dy, w, x.shape, p), 5));
report(`conv2d bwd-filter ${label}`, convFlops, time(() => k.Conv2DBackpropFilter(x, dy, w.shape, p), 5));
