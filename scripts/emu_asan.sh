#!/usr/bin/env bash
# The 'cuda' kernels' index arithmetic under AddressSanitizer, on the host: builds the 'cuda-emu'
# addon (the .cu kernel families compiled for the host) with -fsanitize=address into
# native/build/asan, beside a copy of the 'cpu' addon, and runs the 'cuda-emu' test cases with
# NODEGRAD_CUDA_NO_CACHING=1, so that every tensor is a malloc of its own and a kernel that reads
# or writes past a tensor's end stops the test with ASan's report. A GPU runs the same index
# arithmetic; this finds such faults without one. Needs the 'cpu' build (scripts/setup.sh).
#   bash scripts/emu_asan.sh [vitest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
src=native/build
out=native/build/asan
cache() { sed -n "s/^$1:[A-Z]*=//p" "$src/CMakeCache.txt"; }
cmake -S native -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS=$(cache CMAKE_CXX_FLAGS) -fsanitize=address -fno-omit-frame-pointer" \
  "-DCMAKE_JS_INC=$(cache CMAKE_JS_INC)" "-DCMAKE_JS_VERSION=$(cache CMAKE_JS_VERSION)" \
  "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$PWD/$out/Release" -DNODEGRAD_TARGET=cpu \
  "-DNODEGRAD_WITH_MPI=$(cache NODEGRAD_WITH_MPI)" "-DNODEGRAD_WITH_ONEDNN=$(cache NODEGRAD_WITH_ONEDNN)" \
  "-DNODE_RUNTIME=$(cache NODE_RUNTIME)" "-DNODE_RUNTIMEVERSION=$(cache NODE_RUNTIMEVERSION)" \
  "-DNODE_ARCH=$(cache NODE_ARCH)" > "$out.log"
ninja -C "$out" nodegrad_cuda_emu >> "$out.log"
# The 'cpu' addon as built (uninstrumented: the check is of the emulated kernels).
cp "$src/Release/nodegrad.node" "$out/Release/"
# Node itself is not instrumented, so ASan's runtime comes first; leaks are not the question.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0
export NODEGRAD_BUILD_DIR="$PWD/$out" NODEGRAD_CUDA_NO_CACHING=1
# No 'cuda' addon here: cuDNN's loader fails under ASan's runtime ("Cannot load symbol
# cudnnGetVersion"), and the GPU's own path is not what this checks (the main test run requires it).
export NODEGRAD_CUDA_BUILD_DIR="$PWD/$out/no-cuda"
unset NODEGRAD_REQUIRE_CUDA_BUILD
# Without arguments: the 'cuda-emu' cases (by name) of every suite that has them, less the
# allocator's own (they count cache hits). Only those: the 'cpu' addon's oneDNN is not
# instrumented, and a vitest worker running its bfloat16 convolutions under ASan's runtime died
# now and then without a report (not reproduced outside vitest).
if [ $# -eq 0 ]; then
  mapfile -t files < <(grep -rl "cuda-emu\|describeBackends\|DEVICES_UNDER_TEST" --include='*.test.ts' packages native/test \
    | grep -v -e node_modules -e native/test/memory.test.ts | sort)
  set -- -t cuda-emu "${files[@]}"
fi
npx vitest run "$@"
