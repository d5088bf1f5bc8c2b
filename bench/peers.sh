#!/usr/bin/env bash
# The peers `npm run bench` measures nodegrad against, installed outside the repository (issue 13):
#   $NODEGRAD_PEERS (default ~/.cache/nodegrad-peers)/venv  PyTorch 2.15 from PyPI, torchvision, onnx, onnxruntime, safetensors
#   $NODEGRAD_PEERS/node                                    onnxruntime-node from npm (ONNX Runtime for Node)
# About 5 GB (PyPI's torch pulls its CUDA wheels; the bench runs on the CPU). Then:
#   npm run bench                 (finds the folder by the same default; --peers DIR for another)
set -euo pipefail
dir="${NODEGRAD_PEERS:-$HOME/.cache/nodegrad-peers}"
py="${PYTHON:-python3}"
mkdir -p "$dir/node"
if [ ! -x "$dir/venv/bin/python" ]; then "$py" -m venv "$dir/venv"; fi
"$dir/venv/bin/pip" install -q torch==2.15.0 torchvision==0.29.2 onnx==1.23.2 onnxruntime==1.32.0 safetensors==0.8.0
# onnxruntime-node's install script would download CUDA providers; the CPU one ships in the package.
(cd "$dir/node" && [ -f package.json ] || echo '{"private":true}' > package.json)
ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$dir/node" --no-audit --no-fund --save-exact onnxruntime-node@1.31.1
"$dir/venv/bin/python" -c "import torch, torchvision, onnx, onnxruntime; print('peers: torch', torch.__version__, 'onnxruntime', onnxruntime.__version__)"
node -e "console.log('peers: onnxruntime-node', require('$dir/node/node_modules/onnxruntime-node').env.versions.node)"
