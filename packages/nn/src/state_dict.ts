/** Loading a state dict into existing tensors: checks every key first, then copies in place. */
import { copy_, fmt, noGrad, Tensor } from '@nodegrad/autograd';

/** At most this many keys of each kind in the error: a wrong architecture gives hundreds. */
const SHOWN = 10;

/** The first SHOWN entries, then how many more. */
function some(items: string[]): string {
  const shown = items.slice(0, SHOWN).join(', ');
  return items.length > SHOWN ? `${shown} and ${items.length - SHOWN} more` : shown;
}

export function loadIntoModule(own: Record<string, Tensor>, given: Record<string, Tensor>,
  strict: boolean): { missingKeys: string[]; unexpectedKeys: string[] } {
  const dict: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!(v instanceof Tensor)) {
      const what = v === null ? 'null' : typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v;
      throw new Error(`loadStateDict: the value of '${k}' must be a Tensor, got ${what}`);
    }
    // As PyTorch, for checkpoints from before 0-d tensors: a one-element 1-d value loads into a 0-d entry.
    dict[k] = own[k]?.ndim === 0 && v.ndim === 1 && v.size === 1 ? v.reshape([]) : v;
  }
  // As PyTorch's BatchNorm for a dict without version metadata (a plain dict, a safetensors file,
  // a checkpoint from before the counter): a missing num_batches_tracked keeps its current value.
  const missingKeys = Object.keys(own).filter((k) => !(k in dict) && !/(^|\.)num_batches_tracked$/.test(k));
  const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
  const mismatched = Object.keys(own).filter((k) => k in dict && own[k]!.shape.join() !== dict[k]!.shape.join());
  const problems = [
    ...(strict && missingKeys.length ? [`${missingKeys.length} missing keys: ${some(missingKeys)}`] : []),
    ...(strict && unexpectedKeys.length ? [`${unexpectedKeys.length} unexpected keys: ${some(unexpectedKeys)}`] : []),
    ...(mismatched.length ? [`${mismatched.length} size mismatches: ${some(mismatched.map((k) =>
      `${k} (checkpoint has ${fmt(dict[k]!.shape)}, the module has ${fmt(own[k]!.shape)})`))}`] : []),
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
