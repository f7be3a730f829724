"""The hostile-input table of docs/security.md: every hostile file of tests/test_security.py through every loader,
each in a fresh subprocess, with the outcome (the error's first line) and the process's peak memory.

    python tools/security_table.py [--only forged]

Peak memory is the worker's ru_maxrss: importing onnxtrain and ONNX Runtime, building the loader's objects and
whatever the loader allocated. The `valid` rows (the same files, undamaged) are the baseline a refusal is
compared with: a forged size that were allocated would show as gigabytes above it. For the forged layer sizes of
config.json the table adds a `layers rebuilt unchecked` row: the same config's layers built outside `load_model`,
with no model.onnx to hold them to (what `load_model` did before it checked them), so the refusal's saving shows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _table_module() -> ModuleType:
    """tests/test_security.py, whose functions build the hostile files and name the loaders."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("onnxtrain_security_table", REPO / "tests" / "test_security.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _worker(kind: str, loader: str, path: str) -> None:
    """Run one loader on one file; print {"outcome", "peak_mib", "seconds"} as the last line."""
    table = _table_module()
    loaders = {"onnx": table.ONNX_LOADERS, "save": {"load_model": table.onnxtrain.load_model}}
    run = {**loaders, "data": table.DATA_LOADERS, "rebuild": {UNCHECKED: _rebuild_unchecked}}[kind][loader]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    started = time.perf_counter()
    try:
        result = run(Path(path))
        close = getattr(result, "close", None)
        if callable(close):
            close()
        outcome = "loaded"
    except Exception as e:  # the outcome is the point: the documented type, or anything else
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        outcome = f"{type(e).__name__}: {first}"
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    added = round(peak - before, 1)
    print(json.dumps({"outcome": outcome, "peak_mib": round(peak), "added_mib": added, "seconds": seconds}))


UNCHECKED = "layers rebuilt unchecked"


def _rebuild_unchecked(folder: Path) -> Any:
    """A saved Sequential's layers built from its config.json alone: the weights they draw, unchecked."""
    from onnxtrain.layers import Layer
    from onnxtrain.sequential import Sequential

    config = json.loads((folder / "config.json").read_text())
    return Sequential([Layer.from_config(entry) for entry in config["layers"]], seed=config["seed"])


def _cases(table: ModuleType, root: Path, only: str | None) -> list[tuple[str, str, str, Path]]:
    """(row, kind, loader, path) of every hostile file, built under `root`, with the valid baselines first."""
    saved = table.save_tiny_model(root / "saved")
    cases: list[tuple[str, str, str, Path]] = []
    onnx_rows = [("valid (inside symlink)", table._symlink_inside, ""), *table.HOSTILE_ONNX]
    for index, (row, edit, _) in enumerate(onnx_rows):
        folder = table._external(saved, root / f"onnx-{index}", edit)
        cases += [(row, "onnx", loader, folder) for loader in table.ONNX_LOADERS]
    save_rows = [("valid save", lambda folder: None, ""), *table.HOSTILE_SAVES]
    for index, (row, edit, _) in enumerate(save_rows):
        folder = root / f"save-{index}"
        folder.mkdir()
        cases.append((row, "save", "load_model", table._edited_save(saved, folder, edit)))
        if row.startswith("config.json: forged"):
            cases.append((row, "rebuild", UNCHECKED, folder / "model"))
    for index, (row, build, loader, _) in enumerate(table.HOSTILE_DATA):
        folder = root / f"data-{index}"
        folder.mkdir()
        cases.append((row, "data", loader, build(folder)))
    if only:
        cases = [case for case in cases if only in case[0] or case[0].startswith("valid")]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="rows whose name contains this (and the valid baselines)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return 0
    table = _table_module()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="onnxtrain-security-") as tmp:
        for row, kind, loader, path in _cases(table, Path(tmp), args.only):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", kind, loader, str(path)],
                capture_output=True,
                text=True,
                timeout=300,
            )
            lines = done.stdout.strip().splitlines()
            answer = json.loads(lines[-1]) if done.returncode == 0 and lines else None
            if answer is None:
                answer = {"outcome": f"WORKER DIED ({done.returncode}): {done.stderr[-300:]}", "peak_mib": None}
            rows.append({"file": row, "loader": loader, **answer})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    refusals = ("loaded", "ModelFileError", "DataFormatError")
    bad = [r for r in rows if r["loader"] != UNCHECKED and not r["outcome"].startswith(refusals)]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:  # one line per file and outcome: the loaders that gave it, the largest peak
        r["outcome"] = r["outcome"].replace(tempfile.gettempdir(), "$TMP")
        # `onnxtrain summary` prefixes its command and quotes the file name: the same outcome otherwise.
        same = re.sub(r"^(\w+: )onnxtrain summary: error: '([^']*)'", r"\1\2", r["outcome"])
        grouped.setdefault((r["file"], same), []).append(r)
    print("| file | loaders | outcome (first line of the error) | peak RSS (added by the loader) |")
    print("|---|---|---|---|")
    for (name, _), group in grouped.items():
        outcome = group[0]["outcome"]
        loaders = ", ".join(r["loader"] for r in group)
        peak = max((r["peak_mib"] or 0) for r in group)
        added = max((r.get("added_mib") or 0) for r in group)
        print(f"| {name} | {loaders} | {outcome[:300].replace('|', '/')} | {peak} MiB (+{added}) |")
    print(
        f"\n{len(rows)} cases, {len(bad)} with an outcome other than loaded / ModelFileError / DataFormatError "
        f"(the {UNCHECKED} rows aside: they show what load_model no longer does)"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
