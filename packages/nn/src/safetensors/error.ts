/** The one error type the safetensors reader and writer throw for a bad file or bad input. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** A tensor name (or any file-supplied string) quoted for a message, cut short if huge. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}
