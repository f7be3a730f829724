#!/usr/bin/env bash
# The test command from README.md: make .venv (the CPU runtime with numba for the fused update, test tools, MPI for
# the data-parallel tests) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[cpu,dev,plot,distributed]"
exec .venv/bin/python -m pytest "$@"
