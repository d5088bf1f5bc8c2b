#!/usr/bin/env bash
# Where ResNet inference spends its convolution time, nodegrad 'cpu' against ONNX Runtime, per
# convolution shape (batch 8, 224x224, 2 threads each). Needs the peers (bench/peers.sh).
#   bash bench/conv_profile/run.sh [resnet50|resnet18] [rounds]
# The two sides alternate `rounds` times (default 2) so that other load on the machine hits both.
set -euo pipefail
name="${1:-resnet50}"; rounds="${2:-2}"
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
peers="${NODEGRAD_PEERS:-$HOME/.cache/nodegrad-peers}"
out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
case="$([ "$name" = resnet18 ] && echo C18 || echo C50)"
OMP_NUM_THREADS=2 "$peers/venv/bin/python" "$here/export.py" "$out" 2>/dev/null
for r in $(seq "$rounds"); do
  OMP_NUM_THREADS=2 node "$here/ort_profile.cjs" "$out" "$name" 12 > /dev/null
  (cd "$repo" && OMP_NUM_THREADS=2 ONEDNN_VERBOSE=1 npx tsx bench/profile.ts "$case" --steps 10 > "$out/ng_${name}_$r.txt")
  grep -A1 "per step" "$out/ng_${name}_$r.txt"
done
python3 "$here/analyze.py" "$out" "$name"
