#!/usr/bin/env bash
# The test command from README.md: make .venv (the CPU runtime with numba for the fused update, test tools, MPI for
# the data-parallel tests) and run the whole suite, one pytest worker per CPU up to four (pytest-xdist; each
# worker's ONNX Runtime sessions spin a thread per core, so more workers would only contend). `-n 0` runs it in one
# process; other pytest arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[cpu,dev,plot,distributed]"
# Bytecode is cached even where the environment turns it off: each of the suite's subprocesses (CLI runs, kill
# loops, MPI ranks) would otherwise compile the package from source again.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 "$@"
