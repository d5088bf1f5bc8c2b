// Builds the addon with cmake-js during `npm install`. A failure (no compiler, no cmake) must not
// fail the install: it is recorded in build/build-report.json, and loading @nodegrad/native then
// says once why the 'cpu' backend is missing (describeBuild()).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const report = (ok, reason) => {
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build', 'build-report.json'), JSON.stringify({ ok, reason, at: new Date().toISOString() }, null, 2));
};

if (process.env.NODEGRAD_SKIP_NATIVE) {
  report(false, 'NODEGRAD_SKIP_NATIVE was set at install time');
  process.exit(0);
}
let cli;
try {
  cli = require.resolve('cmake-js/bin/cmake-js');
} catch (e) {
  report(false, `cmake-js is not installed: ${e.message}`);
  process.exit(0);
}
const args = [cli, 'compile', '--directory', root, ...(process.env.NODEGRAD_CMAKE_ARGS ?? '').split(' ').filter(Boolean)];
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
writeFileSync(join(root, 'build-log.txt'), log);
if (r.status === 0) {
  report(true, null);
  for (const line of log.split('\n')) if (line.includes('nodegrad feature')) console.log(line.trim());
} else {
  const tail = log.split('\n').filter((l) => /error|not found|fail/i.test(l)).slice(-5).join(' | ');
  report(false, `the addon did not compile (${tail || `cmake-js exited with ${r.status}`}); see native/build-log.txt`);
  console.warn('[nodegrad] native addon build failed; the pure-TS backend stays available. See native/build-log.txt');
}
