"""Smoke tests of the tools/ scripts that nothing else runs: they must keep working as the package changes."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
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


@pytest.mark.slow
def test_profile_step_prints_parts_operators_and_nodes():
    stdout = run_tool("profile_step.py", "--steps", "3", "--top", "2", "--update", "graph")
    for line in ("ms/step over 3 steps", "| optimizer update |", "| forward |", "| Gemm |", "| top 2 nodes |"):
        assert line in stdout, stdout
    # the update's If is reported on its own line, not double-counted with its branch's nodes in the tables
    assert "us/step of its own around its" in stdout and "| If |" not in stdout, stdout


@pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])")
@pytest.mark.slow
def test_profile_step_adds_the_fused_kernel_to_the_gradient_session():
    stdout = run_tool("profile_step.py", "--steps", "3", "--top", "40", "--update", "fused")
    for line in ("| optimizer update |", "| FusedAdam |", "| fused update (numba kernel, unprofiled) |", "| Gemm |"):
        assert line in stdout, stdout
    assert "| If |" not in stdout and "update." not in stdout  # no graph update ran


@pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])")
@pytest.mark.slow
def test_bench_update_compares_the_two_update_paths_per_optimizer():
    stdout = run_tool("bench_update.py", "--chunks", "2", "--steps", "2", "--warmup", "1", "--optimizers", "adam,sgd")
    assert "| optimizer | graph update µs/step | fused µs/step |" in stdout, stdout
    assert stdout.count("\n| adam | ") == 1 and stdout.count("\n| sgd | ") == 1, stdout


@pytest.mark.parametrize(("flags", "relu_gradient"), [((), "| Greater |"), (("--keep-relugrad",), "| ReluGrad |")])
@pytest.mark.slow
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
@pytest.mark.slow
def test_profile_fit_profiles_the_chosen_engine(engine, mode, expected, env):
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    if engine == "ort-training" and importlib.util.find_spec("onnxruntime.training") is None:
        pytest.skip("needs a training build of ONNX Runtime (onnxtrain[cpu])")
    stdout = run_tool("profile_fit.py", "--epochs", "1", "--top", "3", "--engine", engine, *mode, env=env)
    for line in expected:
        assert line in stdout, stdout


@pytest.mark.realdata
@pytest.mark.slow
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


def _tool_module(script: str, monkeypatch: pytest.MonkeyPatch):
    """tools/<script> imported as a module, with tools/ on sys.path as when it runs (for _tutorial, _harness)."""
    folder = (TOOLS / script).parent
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location(Path(script).stem, TOOLS / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench(monkeypatch):
    return _tool_module("bench.py", monkeypatch)


@pytest.mark.parametrize(
    ("engine", "env", "update"),
    [
        ("ort-training", {}, ""),
        ("auto", {}, ", runs "),
        ("portable", {}, "fused update" if _fused.available() else "update in the graph"),
        ("portable-graph", {"ONNXTRAIN_FUSED_UPDATE": "0"}, "update in the graph"),
        ("portable-unsplit", {"ONNXTRAIN_SPLIT_STEP": "0"}, "fused update" if _fused.available() else "in the graph"),
    ],
)
@pytest.mark.slow
def test_bench_worker_trains_and_reports(bench, tmp_path, monkeypatch, engine, env, update):
    if engine == "ort-training" and importlib.util.find_spec("onnxruntime.training") is None:
        pytest.skip("needs a training build of ONNX Runtime (onnxtrain[cpu])")
    rng = np.random.default_rng(0)
    for split, n in (("train", 600), ("test", 200)):
        np.save(tmp_path / f"x_{split}.npy", rng.random((n, 28, 28, 1), np.float32))
        np.save(tmp_path / f"y_{split}.npy", rng.integers(0, 10, n).astype(np.int64))
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # read when the engine is built (a fresh process in the benchmark)
    no_kernel = env.get("ONNXTRAIN_FUSED_UPDATE") == "0"
    monkeypatch.setattr(_fused, "available", lambda: _fused._numba() is not None and not no_kernel)
    result = bench.worker_onnxtrain(tmp_path, 1, engine, 3)
    assert len(result["epoch_times"]) == 1 and 0 <= result["accuracy"] <= 1 and result["peak_rss_mib"] > 0
    assert 0 < result["bare_step_s"] < result["fit_s"]
    assert result["runtime"].startswith("onnxruntime ") and update in result["runtime"]


def test_bench_engine_specs_name_their_interpreter(bench):
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


def test_bench_labels_the_same_engine_on_a_second_interpreter_apart(bench):
    engines = {"auto": ("auto", "/venv/python"), "auto@/tmp/base-python": ("auto", "/tmp/base-python")}
    runs = {spec: [{"runtime": "onnxruntime 1.19.2, Python 3.11.7"}] for spec in engines}
    assert list(bench.labelled(engines, runs)) == [
        "auto (onnxruntime 1.19.2, Python 3.11.7)",
        "auto (onnxruntime 1.19.2, Python 3.11.7) [/tmp/base-python]",
    ]


def test_bench_table_takes_the_torch_row_as_the_baseline(bench):
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


def test_bench_table_pairs_each_round_with_torch_s_same_round(bench):

    def runs(*seconds: float) -> list[dict]:
        return [
            {"epoch_times": [s], "accuracy": 0.88, "predict_s": 0.02, "bare_step_s": 0.001, "peak_rss_mib": 300.0}
            for s in seconds
        ]

    # torch's round 2 ran on a slow machine: the ratio of medians reads 3.64x, the rounds' median 2.20x
    results = {"portable": bench.summarize(runs(1.0, 1.1, 2.0)), "torch": bench.summarize(runs(2.2, 4.0, 4.4))}
    portable_row = bench.table(results).splitlines()[2]
    assert "| 3.64x | 2.20x (2.20-3.64) |" in portable_row, portable_row


def test_bench_names_the_machine_s_cpu_and_its_widest_vectors(bench, tmp_path, monkeypatch):
    cpuinfo = (
        "processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 1\nflags\t\t: fpu sse avx avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 1\nflags\t\t: fpu sse avx avx2 fma\n"
    )
    real_path = bench.Path
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(bench, "Path", lambda p: tmp_path / "cpuinfo" if p == "/proc/cpuinfo" else real_path(p))
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    assert bench.machine() == "AMD EPYC (family 25, model 1), 2 logical cores, widest vectors: AVX2"


def _runs(*seconds: float) -> list[dict]:
    return [
        {"epoch_times": [s], "accuracy": 0.88, "predict_s": 0.02, "bare_step_s": 0.001, "peak_rss_mib": 300.0}
        for s in seconds
    ]


def test_bench_table_adds_jax_as_a_second_baseline(bench):
    results = {
        "portable (onnxruntime 1.32.0, Python 3.12.1)": bench.summarize(_runs(1.0, 1.0)),
        "torch (torch 2.13.0, Python 3.11.7)": bench.summarize(_runs(2.0, 3.0)),
        "jax (jax 0.10.2, optax 0.2.8, Python 3.11.7)": bench.summarize(_runs(0.5, 0.5)),
        "keras-jax (keras 3.15.1 (jax 0.10.2), Python 3.11.7)": bench.summarize(_runs(1.5, 1.5)),
    }
    header, separator, portable, torch, jax, keras = bench.table(results).splitlines()
    assert "speed-up vs torch (fit)" in header and "speed-up vs jax (fit)" in header
    assert header.count(" |") == separator.count("|---") == portable.count(" |")
    # torch: 2.5 s median; jax: 0.5 s; per round torch 2.0/1.0 and 3.0/1.0
    assert "| 2.50x | 2.50x (2.00-3.00) | 0.50x | 0.50x (0.50-0.50) |" in portable, portable
    assert "| 1.00x | 1.00x (1.00-1.00) | 0.20x | 0.21x (0.17-0.25) |" in torch, torch
    assert "| 5.00x | 5.00x (4.00-6.00) | 1.00x | 1.00x (1.00-1.00) |" in jax, jax
    assert "| 1.67x | 1.67x (1.33-2.00) | 0.33x | 0.33x (0.33-0.33) |" in keras, keras


def test_bench_table_without_a_baseline_has_no_speed_up_columns(bench):
    header = bench.table({"portable": bench.summarize(_runs(1.0))}).splitlines()[0]
    assert "speed-up" not in header


def test_bench_peers_take_their_interpreter_flag(bench):
    assert bench.parse_engine("jax", None, "/jax/python") == ("jax", "/jax/python")
    assert bench.parse_engine("keras-jax", "/torch/python", "/jax/python") == ("keras-jax", "/jax/python")
    assert bench.parse_engine("jax@/other/python", None, None) == ("jax", "/other/python")


@pytest.mark.parametrize(
    ("engine", "flag"), [("jax", "--jax-python"), ("keras-jax", "--jax-python"), ("torch", "--torch-python")]
)
def test_bench_peer_without_its_interpreter_stops_naming_the_flag(bench, monkeypatch, engine, flag):
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None)  # this interpreter has no framework
    with pytest.raises(SystemExit, match=f"--engines {engine} needs {flag} PATH.*peer_venvs.sh"):
        bench.parse_engine(engine, None, None)


def test_bench_peer_interpreter_is_checked_before_any_round(bench, monkeypatch):
    with pytest.raises(SystemExit, match="--jax-python /no/such/python: no such interpreter"):
        bench.check_interpreter("jax", "/no/such/python")
    monkeypatch.setitem(bench.PEERS, "jax", bench.Peer("jax_peer.py", "--jax-python", ("no_such_module_for_bench",)))
    with pytest.raises(SystemExit, match="cannot run engine jax: importing no_such_module_for_bench failed with"):
        bench.check_interpreter("jax", sys.executable)


def test_bench_stops_on_a_missing_interpreter_before_loading_data(bench, monkeypatch):
    monkeypatch.setattr(bench, "export_data", lambda *a: pytest.fail("the data was loaded before the check"))
    with pytest.raises(SystemExit, match="no such interpreter"):
        bench.main(["--engines", "portable,jax", "--jax-python", "/no/such/python"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--subset", "150"], "--subset expects a positive multiple of the batch size, 100. Received: 150"),
        (["--dropout", "1"], r"--dropout expects a rate in \[0, 1\). Received: 1.0"),
        (["--epochs", "0"], "--repeats and --epochs expect positive ints"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
    ],
)
def test_bench_refuses_bad_arguments(bench, capsys, argv, message):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert re.search(message, capsys.readouterr().err)


def test_bench_arguments_default_to_the_tutorial_benchmark(bench):
    args = bench.parse_args([])
    assert (args.model, args.repeats, args.epochs, args.subset, args.dropout) == ("mlp", 3, 10, None, 0.5)
    assert args.torch_python is None and args.jax_python is None


def test_bench_worker_commands_run_peers_from_their_folder(bench, tmp_path):
    command = bench.worker_command("keras-jax", "/jax/python", tmp_path, 2, 13, "cnn", 0.5)
    assert command[:2] == ["/jax/python", str(TOOLS / "bench_peers" / "keras_peer.py")]
    assert command[2:] == [
        *("--data", str(tmp_path), "--epochs", "2", "--seed", "13", "--model", "cnn", "--dropout", "0.5"),
        *("--threads", "2"),
    ]
    # the MLP has no dropout, whatever --dropout says
    command = bench.worker_command("auto", sys.executable, tmp_path, 1, 12, "mlp", 0.5)
    assert command[2:4] == ["--worker", "auto"] and command[-2:] == ["--dropout", "0.0"]


def test_bench_peers_never_see_this_checkout(bench, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    env = bench.peer_environment()
    assert "PYTHONPATH" not in env and env["KERAS_BACKEND"] == "jax" and env["JAX_PLATFORMS"] == "cpu"


GOOD_RESULT = {
    "epoch_times": [1.0],
    "accuracy": 0.8,
    "predict_s": 0.1,
    "bare_step_s": 0.001,
    "peak_rss_mib": 100.0,
    "runtime": "jax 0.10.2",
}


def test_bench_reads_a_worker_s_last_line(bench):
    stdout = "a warning a framework printed\n" + json.dumps(GOOD_RESULT) + "\n\n"
    assert bench.parse_worker_output("jax", stdout) == GOOD_RESULT


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", r"jax worker printed no result \(a JSON object as its last stdout line\); it printed:\n\(nothing\)"),
        ("Traceback...\nboom", "jax worker printed no result.*\nTraceback...\nboom"),
        ("[1, 2]", "jax worker printed no result"),
        (json.dumps({k: v for k, v in GOOD_RESULT.items() if k != "bare_step_s"}), r"lacks \['bare_step_s'\]"),
        (json.dumps({**GOOD_RESULT, "epoch_times": []}), r"lacks \['epoch_times \(empty\)'\]"),
    ],
)
def test_bench_refuses_a_worker_output_without_its_result(bench, stdout, message):
    with pytest.raises(SystemExit, match=message):
        bench.parse_worker_output("jax", stdout)


def _without_cnn_layers(monkeypatch, *names: str) -> None:
    import onnxtrain.layers

    for name in names:
        monkeypatch.delattr(onnxtrain.layers, name, raising=False)


def test_bench_cnn_with_onnxtrain_engines_names_the_missing_layers(bench, monkeypatch):
    _without_cnn_layers(monkeypatch, "Conv2D", "MaxPooling2D", "MaxPool2D", "Dropout")
    engines = {"portable": ("portable", sys.executable), "torch": ("torch", "/torch/python")}
    needs = (
        r"--model cnn with engine\(s\) portable: The CNN needs onnxtrain.layers.Conv2D, onnxtrain.layers.MaxPooling2D"
    )
    with pytest.raises(SystemExit, match=needs + ", which this checkout does not have \\(issue 20\\)"):
        bench.check_model(engines, "cnn", 0.0)
    bench.check_model({"torch": ("torch", "/torch/python")}, "cnn", 0.5)  # the peers alone can run it
    bench.check_model(engines, "mlp", 0.5)


def test_tutorial_cnn_names_dropout_alone_and_builds_once_its_layers_exist(monkeypatch):
    import onnxtrain.layers

    tutorial = _tool_module("_tutorial.py", monkeypatch)
    _without_cnn_layers(monkeypatch, "Dropout", "MaxPooling2D")
    for name in ("Conv2D", "MaxPool2D"):  # stand-ins recording their arguments; KotlinDL's pooling name will do
        monkeypatch.setattr(onnxtrain.layers, name, lambda *a, _n=name, **k: (_n, a, k), raising=False)
    with pytest.raises(ImportError, match=r"needs onnxtrain\.layers\.Dropout,.*or pass --dropout 0"):
        tutorial.cnn_layers(0.5)
    layers = tutorial.cnn_layers(0.0)
    assert layers[1:5] == [
        ("Conv2D", (), {"filters": 32, "kernel_size": 3, "padding": "same", "activation": "relu"}),
        ("MaxPool2D", (), {"pool_size": 2}),
        ("Conv2D", (), {"filters": 64, "kernel_size": 3, "padding": "valid", "activation": "relu"}),
        ("MaxPool2D", (), {"pool_size": 2}),
    ]
    assert [type(layer).__name__ for layer in layers[5:]] == ["Flatten", "Dense", "Dense"]


def test_tutorial_helper_builds_the_tutorial_model(monkeypatch):
    tutorial = _tool_module("_tutorial.py", monkeypatch)
    model = tutorial.tutorial_model(seed=3)
    assert model.param_counts()[0] == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert model.output_shape == (10,) and model.seed == 3
    configs = [layer.get_config() for layer in model.layers]
    assert [c["units"] for c in configs[-3:]] == [300, 100, 10] and configs[-1]["activation"]["name"] == "linear"
    assert "activation" not in configs[-2]  # hidden layers keep KotlinDL's default (ReLU)
    as_written = tutorial.tutorial_layers(last_activation=None)[-1].get_config()
    assert "activation" not in as_written  # Dense(10) as the README writes it


def _harness(monkeypatch):
    return _tool_module("bench_peers/_harness.py", monkeypatch)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_peer_initial_weights_are_he_normal_and_the_same_per_seed(monkeypatch, model):
    harness = _harness(monkeypatch)
    weights = harness.initial_weights(model, 5)
    again = harness.initial_weights(model, 5)
    assert [k.shape for _, k, _ in weights] == [shape for _, shape in harness.LAYERS[model]]
    for (_, kernel, bias), (_, kernel2, bias2) in zip(weights, again, strict=True):
        fan_in = int(np.prod(kernel.shape[:-1]))
        std = np.sqrt(2 / fan_in)
        assert kernel.dtype == bias.dtype == np.float32 and (kernel == kernel2).all() and (bias == bias2).all()
        assert np.abs(kernel).max() <= 2 * std / harness.TRUNCATION_STD + 1e-6  # truncated at 2 sigma
        assert np.abs(bias).max() <= np.sqrt(6 / fan_in)
    first_kernel = weights[0][1]
    assert abs(first_kernel.std() / np.sqrt(2 / np.prod(first_kernel.shape[:-1])) - 1) < 0.1
    assert not (harness.initial_weights(model, 6)[0][1] == first_kernel).all()


def test_peer_scripts_import_neither_onnxtrain_nor_each_other_s_framework():
    for script in sorted((TOOLS / "bench_peers").glob("*.py")):
        imported = {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            for node in ast.walk(ast.parse(script.read_text()))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert "onnxtrain" not in imported, script
        frameworks = {"torch", "jax", "optax", "keras"} & imported
        allowed = {"torch_peer.py": {"torch"}, "jax_peer.py": {"jax", "optax"}, "keras_peer.py": {"jax", "keras"}}
        assert frameworks <= allowed.get(script.name, set()), (script, frameworks)
