"""Measure which tests the fast loop should leave out: every test of `-m "not slow"` that takes 0.05 s or more
(setup, call and teardown together, in one process) is written to tests/slow_tests.txt, which tests/conftest.py
reads to mark those tests `slow`. The fast loop then stays under a minute on 2 cores (about 50 s, two workers),
while the whole suite still runs them.

    python tools/slow_tests.py                     # runs the fast loop in one process (about 2-3 minutes)
    python tools/slow_tests.py --log durations.txt # or reads the output of an earlier
                                                   # `pytest --durations=0 --durations-min=0 --no-slow-list` run

Run it on a quiet machine: a loaded one inflates every duration. The list replaces the old one entirely, so tests
that became fast, or were renamed, drop off it.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "tests" / "slow_tests.txt"
# pytest's --durations lines: "0.12s call     tests/test_x.py::test_y[a b]" (ids may hold spaces)
DURATION = re.compile(r"^(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(tests/\S.*?)\s*$")
HEADER = """\
# Tests of the fast loop that take {threshold} s or more, measured by tools/slow_tests.py ({how}).
# tests/conftest.py marks each `slow`: `pytest -m "not slow"` skips them, the whole suite runs them.
# Regenerate with `python tools/slow_tests.py` on a quiet machine; don't edit by hand.
"""


def durations_log() -> str:
    """Run the fast loop in one process (no worker contention) with every duration reported."""
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-n", "0", "-q", "-p", "no:cacheprovider"]
    command += ["--durations=0", "--durations-min=0", "--no-slow-list"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"The fast loop failed (exit {run.returncode}); fix it before measuring:\n{run.stdout[-3000:]}")
    return run.stdout


def slow_tests(log: str, threshold: float) -> list[str]:
    """The node ids whose setup, call and teardown add up to `threshold` seconds or more, sorted."""
    seconds: collections.Counter[str] = collections.Counter()
    for line in log.splitlines():
        match = DURATION.match(line)
        if match:
            seconds[match.group(3)] += float(match.group(1))
    if not seconds:
        sys.exit("No --durations lines found: run pytest with --durations=0 --durations-min=0.")
    return sorted(node for node, total in seconds.items() if total >= threshold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=0.05, help="seconds (default 0.05)")
    parser.add_argument("--log", type=Path, help="an earlier run's output instead of a new run")
    args = parser.parse_args()
    log = args.log.read_text() if args.log else durations_log()
    nodes = slow_tests(log, args.threshold)
    how = "from a saved pytest -n 0 --durations=0 log" if args.log else "pytest -n 0"
    LIST.write_text(HEADER.format(threshold=args.threshold, how=how) + "".join(f"{node}\n" for node in nodes))
    print(f"{len(nodes)} tests of {args.threshold} s or more -> {LIST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
