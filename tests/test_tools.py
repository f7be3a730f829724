"""Smoke tests of the tools/ scripts that nothing else runs: they must keep working as the package changes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnxtrain.portable import _fused

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def run_tool(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run tools/<script> with `args`; returns its stdout after checking that it exited 0."""
    done = subprocess.run(
        [sys.executable, str(TOOLS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_profile_step_prints_parts_operators_and_nodes():
    stdout = run_tool("profile_step.py", "--steps", "3", "--top", "2", "--update", "graph")
    for line in ("ms/step over 3 steps", "| optimizer update |", "| forward |", "| Gemm |", "| top 2 nodes |"):
        assert line in stdout, stdout
    # the update's If is reported on its own line, not double-counted with its branch's nodes in the tables
    assert "us/step of its own around its" in stdout and "| If |" not in stdout, stdout


@pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])")
def test_profile_step_adds_the_fused_kernel_to_the_gradient_session():
    stdout = run_tool("profile_step.py", "--steps", "3", "--top", "40", "--update", "fused")
    for line in ("| optimizer update |", "| FusedAdam |", "| fused update (numba kernel, unprofiled) |", "| Gemm |"):
        assert line in stdout, stdout
    assert "| If |" not in stdout and "update." not in stdout  # no graph update ran


@pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])")
def test_bench_update_compares_the_two_update_paths_per_optimizer():
    stdout = run_tool("bench_update.py", "--chunks", "2", "--steps", "2", "--warmup", "1", "--optimizers", "adam,sgd")
    assert "| optimizer | graph update µs/step | fused µs/step |" in stdout, stdout
    assert stdout.count("\n| adam | ") == 1 and stdout.count("\n| sgd | ") == 1, stdout


@pytest.mark.parametrize(("flags", "relu_gradient"), [((), "| Greater |"), (("--keep-relugrad",), "| ReluGrad |")])
def test_profile_step_profiles_the_ort_training_session(flags, relu_gradient):
    if importlib.util.find_spec("onnxruntime.training") is None:
        pytest.skip("needs a training build of ONNX Runtime (onnxtrain[cpu])")
    stdout = run_tool("profile_step.py", "--engine", "ort-training", "--steps", "3", *flags)
    for line in ("ms/step over 3 steps", "| loss and backward |", "| forward |", "| Gemm |", relu_gradient):
        assert line in stdout, stdout


FUSED = "| ORT run | fused update | engine Python |" if _fused.available() else "| ORT run | engine Python |"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("engine", "mode", "expected", "env"),
    [
        ("portable", (), ("fit (portable):", "run_with_iobinding"), {}),
        ("portable", ("--timers",), (FUSED, "| 1 |"), {}),
        (
            "portable",
            ("--timers",),
            ("| ORT run | engine Python | trainer Python |", "| 1 |"),
            {"ONNXTRAIN_FUSED_UPDATE": "0"},
        ),
        ("ort-training", ("--timers",), ("| train run | optimizer step | engine Python |", "| 1 |"), {}),
    ],
)
def test_profile_fit_profiles_the_chosen_engine(engine, mode, expected, env):
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    if engine == "ort-training" and importlib.util.find_spec("onnxruntime.training") is None:
        pytest.skip("needs a training build of ONNX Runtime (onnxtrain[cpu])")
    stdout = run_tool("profile_fit.py", "--epochs", "1", "--top", "3", "--engine", engine, *mode, env=env)
    for line in expected:
        assert line in stdout, stdout


@pytest.mark.realdata
def test_cuda_fit_trains_each_device_named_and_compares_their_predictions(tmp_path):
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    # The GPU check's tool, run on the CPU twice: the same seed must give the same model and predictions.
    out = tmp_path / "fit.json"
    stdout = run_tool("cuda_fit.py", "--devices", "cpu,cpu", "--epochs", "1", "--batch-size", "500", "--json", str(out))
    assert "predictions of cpu and cpu agree on 100.00% of the test images" in stdout, stdout
    first, second = json.loads(out.read_text())
    assert first["test_accuracy"] == second["test_accuracy"] > 0.7
    assert first["train_session_providers"] in (None, ["CPUExecutionProvider"]) and first["train_samples_per_s"] > 0


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench", TOOLS / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("engine", "env", "update"),
    [
        ("ort-training", {}, ""),
        ("portable", {}, "fused update" if _fused.available() else "update in the graph"),
        ("portable-graph", {"ONNXTRAIN_FUSED_UPDATE": "0"}, "update in the graph"),
    ],
)
def test_bench_worker_trains_and_reports(tmp_path, monkeypatch, engine, env, update):
    bench = _bench_module()
    if engine == "ort-training" and importlib.util.find_spec("onnxruntime.training") is None:
        pytest.skip("needs a training build of ONNX Runtime (onnxtrain[cpu])")
    rng = np.random.default_rng(0)
    for split, n in (("train", 600), ("test", 200)):
        np.save(tmp_path / f"x_{split}.npy", rng.random((n, 28, 28, 1), np.float32))
        np.save(tmp_path / f"y_{split}.npy", rng.integers(0, 10, n).astype(np.int64))
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # read when the engine is built (a fresh process in the benchmark)
    monkeypatch.setattr(_fused, "available", lambda: _fused._numba() is not None and not env)
    result = bench.worker_onnxtrain(tmp_path, 1, engine, 3)
    assert len(result["epoch_times"]) == 1 and 0 <= result["accuracy"] <= 1 and result["peak_rss_mib"] > 0
    assert 0 < result["bare_step_s"] < result["fit_s"]
    assert result["runtime"].startswith("onnxruntime ") and update in result["runtime"]


def test_bench_engine_specs_name_their_interpreter():
    bench = _bench_module()
    assert bench.parse_engine("portable", "/torch/python") == ("portable", sys.executable)
    assert bench.parse_engine("torch", "/torch/python") == ("torch", "/torch/python")
    assert bench.parse_engine("portable@/other/python", "/torch/python") == ("portable", "/other/python")
    assert bench.parse_engine("portable-graph", "/torch/python") == ("portable-graph", sys.executable)
    try:
        bench.parse_engine("tensorflow", "/torch/python")
    except SystemExit as e:
        assert "unknown engine 'tensorflow'" in str(e)
    else:
        raise AssertionError("an unknown engine must stop the benchmark")


def test_bench_table_takes_the_torch_row_as_the_baseline():
    bench = _bench_module()
    runs = {
        "portable (onnxruntime 1.32.0, Python 3.12.1)": [
            {
                "epoch_times": [1.0],
                "fit_s": 1.0,
                "accuracy": 0.88,
                "predict_s": 0.02,
                "session_predict_s": 0.01,
                "bare_step_s": 0.0015,
                "peak_rss_mib": 300.0,
            }
        ],
        "torch (torch 2.13.0, Python 3.11.7)": [
            {"epoch_times": [2.5], "accuracy": 0.89, "predict_s": 0.04, "bare_step_s": 0.002, "peak_rss_mib": 500.0}
        ],
    }
    table = bench.table({name: bench.summarize(r) for name, r in runs.items()})
    portable_row, torch_row = table.splitlines()[2:]
    # the bare step's floor: 600 x 1.5 ms = 0.9 s, so the fit's 1.0 s/epoch is 1.11x it
    assert portable_row.endswith("| 500,000 | 1,000,000 | 2.50x | 2.50x (2.50-2.50) | 0.900 (1.11x) |")
    assert torch_row.endswith("| 250,000 | — | 1.00x | 1.00x (1.00-1.00) | 1.200 (2.08x) |")


def test_bench_table_pairs_each_round_with_torch_s_same_round():
    bench = _bench_module()

    def runs(*seconds: float) -> list[dict]:
        return [
            {"epoch_times": [s], "accuracy": 0.88, "predict_s": 0.02, "bare_step_s": 0.001, "peak_rss_mib": 300.0}
            for s in seconds
        ]

    # torch's round 2 ran on a slow machine: the ratio of medians reads 3.64x, the rounds' median 2.20x
    results = {"portable": bench.summarize(runs(1.0, 1.1, 2.0)), "torch": bench.summarize(runs(2.2, 4.0, 4.4))}
    portable_row = bench.table(results).splitlines()[2]
    assert "| 3.64x | 2.20x (2.20-3.64) |" in portable_row, portable_row
