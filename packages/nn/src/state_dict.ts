/** Loading a state dict into existing tensors: checks every key first, then copies in place. */
import { copy_, fmt, noGrad, type Tensor } from '@nodegrad/autograd';

export function loadIntoModule(own: Record<string, Tensor>, dict: Record<string, Tensor>,
  strict: boolean): { missingKeys: string[]; unexpectedKeys: string[] } {
  const missingKeys = Object.keys(own).filter((k) => !(k in dict));
  const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
  const mismatched = Object.keys(own).filter((k) => k in dict && own[k]!.shape.join() !== dict[k]!.shape.join());
  const problems = [
    ...(strict && missingKeys.length ? [`missing keys: ${missingKeys.join(', ')}`] : []),
    ...(strict && unexpectedKeys.length ? [`unexpected keys: ${unexpectedKeys.join(', ')}`] : []),
    ...mismatched.map((k) => `size mismatch for ${k}: checkpoint has ${fmt(dict[k]!.shape)}, the module has ${fmt(own[k]!.shape)}`),
  ];
  if (problems.length) throw new Error(`loadStateDict: ${problems.join('; ')}`);
  // copy_ is the one in-place write: it bumps each tensor's version once, so a value saved for a
  // backward before the load makes that backward throw, as any in-place change does.
  noGrad(() => {
    for (const [k, dst] of Object.entries(own)) {
      const src = dict[k];
      if (!src) continue;
      // Checkpoints may differ in dtype or device (an F64 file, an I64 counter): convert to ours.
      copy_(dst, src.to(dst.device).to(dst.dtype));
    }
  });
  return { missingKeys, unexpectedKeys };
}
