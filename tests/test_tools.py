"""Smoke tests of the tools/ scripts that nothing else runs: they must keep working as the package changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def test_profile_step_prints_parts_operators_and_nodes():
    done = subprocess.run(
        [sys.executable, str(TOOLS / "profile_step.py"), "--steps", "3", "--top", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for line in ("ms/step over 3 steps", "| optimizer update |", "| forward |", "| Gemm |", "| top 2 nodes |"):
        assert line in done.stdout, done.stdout
