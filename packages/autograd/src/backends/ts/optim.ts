/**
 * Fused optimizer updates for the TS backend: one pass over each parameter's elements, in place.
 * Each element is computed in float64 (a JS number) in the order of PyTorch 1.13's single-tensor
 * implementations (torch/optim/sgd.py, adam.py, adamw.py), where `x.add(y, alpha=a)` is x + a*y,
 * `addcmul(t1, t2, value=c)` is x + c*t1*t2 and `addcdiv(t1, t2, value=c)` is x + c*t1/t2; a
 * float32 buffer rounds on store, so float64 tensors match PyTorch to rounding.
 */
import type { AdamStepParams, Kernels, Raw, SGDStepParams } from '../../backend.js';
import { farr } from './util.js';

function sgdStep(param: Raw, grad: Raw, momentumBuf: Raw | null, o: SGDStepParams): void {
  const p = farr(param), g = farr(grad);
  const buf = momentumBuf ? farr(momentumBuf) : null;
  const { lr, momentum, dampening, weightDecay: wd, nesterov, maximize, firstStep } = o;
  const negLr = -lr, damp = 1 - dampening;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    let d = maximize ? -g[i]! : g[i]!;
    if (wd !== 0) d = d + wd * pi;
    if (buf && momentum !== 0) {
      // buf.mul_(momentum).add_(d, alpha=1 - dampening), or clone(d) on the first step; stored
      // first so that a float32 buffer feeds its rounded value to the update, as in PyTorch.
      buf[i] = firstStep ? d : buf[i]! * momentum + damp * d;
      const b = buf[i]!;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] = pi + negLr * d;
  }
}

function adamStep(param: Raw, grad: Raw, expAvg: Raw, expAvgSq: Raw, maxExpAvgSq: Raw | null, o: AdamStepParams): void {
  const p = farr(param), g = farr(grad), m = farr(expAvg), v = farr(expAvgSq);
  const vmax = o.amsgrad && maxExpAvgSq ? farr(maxExpAvgSq) : null;
  const { lr, beta1, beta2, eps, weightDecay: wd, decoupled, maximize, step } = o;
  // Scalars in doubles, as PyTorch computes them in Python.
  const stepSize = lr / (1 - beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const decay = 1 - lr * wd, c1 = 1 - beta1, c2 = 1 - beta2, negStep = -stepSize;
  for (let i = 0; i < p.length; i++) {
    let gi = maximize ? -g[i]! : g[i]!;
    if (wd !== 0) {
      if (decoupled) p[i] = p[i]! * decay;
      else gi = gi + wd * p[i]!;
    }
    m[i] = m[i]! * beta1 + c1 * gi;
    v[i] = v[i]! * beta2 + c2 * gi * gi;
    let vi = v[i]!;
    if (vmax) {
      // torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq); Math.max propagates NaN as it does.
      vmax[i] = Math.max(vmax[i]!, vi);
      vi = vmax[i]!;
    }
    const denom = Math.sqrt(vi) / bc2Sqrt + eps;
    p[i] = p[i]! + negStep * m[i]! / denom;
  }
}

/** found[0] = 1 where a value is not finite before scaling (never cleared); g *= inv, rounded on store. */
function unscale(grad: Raw, found: Raw, invScale: number): void {
  const g = farr(grad);
  // PyTorch passes 1 / scale as a float32 tensor; float32 * float32 is exact in a double and
  // rounded once on store, so this is float32 arithmetic for float32 (and halves, emulated in it).
  const inv = Math.fround(invScale);
  let bad = false;
  for (let i = 0; i < g.length; i++) {
    const v = g[i]!;
    if (!Number.isFinite(v)) bad = true;
    if (inv !== 1) g[i] = v * inv;
  }
  if (bad) farr(found)[0] = 1;
}

export const optimKernels: Pick<Kernels, 'SGDStep' | 'AdamStep' | 'NonFiniteCheckAndUnscale'> = {
  SGDStep: (params, grads, bufs, o) => params.forEach((p, i) => sgdStep(p, grads[i]!, bufs?.[i] ?? null, o)),
  AdamStep: (params, grads, ms, vs, vmaxs, o) =>
    params.forEach((p, i) => adamStep(p, grads[i]!, ms[i]!, vs[i]!, vmaxs?.[i] ?? null, o)),
  NonFiniteCheckAndUnscale: (grads, found, invScale) => grads.forEach((g) => unscale(g, found, invScale)),
};
