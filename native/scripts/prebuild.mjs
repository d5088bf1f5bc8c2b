// Fills the platform package @nodegrad/native-linux-x64-gnu (packages/native-linux-x64-gnu) with a
// prebuilt 'cpu' addon, run by that package's prepack. It compiles nodegrad.node into
// native/build-prebuilt without the MPI process group (a prebuilt cannot assume Open MPI on the
// user's machine; PyTorch's wheels leave MPI out for the same reason), copies the shared libraries
// it needs beyond glibc and the C++ runtime (oneDNN, and oneDNN's libOpenCL and libgomp) beside
// it, and sets each file's RUNPATH to $ORIGIN with patchelf, so that the dynamic loader takes them
// from the package, never from /usr. build-info.json records what was built and what it needs.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const native = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(native, '..', 'packages', 'native-linux-x64-gnu');
const buildDir = join(native, 'build-prebuilt');

/** Libraries bundled when the addon needs them, with the Debian package whose copyright file is their licence. */
const BUNDLE = { 'libdnnl.so.2': 'libdnnl2', 'libOpenCL.so.1': 'ocl-icd-libopencl1', 'libgomp.so.1': 'libgomp1' };
/** Libraries every glibc system has; anything else unbundled would fail on a user's machine. */
const SYSTEM = /^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so/;

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`prebuild: ${cmd} could not run (${r.error.message})${cmd === 'patchelf' ? ': apt install patchelf' : ''}`);
  if (r.status !== 0) throw new Error(`prebuild: ${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
  return r.stdout;
}

const r = spawnSync(process.execPath, [join(native, 'scripts', 'build_addon.mjs')], {
  stdio: 'inherit',
  env: { ...process.env, NODEGRAD_BUILD_DIR: buildDir, NODEGRAD_BUILD_FROM_SOURCE: '1', NODEGRAD_SKIP_CUDA: '1',
    NODEGRAD_CMAKE_ARGS: '--CDNODEGRAD_WITH_MPI=OFF -T nodegrad_native' },
});
const report = JSON.parse(readFileSync(join(buildDir, 'build-report.json'), 'utf8'));
if (r.status !== 0 || !report.ok) throw new Error(`prebuild: the 'cpu' addon did not build: ${report.reason}`);
const addon = join(buildDir, 'Release', 'nodegrad.node');

// What the addon needs, transitively, as ldd resolves it here.
const needed = new Map();
for (const line of run('ldd', [addon]).split('\n')) {
  const m = /^\s*(\S+)(?: => (\S+))?/.exec(line);
  if (!m || SYSTEM.test(basename(m[1]))) continue;
  if (!(m[1] in BUNDLE)) throw new Error(`prebuild: nodegrad.node needs ${m[1]}, which is neither a glibc system library nor bundled`);
  needed.set(m[1], m[2]);
}
if (!needed.has('libdnnl.so.2')) throw new Error('prebuild: nodegrad.node does not link oneDNN: install libdnnl-dev');

for (const f of readdirSync(pkg)) if (f.endsWith('.node') || f.includes('.so')) rmSync(join(pkg, f));
rmSync(join(pkg, 'licenses'), { recursive: true, force: true });
mkdirSync(join(pkg, 'licenses'));
const files = [['nodegrad.node', addon], ...needed];
for (const [name, from] of files) {
  const to = join(pkg, name);
  copyFileSync(from, to);
  chmodSync(to, 0o755);
  run('patchelf', ['--set-rpath', '$ORIGIN', to]);
}
for (const [name] of needed) {
  const copyright = `/usr/share/doc/${BUNDLE[name]}/copyright`;
  if (existsSync(copyright)) copyFileSync(copyright, join(pkg, 'licenses', `${BUNDLE[name]}.txt`));
}

// The newest glibc and libstdc++ symbol versions any file needs are the oldest a machine may have.
const newest = (prefix) => {
  let v = '0';
  for (const [name] of files) {
    for (const m of run('objdump', ['-T', join(pkg, name)]).matchAll(new RegExp(`${prefix}_(\\d+(?:\\.\\d+)+)`, 'g'))) {
      if (m[1].localeCompare(v, undefined, { numeric: true }) > 0) v = m[1];
    }
  }
  return v;
};
const dpkgVersion = (p) => spawnSync('dpkg-query', ['-W', '-f=${Version}', p], { encoding: 'utf8' }).stdout || 'unknown';
const info = {
  files: files.map(([name]) => name),
  glibc: `>= ${newest('GLIBC')}`,
  libstdcxx: `>= GLIBCXX_${newest('GLIBCXX')}`,
  onednn: dpkgVersion('libdnnl2'),
  mpi: false,
  builtOn: run('ldd', ['--version']).split('\n')[0],
  builtAt: new Date().toISOString(),
};
writeFileSync(join(pkg, 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);
console.log(`[nodegrad] prebuilt ${info.files.join(', ')} into ${basename(pkg)} (glibc ${info.glibc}, oneDNN ${info.onednn})`);
