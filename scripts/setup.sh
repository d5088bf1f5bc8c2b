#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine with Node 20: the system libraries the native addon builds
# against (oneDNN from Debian's libdnnl-dev, whose CMake package also looks for the OpenCL headers
# of ocl-icd-opencl-dev; Open MPI for @nodegrad/distributed, with its mpirun; a C++ compiler;
# cmake), then `npm install`, which also builds
# the addon (a failed addon build leaves the pure-TS backend working and says why), then the build.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in libdnnl-dev ocl-icd-opencl-dev libopenmpi-dev openmpi-bin cmake g++ make patchelf; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "== apt-get install ${need[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# npm ci fails on this registry (platform-only optional packages are missing from a lockfile
# written here), so install with npm install.
npm install --no-audit --no-fund
cat native/build/build-report.json 2>/dev/null || true
# The packages' JavaScript (and with it the `nodegrad` command in node_modules/.bin).
npm run build
