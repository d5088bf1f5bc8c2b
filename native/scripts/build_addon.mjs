// Builds the addons with cmake-js during `npm install`, each in its own folder so that one's
// failure never takes the other down: nodegrad.node (the 'cpu' device) always, and
// nodegrad_cuda.node (the 'cuda:N' devices) when a CUDA toolchain is found. A failure (no compiler,
// no cmake) must not fail the install: it is recorded in <build folder>/build-report.json, and
// loading @nodegrad/native then says once why the backend is missing (describeBuild()). CI makes a
// missing backend a failing test instead (NODEGRAD_REQUIRE_BACKENDS, native/test/required_backends.test.ts).
//
// Environment:
//   NODEGRAD_CMAKE_ARGS      extra cmake-js arguments for the 'cpu' build, space-separated; a CMake
//                            option is passed as --CDNAME=VALUE (cmake-js reads -D as --debug),
//                            e.g. --CDNODEGRAD_WITH_ONEDNN=OFF
//   NODEGRAD_BUILD_DIR       the 'cpu' build folder (default native/build); the loader reads the
//                            same variable, so a second build (e.g. one without oneDNN) can sit
//                            beside the main one
//   NODEGRAD_CUDA_BUILD_DIR  the 'cuda' build folder (default native/build-cuda, or
//                            <NODEGRAD_BUILD_DIR>-cuda when that is set)
//   NODEGRAD_CUDA_ROOT       the nvidia/ folder of NVIDIA's CUDA wheels (native/scripts/cuda-toolchain.sh);
//                            unset: the toolchain script's default cache, else CUDA_HOME or
//                            /usr/local/cuda (a system CUDA), else no 'cuda' build
//   NODEGRAD_SKIP_NATIVE     skip both builds, and record that they were skipped
//   NODEGRAD_SKIP_CUDA       skip the 'cuda' build
//   NODEGRAD_BUILD_FROM_SOURCE  compile the 'cpu' addon even when the prebuilt one of
//                            @nodegrad/native-linux-x64-gnu is installed (it has no MPI process group)
//
// Outside this repository a prebuilt 'cpu' addon makes its build unnecessary, and it is skipped;
// in the repository's workspace the 'cpu' addon is always compiled, since its tests need every part.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const cpuDir = env.NODEGRAD_BUILD_DIR ? resolve(env.NODEGRAD_BUILD_DIR) : join(root, 'build');
const cudaDir = env.NODEGRAD_CUDA_BUILD_DIR ? resolve(env.NODEGRAD_CUDA_BUILD_DIR)
  : env.NODEGRAD_BUILD_DIR ? `${cpuDir}-cuda` : join(root, 'build-cuda');
const require = createRequire(import.meta.url);
const PREREQUISITES = 'building from source needs cmake >= 3.18, a C++17 compiler, make and oneDNN ' +
  '(Debian and Ubuntu: apt install cmake g++ make libdnnl-dev ocl-icd-opencl-dev; add libopenmpi-dev for ' +
  "@nodegrad/distributed's MPI process group)";

const report = (dir, ok, reason) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'build-report.json'), JSON.stringify({ ok, reason, at: new Date().toISOString() }, null, 2));
};

/** The prebuilt 'cpu' addon's file when its platform package is installed and the addon loads here, else null. */
function prebuiltCpu() {
  let file;
  try {
    file = join(dirname(require.resolve('@nodegrad/native-linux-x64-gnu/package.json')), 'nodegrad.node');
  } catch {
    return null;
  }
  if (!existsSync(file)) return null;
  try {
    require(file);
    return file;
  } catch (e) {
    // An older glibc than the build machine's, say: the source build is the fallback.
    console.warn(`[nodegrad] the prebuilt 'cpu' addon does not load here (${e.message.split('\n')[0]}); compiling it`);
    return null;
  }
}

/** Whether this is the repository's native/ folder, a workspace of the package.json above it. */
function inRepository() {
  try {
    const above = JSON.parse(readFileSync(join(root, '..', 'package.json'), 'utf8'));
    return Array.isArray(above.workspaces) && above.workspaces.includes('native');
  } catch {
    return false;
  }
}

/** Where the CUDA toolchain is: { root } (wheels), { home } (a system CUDA), or { reason } when none. */
function cudaToolchain() {
  if (env.NODEGRAD_SKIP_CUDA) return { reason: 'NODEGRAD_SKIP_CUDA was set at install time' };
  if (env.NODEGRAD_CUDA_ROOT) return { root: resolve(env.NODEGRAD_CUDA_ROOT) };
  const cache = join(env.NODEGRAD_CUDA_CACHE ?? join(homedir(), '.cache', 'nodegrad-cuda'), 'nv', 'nvidia');
  if (existsSync(join(cache, 'cu13', 'bin', 'nvcc'))) return { root: cache };
  const home = env.CUDA_HOME ?? '/usr/local/cuda';
  if (existsSync(join(home, 'bin', 'nvcc'))) return { home };
  const scripts = join(root, 'scripts');
  return { reason: `no CUDA toolchain was found at install time: run \`bash ${join(scripts, 'cuda-toolchain.sh')}\` ` +
    `(NVIDIA's wheels) or set CUDA_HOME, then \`node ${join(scripts, 'build_addon.mjs')}\`` };
}

/** One cmake-js build into `dir`; true when it succeeded. */
function build(name, dir, logFile, args, extraEnv = {}) {
  let cli;
  try {
    cli = require.resolve('cmake-js/bin/cmake-js');
  } catch (e) {
    report(dir, false, `cmake-js is not installed: ${e.message}`);
    return false;
  }
  const r = spawnSync(process.execPath, [cli, 'compile', '--directory', root, '--out', dir, ...args],
    { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...env, ...extraEnv } });
  const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, log);
  if (r.status === 0) {
    report(dir, true, null);
    for (const line of log.split('\n')) if (/nodegrad (feature|cuda)/.test(line)) console.log(line.trim());
    return true;
  }
  const tail = log.split('\n').filter((l) => /error|not found|fail/i.test(l)).slice(-5).join(' | ');
  report(dir, false, `the ${name} addon did not compile (${tail || `cmake-js exited with ${r.status}`}); see ${logFile}`);
  console.warn(`[nodegrad] the ${name} addon did not build; see ${logFile}`);
  return false;
}

if (env.NODEGRAD_SKIP_NATIVE) {
  report(cpuDir, false, 'NODEGRAD_SKIP_NATIVE was set at install time');
  report(cudaDir, false, 'NODEGRAD_SKIP_NATIVE was set at install time');
  process.exit(0);
}
// The default build keeps its log where users have always found it; another build keeps its own.
const cpuLog = env.NODEGRAD_BUILD_DIR ? join(cpuDir, 'build-log.txt') : join(root, 'build-log.txt');
const prebuilt = env.NODEGRAD_BUILD_FROM_SOURCE || env.NODEGRAD_BUILD_DIR || inRepository() ? null : prebuiltCpu();
if (prebuilt) {
  console.log(`[nodegrad] the 'cpu' addon is prebuilt (${prebuilt}); set NODEGRAD_BUILD_FROM_SOURCE=1 to compile it`);
} else if (!build("'cpu'", cpuDir, cpuLog, (env.NODEGRAD_CMAKE_ARGS ?? '').split(' ').filter(Boolean))) {
  console.warn(`[nodegrad] the pure-TS backend stays available; ${PREREQUISITES}`);
}
const cuda = cudaToolchain();
if (cuda.reason) {
  report(cudaDir, false, cuda.reason);
} else {
  build("'cuda'", cudaDir, join(cudaDir, 'build-log.txt'), ['--CDNODEGRAD_TARGET=cuda'],
    cuda.root ? { NODEGRAD_CUDA_ROOT: cuda.root } : { CUDA_HOME: cuda.home, NODEGRAD_CUDA_ROOT: '' });
}
