#!/usr/bin/env bash
# Installs xrdata with every extra into the current Python environment.
# PyTorch goes first as the CPU build (pinned) unless a torch is already installed: letting the resolver
# pick torch for the `train` extra would pull a multi-GB CUDA build on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install --upgrade --quiet pip
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install --quiet "torch==2.13.0"
fi
"$PY" -m pip install --quiet -e ".[all]"
