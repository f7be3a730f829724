#!/usr/bin/env bash
# The reference frameworks tools/bench.py compares with, each in its own venv (the package never needs them):
# DIR/venv-torch (PyTorch 2.13 CPU, onnx and onnxscript for torch.onnx.export) and DIR/venv-jax (JAX 0.10.2 on
# the CPU, optax, Keras 3 for KERAS_BACKEND=jax).
# DIR defaults to the folder that holds this checkout. An existing venv is reused; pip leaves what is installed.
#   bash tools/peer_venvs.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-..}
PYTHON=${PYTHON:-python3}
[ -x "$DIR/venv-torch/bin/python" ] || "$PYTHON" -m venv "$DIR/venv-torch"
"$DIR/venv-torch/bin/python" -m pip install -q "torch==2.13.0" numpy onnx onnxscript  # torch.onnx.export needs both
[ -x "$DIR/venv-jax/bin/python" ] || "$PYTHON" -m venv "$DIR/venv-jax"
"$DIR/venv-jax/bin/python" -m pip install -q "jax[cpu]==0.10.2" optax keras numpy
echo "--torch-python $DIR/venv-torch/bin/python --jax-python $DIR/venv-jax/bin/python"
