/** A kernel family not yet native throws naming itself: never a silent fallback (issue #4 in progress). */
export function notNative(name: string): () => never {
  return () => {
    throw new Error(`cpu backend: kernel ${name} is not native yet; use the 'ts' device for it`);
  };
}
