#!/usr/bin/env bash
# The main job from README.md: install, get Fashion-MNIST, train the tutorial model, export it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[cpu,plot]"
.venv/bin/python tools/get_data.py
# The tutorial's MLP through the CLI: saved model (model.onnx, config.json, checkpoint), history.csv, curves.png.
exec .venv/bin/onnxtrain train --example fashion-mlp --output model/fashion-mlp --overwrite "$@"
