"""Check that a saved or exported model runs where only the inference `onnxruntime` is installed.

    python tools/check_infer_only.py [--venv DIR] [--rebuild] [--json]

Here (a training install) it trains a small classifier, saves it, exports it, and records Sequential's
predictions. It then builds, once, a separate virtual environment with what `pip install onnxtrain[infer]`
brings (onnxruntime, numpy, onnx, tqdm; no onnxruntime-training), and runs `InferenceModel` there on this
checkout (PYTHONPATH), comparing its predictions with Sequential's. The environment is cached in
$ONNXTRAIN_INFER_VENV or ~/.cache/onnxtrain/infer-venv-pyXY (under $XDG_CACHE_HOME when set).

Exit status: 0 the check passed, 1 it failed, 3 the environment could not be built (e.g. no package index).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SKIPPED = 3
REQUIREMENTS = ("onnxruntime>=1.17", "numpy>=1.24", "onnx>=1.16", "tqdm>=4.66")  # pyproject's [infer] extra
READY_MARKER = ".onnxtrain-infer-ready"

# Runs inside the inference-only environment: argv[1] is the folder written by make_models.
INFER_CHECK = r"""
import importlib.metadata, importlib.util, json, sys
from pathlib import Path
import numpy as np

folder = Path(sys.argv[1])
assert importlib.util.find_spec("onnxruntime.training") is None, "onnxruntime.training is importable here"
names = sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions())
training = [n for n in names if n.startswith("onnxruntime-training")]
assert not training, f"training packages installed: {training}"
import onnxruntime
import onnxtrain
from onnxtrain import InferenceModel
from onnxtrain.errors import RuntimeSetupError

data = np.load(folder / "expected.npz")
ort_packages = [n for n in names if n.startswith("onnxruntime")]
report = {"onnxruntime": onnxruntime.__version__, "ort_packages": ort_packages}
for source in ("saved_model", "model.onnx"):
    with InferenceModel.load(folder / source) as model:
        assert model.class_names == tuple(json.loads(str(data["class_names"]))), model.class_names
        predictions = model.predict(data["x"])
        assert np.array_equal(predictions, data["predictions"]), (predictions, data["predictions"])
        assert np.array_equal(model.predict(data["pixels"]), data["pixel_predictions"])
        single = model.predict(data["x"][0])
        assert isinstance(single, int) and single == int(data["predictions"][0])
        diff = float(np.abs(model.predict_softly(data["x"]) - data["probabilities"]).max())
        assert diff <= 1e-5, diff
        report[source] = {"predictions_equal": True, "max_probability_diff": diff}
try:
    onnxtrain.Sequential.of(onnxtrain.layers.Input(2), onnxtrain.layers.Dense(2)).compile(engine="ort-training")
    raise AssertionError("compile(engine='ort-training') worked without a training build")
except RuntimeSetupError as e:
    report["compile_error"] = str(e)[:120]
# ... while the portable engine trains there: auto picks it.
portable = onnxtrain.Sequential.of(onnxtrain.layers.Input(2), onnxtrain.layers.Dense(2, activation="linear"), seed=1)
portable.compile(optimizer="adam", metric="accuracy")
assert portable._trainer.compiled.engine == "portable", portable._trainer.compiled.engine
xs = np.array([[0, 1], [1, 0]] * 8, np.float32)
history = portable.fit((xs, xs.argmax(1)), epochs=5, batch_size=4, verbose=0)
assert history.history["loss"][-1] < history.history["loss"][0], history.history
report["portable_fit_losses"] = [round(v, 4) for v in history.history["loss"]]
leaked = [m for m in ("onnxruntime.training", "torch") if m in sys.modules]
assert not leaked, f"imported: {leaked}"
print(json.dumps(report))
"""


def make_models(folder: Path) -> None:
    """Train, save and export a small classifier; record Sequential's predictions in expected.npz."""
    from onnxtrain import Dataset, Sequential
    from onnxtrain.layers import Dense, Flatten, Input

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(64, 5, 5, 1), dtype=np.uint8)
    labels = (pixels.reshape(64, -1).mean(axis=1) > 127).astype(np.int64) + 2 * (pixels[:, 0, 0, 0] > 127)
    class_names = ("dark", "light", "dark, bright corner", "light, bright corner")
    train = Dataset(pixels.astype(np.float32) / 255, labels, class_names=class_names, input_scale=1 / 255)
    with Sequential.of(Input(5, 5, 1), Flatten(), Dense(16), Dense(4, activation="linear"), seed=3) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy")
        model.fit(train, epochs=3, batch_size=16, verbose=0)
        model.save(folder / "saved_model")
        model.export(folder / "model.onnx")
        x = train.x[:20]
        np.savez(
            folder / "expected.npz",
            x=x,
            pixels=pixels[:20],
            predictions=model.predict(x),
            pixel_predictions=model.predict(pixels[:20]),
            probabilities=model.predict_softly(x),
            class_names=json.dumps(list(class_names)),
        )


def default_venv() -> Path:
    if os.environ.get("ONNXTRAIN_INFER_VENV"):
        return Path(os.environ["ONNXTRAIN_INFER_VENV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "onnxtrain" / f"infer-venv-py{sys.version_info.major}{sys.version_info.minor}"


def ensure_venv(venv: Path, rebuild: bool = False) -> tuple[Path | None, str]:
    """(the venv's python, "") once the environment is ready, or (None, why it could not be built)."""
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs must not build the same environment at once
        marker = venv / READY_MARKER
        if not rebuild and marker.is_file() and marker.read_text(errors="replace").strip() == " ".join(REQUIREMENTS):
            return python, ""
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as e:
                return None, f"{' '.join(step[:4])}... failed: {e}"
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                return None, f"{' '.join(step[:4])}... exited {done.returncode}: {' | '.join(tail)}"
        marker.write_text(" ".join(REQUIREMENTS) + "\n")
    return python, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=None, help="the inference-only environment to use or build")
    parser.add_argument("--rebuild", action="store_true", help="build the environment again")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    python, why = ensure_venv(args.venv or default_venv(), args.rebuild)
    if python is None:
        print(f"SKIPPED: could not build an inference-only environment: {why}")
        return SKIPPED
    with tempfile.TemporaryDirectory(prefix="onnxtrain-infer-only-") as scratch:
        folder = Path(scratch)
        make_models(folder)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONPATH"] = str(REPO)
        with contextlib.suppress(KeyError):
            del env["PYTHONSTARTUP"]
        done = subprocess.run(
            [str(python), "-c", INFER_CHECK, str(folder)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            cwd=scratch,
        )
    if done.returncode != 0:
        print(f"FAILED in {python}:\n{done.stdout}{done.stderr}")
        return 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(result))
    else:
        print(f"inference-only environment {python.parent.parent}: {', '.join(result['ort_packages'])}")
        for source in ("saved_model", "model.onnx"):
            print(
                f"  {source}: predictions equal Sequential's; max |probability diff| = "
                f"{result[source]['max_probability_diff']:.2e}"
            )
        print(f"  compile(engine='ort-training') there says: {result['compile_error']}...")
        print(f"  compile() there picks the portable engine; fit losses: {result['portable_fit_losses']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
