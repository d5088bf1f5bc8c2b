#!/usr/bin/env bash
# The GPU suite, in one call, from the repository root with gpu-kit/ beside the working tree
# (scripts/gpu/pack.sh). Results go to $OUT (default gpu-kit/out): tests.json/.log (the parity and
# golden suites on cuda:0), checks.json (allocator, out of memory, cuDNN benchmark cache),
# train.log (one epoch of the main job), bench.jsonl (ResNet-50 training step against PyTorch),
# summary.txt. The steps' timeouts add up to 530 s, inside one device call of 600 s. Without a GPU
# it is the dry run: everything loads and reports no device.
#   scripts/gpu/run.sh        the suite above
#   scripts/gpu/run.sh amp    the doctor, one epoch of the main job with --amp fp16, then the ResNet-50
#                             step with AMP (float16 with a GradScaler, bfloat16) on both sides into
#                             bench_amp.jsonl: 430 s of timeouts, a second call
set -uo pipefail
cd "$(dirname "$0")/.."
KIT="$PWD/gpu-kit"
OUT="${OUT:-$KIT/out}"
mkdir -p "$OUT"
export OUT NODEGRAD_KIT_ROOT="$PWD" NODEGRAD_CUDA_BUILD_DIR="$KIT/build-cuda" NODEGRAD_BUILD_DIR="$KIT/build-cpu"
# Unpacked outside the kit, which must stay small enough to travel (64 MiB with the tree).
NODE="${TMPDIR:-/tmp}/nodegrad-kit-node-$(cksum < "$KIT/node.xz" | cut -d' ' -f1)"
if [ ! -x "$NODE" ]; then
  if command -v xz >/dev/null; then xz -dc "$KIT/node.xz" > "$NODE"
  else python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())" "$KIT/node.xz" > "$NODE"; fi
  chmod +x "$NODE"
fi
# The CUDA libraries: the GPU machine's PyTorch venv, or those of this machine's toolchain cache.
VENV_NV="${NODEGRAD_NV_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia}"
PY="${NODEGRAD_PYTHON:-/opt/torch/.venv/bin/python3}"
for d in "$VENV_NV"/*/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
summary "kit $(cat "$KIT/commit" 2>/dev/null) on $(hostname); node $("$NODE" --version)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$OUT/summary.txt"

step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  summary "== $name: exit $rc in $((SECONDS - t0)) s"
  tail -n 3 "$OUT/$name.log" | sed 's/^/   /' | tee -a "$OUT/summary.txt"
}

step doctor 30 "$NODE" "$KIT/nodegrad.mjs" doctor --torch=false
if ! grep -q '^cuda      [0-9]* GPU' "$OUT/doctor.log"; then
  summary "dry run: no CUDA device here ($(grep '^cuda' "$OUT/doctor.log"))"
  exit 0
fi
if [ "${1:-}" = amp ]; then
  step train_amp 120 "$NODE" "$KIT/nodegrad.mjs" train --device cuda:0 --epochs 1 --amp fp16 --out "$OUT/run_amp"
  for p in fp16 bf16; do
    step "bench_nodegrad_$p" 70 "$NODE" "$KIT/gpu_bench.mjs" --cudnn-benchmark --amp "$p"
    step "bench_pytorch_$p" 70 "$PY" bench/gpu_resnet50.py --amp "$p"
  done
  cat "$OUT"/bench_*_fp16.log "$OUT"/bench_*_bf16.log | grep '^{' > "$OUT/bench_amp.jsonl" || true
  summary "done"
  exit 0
fi
step tests 180 "$NODE" "$KIT/kit_tests.mjs"
step checks 60 "$NODE" "$KIT/kit_checks.mjs"
step train 120 "$NODE" "$KIT/nodegrad.mjs" train --device cuda:0 --epochs 1 --out "$OUT/run"
step bench_nodegrad 70 "$NODE" "$KIT/gpu_bench.mjs" --cudnn-benchmark
step bench_pytorch 70 "$PY" bench/gpu_resnet50.py
cat "$OUT/bench_nodegrad.log" "$OUT/bench_pytorch.log" | grep '^{' > "$OUT/bench.jsonl" || true
summary "done"
