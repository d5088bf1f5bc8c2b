#!/usr/bin/env bash
# The CUDA toolchain and libraries the 'cuda' backend builds against, from NVIDIA's pinned wheels
# on PyPI (the set PyTorch 2.11 pins, which the GPU test machine's venv holds): nvcc, the CUDA
# runtime, cuBLAS, cuDNN 9 and NCCL, without a system install. Prints the folder that holds
# nvidia/{cu13,cudnn,nccl} (NVROOT for CMake) on its last line.
#
#   bash native/scripts/cuda-toolchain.sh [CACHE]     CACHE defaults to $NODEGRAD_CUDA_CACHE or ~/.cache/nodegrad-cuda
#
# Measured facts behind it (../shared/cuda.md): the wheels install with --no-deps in ONE pip call
# (a second `pip install --target` into the same folder skips nvidia/ silently, so a finished
# install is marked with a stamp and reused as a whole, never topped up), and nvcc links
# -L.../lib64, which the wheels do not ship: a lib64 -> lib link supplies it.
set -euo pipefail

WHEELS=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.1.0.3 nvidia-cudnn-cu13==9.19.0.56
  nvidia-nccl-cu13==2.28.9
)
CACHE="${1:-${NODEGRAD_CUDA_CACHE:-$HOME/.cache/nodegrad-cuda}}"
PY="${PYTHON:-python3}"
STAMP="$CACHE/nv/.installed"
WANT="${WHEELS[*]}"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "cuda-toolchain: already installed in $CACHE/nv" >&2
else
  mkdir -p "$CACHE/wheels"
  echo "cuda-toolchain: downloading ${#WHEELS[@]} pinned wheels into $CACHE/wheels" >&2
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CACHE/wheels" "${WHEELS[@]}"
  # Only the pinned files: an older download of another version must not join the install.
  files=()
  for w in "${WHEELS[@]}"; do
    name="${w%%==*}"; version="${w##*==}"
    f=$(ls "$CACHE/wheels/${name//-/_}-${version}-"*.whl 2>/dev/null | head -1)
    [ -n "$f" ] || { echo "cuda-toolchain: no wheel for $w in $CACHE/wheels" >&2; exit 1; }
    files+=("$f")
  done
  rm -rf "$CACHE/nv.tmp"
  echo "cuda-toolchain: installing into $CACHE/nv" >&2
  "$PY" -m pip install -q --no-deps --no-index --no-compile --target "$CACHE/nv.tmp" "${files[@]}"
  ln -sfn lib "$CACHE/nv.tmp/nvidia/cu13/lib64"
  rm -rf "$CACHE/nv"
  mv "$CACHE/nv.tmp" "$CACHE/nv"
  echo "$WANT" > "$STAMP"
fi

NVROOT="$CACHE/nv/nvidia"
for f in cu13/bin/nvcc cu13/lib/libcudart_static.a cudnn/include/cudnn.h nccl/include/nccl.h; do
  [ -e "$NVROOT/$f" ] || { echo "cuda-toolchain: $NVROOT/$f is missing after the install" >&2; exit 1; }
done
"$NVROOT/cu13/bin/nvcc" --version | tail -1 >&2
echo "$NVROOT"
