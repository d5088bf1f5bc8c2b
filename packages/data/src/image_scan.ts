/**
 * A quick check of an image file before training, so that a broken file is found at load time and
 * not when an epoch reaches it: the format's signature at the start and its end marker near the
 * end, two small reads per file. A file cut short (an interrupted copy or download) loses its end
 * marker: JPEG's EOI (FF D9), which entropy-coded data cannot contain (a coded FF is followed by 00
 * or a restart marker D0..D7), and PNG's IEND chunk. Damage inside a complete file is left to the
 * decoder.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// Some writers pad a file after its end marker: the marker is looked for this far from the end.
const TAIL = 4096;

const startsWith = (b: Uint8Array, sig: readonly number[]) => sig.every((v, i) => b[i] === v);

function findBytes(b: Uint8Array, pattern: readonly number[]): boolean {
  outer: for (let i = 0; i + pattern.length <= b.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (b[i + j] !== pattern[j]) continue outer;
    return true;
  }
  return false;
}

/** Why `path` is not a complete PNG or JPEG file, or null when it passes the check. */
export function imageFileProblem(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return `cannot be opened (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return 'is empty';
    const head = new Uint8Array(Math.min(size, 16));
    readSync(fd, head, 0, head.length, 0);
    const tail = new Uint8Array(Math.min(size, TAIL));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    if (startsWith(head, [0xff, 0xd8, 0xff])) {
      return findBytes(tail, [0xff, 0xd9]) ? null : 'is a truncated JPEG (no end-of-image marker)';
    }
    if (startsWith(head, PNG_SIGNATURE)) {
      return findBytes(tail, [0x49, 0x45, 0x4e, 0x44]) ? null : 'is a truncated PNG (no IEND chunk)';
    }
    const hex = Array.from(head.subarray(0, 4), (v) => v.toString(16).padStart(2, '0')).join(' ');
    return `is not a PNG or JPEG file (it starts with ${hex})`;
  } finally {
    closeSync(fd);
  }
}
