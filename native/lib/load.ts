/** Loads the compiled addon, or explains once why it is not there. */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeAddon } from './native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export type LoadResult = { addon: NativeAddon; reason?: undefined } | { addon: null; reason: string };

function buildReport(): string | null {
  const file = join(root, 'build', 'build-report.json');
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8')) as { ok: boolean; reason: string | null };
  return r.ok ? null : r.reason;
}

export function loadAddon(): LoadResult {
  const file = join(root, 'build', 'Release', 'nodegrad.node');
  if (!existsSync(file)) {
    return { addon: null, reason: buildReport() ?? `the addon was never built (no ${file}; run npm install)` };
  }
  try {
    return { addon: createRequire(import.meta.url)(file) as NativeAddon };
  } catch (e) {
    return { addon: null, reason: `the addon failed to load: ${(e as Error).message}` };
  }
}
