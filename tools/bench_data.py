"""Benchmark fashion_mnist() from a local source: load time and peak memory, each run in a fresh process.

Modes:
    gz    decode and verify the .gz files every time (cache_arrays=False)
    cold  first call with an empty cache: decode, verify, write the decoded .npy copies
    warm  later calls: load the .npy copies and re-verify them against the same SHA-256

Peak memory is the tracemalloc peak during the call (numpy reports its buffers to tracemalloc) and the growth
of the process's maximum RSS, both compared with the size of the returned arrays.

Usage:
    python tools/bench_data.py [--source DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def child(source: str, cache: str, mode: str, trace: bool) -> None:
    """Run one load in this process and print its measurements as JSON."""
    sys.path.insert(0, str(ROOT))
    from onnxtrain.datasets import fashion_mnist

    rss_before = _current_rss()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    train, test = fashion_mnist(source, cache_dir=cache, download=False, cache_arrays=mode != "gz", progress=False)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] if trace else 0
    final = sum(a.nbytes for d in (train, test) for a in (d.x, d.y))
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    print(json.dumps({"seconds": seconds, "traced": traced, "rss_growth": rss_growth, "final": final}))


def _current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def run(source: str, cache: str, mode: str, trace: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--source", source, "--cache", cache]
    if trace:
        command.append("--trace")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["gz", "cold", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.source, args.cache, args.child, args.trace)
        return
    rows = []
    for mode in ("gz", "cold", "warm"):
        times, memory = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as cache:
                if mode == "warm":
                    run(args.source, cache, "cold", False)  # write the decoded copies first
                times.append(run(args.source, cache, mode, False))
                if mode == "cold":
                    _empty(cache)
                memory.append(run(args.source, cache, mode, True))
        rows.append((mode, times, memory))
    print(f"source: {args.source}; median of {args.repeat} fresh processes each; import time excluded")
    print(
        f"{'mode':<6} {'load s':>8} {'traced peak MiB':>16} {'max-RSS growth MiB':>19} {'arrays MiB':>11} ",
        end="",
    )
    print(f"{'peak/arrays':>12}")
    for mode, times, memory in rows:
        seconds = statistics.median(t["seconds"] for t in times)
        traced = statistics.median(m["traced"] for m in memory)
        rss = statistics.median(t["rss_growth"] for t in times)
        final = times[0]["final"]
        print(
            f"{mode:<6} {seconds:>8.3f} {traced / MIB:>16.1f} {rss / MIB:>19.1f} {final / MIB:>11.1f} "
            f"{max(traced, rss) / final:>12.2f}"
        )


def _empty(cache: str) -> None:
    for path in Path(cache).iterdir():
        path.unlink()


if __name__ == "__main__":
    main()
