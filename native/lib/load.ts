/**
 * Loads the compiled 'cpu' addon: one built from source in this package (`npm install` ran
 * scripts/build_addon.mjs), else the prebuilt one of the platform package
 * @nodegrad/native-linux-x64-gnu (an optional dependency, with oneDNN beside it), else explains
 * why there is none. A source build comes first because it exists only when someone asked for it:
 * the install script skips it when a prebuilt is present, unless NODEGRAD_BUILD_FROM_SOURCE is set.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeAddon } from './native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** The one platform with prebuilt binaries; elsewhere the addon is built from source. */
export const PREBUILT_PACKAGE = '@nodegrad/native-linux-x64-gnu';

/** Where scripts/build_addon.mjs built the addon: NODEGRAD_BUILD_DIR, as there, else native/build. */
export function buildDir(): string {
  const dir = process.env.NODEGRAD_BUILD_DIR;
  return dir ? resolve(dir) : join(root, 'build');
}

/** Where the addon came from: compiled here, or the platform package's prebuilt binary. */
export interface AddonOrigin {
  kind: 'source' | 'prebuilt';
  /** The .node file that was loaded. */
  file: string;
  /** For a prebuilt: the platform package and its version. */
  package?: string;
}

export type LoadResult =
  | { addon: NativeAddon; origin: AddonOrigin; reason?: undefined }
  | { addon: null; origin?: undefined; reason: string };

function buildReport(): string | null {
  const file = join(buildDir(), 'build-report.json');
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8')) as { ok: boolean; reason: string | null };
  return r.ok ? null : r.reason;
}

/** The platform package's addon and version, when it is installed and holds one. */
export function prebuiltAddon(): { file: string; version: string } | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  let manifest: string;
  try {
    manifest = require.resolve(`${PREBUILT_PACKAGE}/package.json`);
  } catch {
    return null;
  }
  const file = join(dirname(manifest), 'nodegrad.node');
  if (!existsSync(file)) return null;
  return { file, version: (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version };
}

function load(file: string, origin: AddonOrigin): LoadResult {
  try {
    return { addon: require(file) as NativeAddon, origin };
  } catch (e) {
    const what = origin.kind === 'prebuilt' ? `the prebuilt addon of ${origin.package}` : 'the addon';
    return { addon: null, reason: `${what} failed to load: ${(e as Error).message}` };
  }
}

export function loadAddon(): LoadResult {
  const file = join(buildDir(), 'Release', 'nodegrad.node');
  if (existsSync(file)) return load(file, { kind: 'source', file });
  // NODEGRAD_BUILD_DIR names one build to test (e.g. the one without oneDNN): never substitute.
  const prebuilt = process.env.NODEGRAD_BUILD_DIR ? null : prebuiltAddon();
  if (prebuilt) return load(prebuilt.file, { kind: 'prebuilt', file: prebuilt.file, package: `${PREBUILT_PACKAGE}@${prebuilt.version}` });
  return {
    addon: null,
    reason: buildReport() ?? `the addon was never built and no prebuilt one is installed (no ${file}, no ${PREBUILT_PACKAGE}; ` +
      'a package manager that skips install scripts, as pnpm does by default, leaves only the prebuilt: ' +
      `run \`node ${join(root, 'scripts', 'build_addon.mjs')}\` to build from source)`,
  };
}
