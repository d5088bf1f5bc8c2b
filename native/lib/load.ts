/** Loads the compiled addon, or explains once why it is not there. */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeAddon } from './native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where scripts/build_addon.mjs built the addon: NODEGRAD_BUILD_DIR, as there, else native/build. */
export function buildDir(): string {
  const dir = process.env.NODEGRAD_BUILD_DIR;
  return dir ? resolve(dir) : join(root, 'build');
}

export type LoadResult = { addon: NativeAddon; reason?: undefined } | { addon: null; reason: string };

function buildReport(): string | null {
  const file = join(buildDir(), 'build-report.json');
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8')) as { ok: boolean; reason: string | null };
  return r.ok ? null : r.reason;
}

export function loadAddon(): LoadResult {
  const file = join(buildDir(), 'Release', 'nodegrad.node');
  if (!existsSync(file)) {
    return { addon: null, reason: buildReport() ?? `the addon was never built (no ${file}; run npm install)` };
  }
  try {
    return { addon: createRequire(import.meta.url)(file) as NativeAddon };
  } catch (e) {
    return { addon: null, reason: `the addon failed to load: ${(e as Error).message}` };
  }
}
