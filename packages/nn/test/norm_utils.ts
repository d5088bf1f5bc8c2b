// Helpers shared by the tests of BatchNorm folding (fuseConvBn, fuseForInference, native's fused inference).
import { noGrad, rand, randn, type Tensor } from '@nodegrad/autograd';
import { BatchNormBase, type Module } from '@nodegrad/nn';

/** Largest |a - b| over the largest |b|: an error relative to the reference's scale. */
export function maxRelErr(a: Tensor, b: Tensor): number {
  const x = a.toTypedArray(), y = b.toTypedArray();
  if (x.length !== y.length) throw new Error(`maxRelErr: ${x.length} values against ${y.length}`);
  let err = 0, scale = 0;
  for (let i = 0; i < x.length; i++) { err = Math.max(err, Math.abs(x[i]! - y[i]!)); scale = Math.max(scale, Math.abs(y[i]!)); }
  return err / scale;
}

/** Gives every BatchNorm non-trivial running statistics and affine parameters, on its own device and dtype. */
export function randomizeNorms(model: Module): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (!(m instanceof BatchNormBase)) continue;
      const n = m.numFeatures;
      const like = { device: m.running_mean!.device, dtype: m.running_mean!.dtype };
      m.running_mean!.copy_(randn([n], like).mul(0.2));
      m.running_var!.copy_(rand([n], like).add(0.5));
      m.weight!.copy_(rand([n], like).add(0.5));
      m.bias!.copy_(randn([n], like).mul(0.1));
    }
  });
}
