// Builds the addon with cmake-js during `npm install`. A failure (no compiler, no cmake) must not
// fail the install: it is recorded in build/build-report.json, and loading @nodegrad/native then
// says once why the 'cpu' backend is missing (describeBuild()). CI makes a missing backend a
// failing test instead (NODEGRAD_REQUIRE_BACKENDS, native/test/required_backends.test.ts).
//
// Environment:
//   NODEGRAD_CMAKE_ARGS  extra cmake-js arguments, space-separated; a CMake option is passed as
//                        --CDNAME=VALUE (cmake-js reads -D as --debug), e.g. --CDNODEGRAD_WITH_ONEDNN=OFF
//   NODEGRAD_BUILD_DIR   build folder (default native/build); the loader reads the same variable,
//                        so a second build (e.g. one without oneDNN) can sit beside the main one
//   NODEGRAD_SKIP_NATIVE skip the build, and record that it was skipped
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = process.env.NODEGRAD_BUILD_DIR ? resolve(process.env.NODEGRAD_BUILD_DIR) : join(root, 'build');
// The default build keeps its log where users have always found it; another build keeps its own.
const logFile = process.env.NODEGRAD_BUILD_DIR ? join(buildDir, 'build-log.txt') : join(root, 'build-log.txt');
const require = createRequire(import.meta.url);
const report = (ok, reason) => {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, 'build-report.json'), JSON.stringify({ ok, reason, at: new Date().toISOString() }, null, 2));
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
const args = [cli, 'compile', '--directory', root, '--out', buildDir,
  ...(process.env.NODEGRAD_CMAKE_ARGS ?? '').split(' ').filter(Boolean)];
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
mkdirSync(dirname(logFile), { recursive: true });
writeFileSync(logFile, log);
if (r.status === 0) {
  report(true, null);
  for (const line of log.split('\n')) if (line.includes('nodegrad feature')) console.log(line.trim());
} else {
  const tail = log.split('\n').filter((l) => /error|not found|fail/i.test(l)).slice(-5).join(' | ');
  report(false, `the addon did not compile (${tail || `cmake-js exited with ${r.status}`}); see ${logFile}`);
  console.warn(`[nodegrad] native addon build failed; the pure-TS backend stays available. See ${logFile}`);
}
