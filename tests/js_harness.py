"""What the JavaScript parity checks share (tests/test_js.py, tests/test_web.py, tools/js_parity.py): fixed batches
on disk in the layout `js/tools/steps.js` reads, the same steps in Python, and the comparison of the two states."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "js"
ORT_NODE = JS / "node_modules" / "onnxruntime-node"
ORT_WEB = JS / "node_modules" / "onnxruntime-web"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_js_dependencies(*packages: Path) -> str | None:
    """Why the JS checks cannot run here (node or js/node_modules missing: `.ci/run` runs `npm ci` in js/), or
    None."""
    if shutil.which("node") is None:
        return "node is not installed (CI installs Node.js 20)"
    for package in packages:
        if not package.is_dir():
            return f"{package.relative_to(ROOT)} is missing: run `npm ci --ignore-scripts` in js/ (.ci/run does)"
    return None


def write_batches(directory: Path, x: np.ndarray, y: np.ndarray, batch_size: int) -> Path:
    """x.bin (float32), y.bin (int64 class indices or float32 targets) and batches.json: len(x) // batch_size
    batches, in order."""
    steps = len(x) // batch_size
    directory.mkdir(parents=True, exist_ok=True)
    labels = np.ascontiguousarray(y[: steps * batch_size])
    label_dtype = "int64" if np.issubdtype(labels.dtype, np.integer) else "float32"
    np.ascontiguousarray(x[: steps * batch_size], "<f4").tofile(directory / "x.bin")
    labels.astype("<i8" if label_dtype == "int64" else "<f4").tofile(directory / "y.bin")
    spec = {"steps": steps, "batch_size": batch_size, "x": "x.bin", "y": "y.bin", "label_dtype": label_dtype}
    (directory / "batches.json").write_text(json.dumps(spec), encoding="utf-8")
    return directory


def python_steps(model: object, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Train the compiled `model` one epoch over x, y in order (one step per batch, as the JS loop runs them);
    returns the seconds fit took."""
    start = time.perf_counter()
    model.fit((x, y), epochs=1, batch_size=batch_size, shuffle=False, verbose=0)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def max_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], names: Sequence[str]) -> float:
    """The largest absolute difference between `a` and `b` over the tensors `names`."""
    return max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64)))) for n in names)


def run_node(bundle: Path, batches: Path, out: Path, steps: int | None = None, threads: int = 0) -> dict:
    """js/tools/parity.mjs on a bundle and batches; returns its result.json (state.bin and model.onnx are in
    `out`)."""
    command = ["node", str(JS / "tools" / "parity.mjs"), str(bundle), str(batches), str(out)]
    if steps is not None:
        command.append(str(steps))
    env = {**os.environ, "ONNXTRAIN_JS_THREADS": str(threads)}
    done = subprocess.run(command, cwd=JS, capture_output=True, text=True, timeout=300, env=env)
    if done.returncode != 0:
        raise AssertionError(f"node tools/parity.mjs failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads((out / "result.json").read_text(encoding="utf-8"))
