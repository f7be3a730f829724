"""Tests of the exported inference model: hygiene, opset choice, writing modes, and the same outputs in ONNX
Runtime, the ONNX reference evaluator, the training engine's eval graph and Node.js (onnxruntime-node)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.reference
import onnxruntime
import pytest

import onnxtrain
from onnxtrain import InferenceModel, Sequential, WritingMode, losses
from onnxtrain.errors import InvalidArgumentError, ModelExistsError, ModelFileError
from onnxtrain.layers import LSTM, BatchNormalization, Dense, Embedding, Flatten, Input
from onnxtrain.optimizers import SGD

REPO = Path(__file__).resolve().parents[1]
NODE_EXAMPLE = REPO / "examples" / "node"
TRAINING_OPS = {
    "Gradient",
    "SoftmaxCrossEntropyLoss",
    "NegativeLogLikelihoodLoss",
    "InPlaceAccumulatorV2",
    "AdamWOptimizer",
}
ACTIVATIONS = ["relu", "sigmoid", "tanh", "selu", "elu", "leaky_relu", "gelu", "swish", "softmax", "linear"]


def _model(loss: str = "softmax_cross_entropy_with_logits", units: int = 3, **compile_options) -> Sequential:
    last = "sigmoid" if loss == "binary_crossentropy" else "linear"
    model = Sequential.of(Input(4, 4, 1), Flatten(), Dense(8), Dense(units, activation=last), seed=2)
    model.compile(optimizer="adam", loss=loss, **compile_options)
    return model


def _x(n: int = 7, shape: tuple[int, ...] = (4, 4, 1)) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, *shape)).astype(np.float32)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


# --- hygiene


@pytest.mark.parametrize(
    "loss, outputs",
    [
        ("softmax_cross_entropy_with_logits", ["logits", "probabilities"]),
        ("mse", ["logits"]),
        ("binary_crossentropy", ["probabilities"]),  # a sigmoid's output holds them: named so
        (losses.BinaryCrossentropy(from_logits=True), ["logits", "probabilities"]),
    ],
)
def test_exported_model_is_clean_and_portable(tmp_path, loss, outputs):
    binary = isinstance(loss, losses.BinaryCrossentropy) or loss == "binary_crossentropy"
    with _model(loss, units=1 if binary else 3) as model:
        model.class_names = ("cat", "dog", "bird")[: model.output_shape[0]]
        model.input_scale = 1 / 255
        path = model.export(tmp_path / "model.onnx")
    exported = onnx.load(path)
    onnx.checker.check_model(exported, full_check=True)
    assert [(o.domain, o.version) for o in exported.opset_import] == [("", 17)]
    assert exported.ir_version == 8
    graph = exported.graph
    assert [i.name for i in graph.input] == ["input"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [4, 4, 1]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in graph.output] == outputs
    assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in graph.output)
    assert {node.domain for node in graph.node} <= {""}
    assert not {node.op_type for node in graph.node} & TRAINING_OPS
    names = {n for node in graph.node for n in [*node.input, *node.output]} | {i.name for i in graph.initializer}
    assert not [n for n in names if n in ("labels", "loss") or "grad" in n.lower() or n.startswith("loss.")]
    assert sorted(i.name for i in graph.initializer) == [
        "dense_1.bias",
        "dense_1.kernel",
        "dense_2.bias",
        "dense_2.kernel",
    ]
    assert (exported.producer_name, exported.producer_version) == ("onnxtrain", onnxtrain.__version__)
    metadata = {p.key: p.value for p in exported.metadata_props}
    assert metadata["onnxtrain.version"] == onnxtrain.__version__
    saved = metadata["onnxtrain.loss"]  # a name, or the config of a loss with arguments
    assert losses.get(json.loads(saved) if saved.startswith("{") else saved) == losses.get(loss)
    assert json.loads(metadata["class_names"]) == list(model.class_names)
    assert float(metadata["input_scale"]) == pytest.approx(1 / 255)
    assert "divided by 255.0 (input_scale=" in metadata["input_scaling"]


def test_an_uncompiled_model_exports_logits_only(tmp_path):
    model = Sequential.of(Input(4, 4, 1), Flatten(), Dense(3), seed=0)
    exported = onnx.load(model.export(tmp_path / "m.onnx"))
    assert [o.name for o in exported.graph.output] == ["logits"]
    assert "onnxtrain.loss" not in {p.key for p in exported.metadata_props}


@pytest.mark.parametrize("opset, ir_version", [(13, 8), (17, 8), (19, 9), (21, 10)])
def test_export_opset_is_selectable_with_the_oldest_fitting_ir_version(tmp_path, opset, ir_version):
    with _model() as model:
        exported = onnx.load(model.export(tmp_path / "m.onnx", opset=opset))
    assert [(o.domain, o.version) for o in exported.opset_import] == [("", opset)]
    assert exported.ir_version == ir_version


def test_export_defaults_to_the_compiled_opset_and_ir_version(tmp_path):
    with _model(opset=19, ir_version=10) as model:
        exported = onnx.load(model.export(tmp_path / "m.onnx"))
    assert ([o.version for o in exported.opset_import], exported.ir_version) == ([19], 10)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"opset": 12}, r"opset expects an int in \[13, \d+\]. Received: opset=12"),
        ({"opset": 21, "ir_version": 8}, r"ir_version expects an int in \[10, \d+\] for opset 21"),
        ({"opset": "17"}, r"opset expects an int"),
    ],
)
def test_export_rejects_impossible_opsets(tmp_path, options, match):
    with _model() as model, pytest.raises(InvalidArgumentError, match=match):
        model.export(tmp_path / "m.onnx", **options)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"opset": 22}, r"support for domain ai\.onnx is till opset 21"),
        ({"ir_version": 11}, r"max supported IR version"),
    ],
)
def test_an_export_the_installed_runtime_cannot_load_is_written_with_a_warning_and_refused_clearly_by_load(
    tmp_path, options, reason
):
    """A file for a newer runtime is the user's call: written, with a warning; loading it here says why it cannot.
    Skipped where the installed onnxruntime loads opset 22 and IR version 11 (ONNX Runtime 1.20+)."""
    if not onnxtrain._runtime.runtime_refusal(22, 10) or not onnxtrain._runtime.runtime_refusal(17, 11):
        pytest.skip(f"onnxruntime {onnxruntime.__version__} loads opset 22 and IR version 11")
    with _model() as model, pytest.warns(UserWarning, match=rf"cannot load .*{reason}.*defaults \(opset 17, IR"):
        path = model.export(tmp_path / "m.onnx", **options)
    assert path.exists()
    with pytest.raises(ModelFileError, match=rf"has opset \d+ and IR version \d+, which the installed .*{reason}"):
        InferenceModel.load(path)


# --- writing modes of export


def test_export_refuses_an_existing_file_naming_it_and_suggesting_override(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with _model() as model:
        with pytest.raises(ModelExistsError, match=rf"'{re.escape(str(target))}'.*WritingMode\.OVERRIDE"):
            model.export(target)
        assert target.read_bytes() == b"old"
        for mode in (WritingMode.OVERRIDE, WritingMode.APPEND):  # APPEND means OVERRIDE for one file
            target.write_bytes(b"old")
            model.export(target, writing_mode=mode)
            onnx.checker.check_model(onnx.load(target), full_check=True)


def test_export_creates_parents_and_refuses_a_directory(tmp_path):
    with _model() as model:
        path = model.export(tmp_path / "a" / "b" / "m.onnx")
        assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["m.onnx"]
        with pytest.raises(InvalidArgumentError, match=r"expects a file path .*a directory; use save\(\)"):
            model.export(tmp_path / "a", writing_mode="override")


# --- the same numbers everywhere


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_onnx_runtime_and_the_reference_evaluator_agree(opset):
    layers = [
        Input(3, 4),
        Flatten(),
        *(Dense(5, activation=a) for a in ACTIVATIONS),
        Dense(4, activation="linear"),
    ]
    with Sequential(layers, seed=4) as model:
        model.compile(loss="softmax_cross_entropy_with_logits")
        model.fit((_x(32, (3, 4)), np.arange(32) % 4), epochs=1, batch_size=8, verbose=0)
        exported = model.inference_model(opset=opset)
    onnx.checker.check_model(exported, full_check=True)
    x = _x(9, (3, 4))
    in_ort = _ort(exported, x)
    in_reference = onnx.reference.ReferenceEvaluator(exported).run(None, {"input": x})
    assert len(in_ort) == len(in_reference) == 2
    for ours, theirs in zip(in_ort, in_reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


# The two exceptions docs/deployment.md names, pinned: ONNX Runtime computes what predict does, the reference evaluator
# (onnx 1.23) does not. Where one of these starts to fail, onnx has fixed its evaluator: drop the exception there.


def _batch_norm_model() -> tuple[Sequential, np.ndarray, np.ndarray]:
    """A BatchNormalization whose moving statistics training moved far from 0 and 1 (learning rate 0: gamma and beta
    stay 1 and 0), with its moving mean and variance."""
    rng = np.random.default_rng(0)
    model = Sequential.of(Input(4), BatchNormalization(momentum=0.5, name="bn"), seed=0)
    model.compile(optimizer=SGD(learning_rate=0.0), loss="mse", engine="portable")
    x = rng.normal(10.0, 3.0, size=(64, 4)).astype(np.float32)
    model.fit(x, np.zeros((64, 4), np.float32), epochs=3, batch_size=16, verbose=0)
    weights = model.get_weights()
    return model, weights["bn.moving_mean"], weights["bn.moving_variance"]


def test_the_reference_evaluator_blends_batch_statistics_into_batch_normalization_before_opset_14():
    # onnx's BatchNormalization-9 (opsets 9-13) takes the schema's default momentum (0.9) as training mode and
    # normalizes by 0.9 * the moving statistics + 0.1 * the batch's, for a one-output node too (onnx/onnx#8442)
    model, moving_mean, moving_variance = _batch_norm_model()
    x = np.random.default_rng(1).normal(-10.0, 0.5, size=(8, 4)).astype(np.float32)  # far from the moving mean
    with model:
        predicted = model.predict(x, verbose=0)
        exported = {opset: model.inference_model(opset=opset) for opset in (13, 17)}
    gamma_beta = model.get_weights()
    gamma, beta = gamma_beta["bn.gamma"], gamma_beta["bn.beta"]
    for opset, proto in exported.items():
        np.testing.assert_allclose(_ort(proto, x)[0], predicted, rtol=0, atol=1e-5, err_msg=f"opset {opset}")
    in_17 = onnx.reference.ReferenceEvaluator(exported[17]).run(None, {"input": x})[0]
    np.testing.assert_allclose(in_17, predicted, rtol=0, atol=1e-5)
    in_13 = onnx.reference.ReferenceEvaluator(exported[13]).run(None, {"input": x})[0]
    assert np.abs(in_13 - predicted).max() > 0.1
    mean = 0.9 * moving_mean + 0.1 * x.mean(axis=0)
    variance = 0.9 * moving_variance + 0.1 * x.var(axis=0)
    np.testing.assert_allclose(in_13, gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta, rtol=0, atol=1e-5)


def test_the_reference_evaluator_ignores_the_sequence_lengths_of_a_masked_lstm():
    # Embedding(mask_zero=True) before an LSTM: the export compacts each sequence and gives the op sequence_lens,
    # which onnx's LSTM (GRU, RNN) reference implementations take and leave unused
    ids = np.array([[0, 0, 0, 5, 7, 2], [0, 3, 1, 4, 9, 8], [6, 3, 1, 4, 9, 8], [1, 2, 3, 4, 5, 6]], np.int64)
    model = Sequential.of(
        Input(6, dtype="int64"), Embedding(10, 4, mask_zero=True), LSTM(5), Dense(1, activation="linear"), seed=3
    )
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(2)  # weights far from the small initial ones, so that every step counts
    model.set_weights({k: v + rng.normal(size=v.shape).astype(v.dtype) for k, v in model.get_weights().items()})
    with model:
        predicted = model.predict(ids, verbose=0)
        exported = model.inference_model(opset=17)
    in_ort = onnxruntime.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(in_ort.run(None, {"input": ids})[0], predicted, rtol=0, atol=1e-5)
    in_reference = onnx.reference.ReferenceEvaluator(exported).run(None, {"input": ids})[0]
    padded, whole = slice(0, 2), slice(2, 4)  # the last two rows have no id 0: nothing masked, full lengths
    np.testing.assert_allclose(in_reference[whole], predicted[whole], rtol=0, atol=1e-5)
    assert np.abs(in_reference[padded] - predicted[padded]).min() > 1e-3


@pytest.mark.parametrize("loss", ["softmax_cross_entropy_with_logits", "mse"])
def test_exported_outputs_equal_the_training_eval_graph(loss):
    x = _x(10)
    labels = np.arange(10) % 3 if loss != "mse" else np.zeros((10, 3), np.float32)
    with _model(loss) as model:
        model.fit((x, labels), epochs=2, batch_size=4, verbose=0)
        _, eval_logits = model._trainer.engine.eval_step(x, model._trainer.compiled.loss.prepare_labels(labels, (3,)))
        exported = _ort(model.inference_model(), x)
        np.testing.assert_allclose(exported[0], eval_logits, rtol=0, atol=1e-5)
        if loss != "mse":
            np.testing.assert_allclose(exported[1], model.predict_softly(x), rtol=0, atol=1e-5)


# --- Node.js (examples/node)


def _node_workdir() -> Path:
    """A folder with predict.mjs, the modules it imports and an installed onnxruntime-node: examples/node itself when
    CI ran `npm ci --ignore-scripts` there, otherwise a cached install made here (skips when npm cannot install)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed (CI installs Node.js 20)")
    if (NODE_EXAMPLE / "node_modules" / "onnxruntime-node").is_dir():
        return NODE_EXAMPLE
    lock = (NODE_EXAMPLE / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "onnxtrain"
    workdir = cache / f"node-example-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (workdir / "node_modules" / "onnxruntime-node").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, and examples/node/node_modules is missing")
        workdir.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(NODE_EXAMPLE / name, workdir / name)
        try:
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--fetch-retries=1"],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci --ignore-scripts timed out: no npm registry reachable?")
        if done.returncode != 0:
            pytest.skip(f"npm ci --ignore-scripts failed (no npm registry?): {done.stderr.strip()[-300:]}")
    for script in NODE_EXAMPLE.glob("*.mjs"):  # predict.mjs and the modules it imports
        shutil.copy(script, workdir / script.name)
    return workdir


def _predict_mjs(workdir: Path, model: Path, images: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """examples/node/predict.mjs (copied into `workdir` by `_node_workdir`) on `model` and the .npy `images`."""
    command = ["node", str(workdir / "predict.mjs"), str(model), str(images), *options]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120)


def _first_test_images(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x, train y, test x) from the real Fashion-MNIST when it is on this machine, else synthetic."""
    from onnxtrain.datasets import fashion_mnist

    try:
        train, test = fashion_mnist(download=False, progress=False)
        return train.x[:3000], train.y[:3000], test.x[:count], test.y[:count]
    except Exception:
        rng = np.random.default_rng(0)
        x = rng.random(size=(600 + count, 28, 28, 1), dtype=np.float32)
        y = (x[:, :14].mean(axis=(1, 2, 3)) * 10).astype(np.int64) % 10
        return x[:600], y[:600], x[600:], y[600:]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("units", "activation", "loss"),
    [
        (1, "sigmoid", "binary_crossentropy"),
        (1, "linear", losses.BinaryCrossentropy(from_logits=True)),
        (3, "linear", losses.BinaryCrossentropy(from_logits=True)),
        (2, "linear", "mse"),
    ],
    ids=["binary", "binary-from-logits", "multi-label", "regression"],
)
def test_node_decides_as_python_by_the_models_loss(tmp_path, units, activation, loss):
    """predict.mjs reads the export's onnxtrain.loss as InferenceModel does: 0/1 for binary cross-entropy of one unit
    (above 0.5, or 0 from logits), the outputs themselves for several sigmoid units (multi-label scores, as Keras'
    predict) and for a regression loss. An argmax over one sigmoid column said class 0 for every example."""
    workdir = _node_workdir()
    x = np.random.default_rng(4).normal(size=(16, 5)).astype(np.float32)
    with Sequential.of(Input(5), Dense(units, activation=activation), seed=3) as model:
        model.compile(optimizer="sgd", loss=loss)
        model.export(tmp_path / "model.onnx")
    np.save(tmp_path / "x.npy", x)
    done = _predict_mjs(workdir, tmp_path / "model.onnx", tmp_path / "x.npy")
    assert done.returncode == 0, done.stderr
    expected = InferenceModel.load(tmp_path / "model.onnx").predict(x)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(np.array(json.loads(done.stdout)["predictions"]), expected, rtol=1e-6, atol=1e-6)
    else:
        assert json.loads(done.stdout)["predictions"] == expected.tolist()
        assert 0 < np.sum(expected) < expected.size  # both decisions occur


@pytest.mark.slow
def test_node_predictions_are_identical_to_python(tmp_path):
    """predict.mjs with onnxruntime-node gives Python's predictions for the first 100 test images."""
    workdir = _node_workdir()
    train_x, train_y, images, _ = _first_test_images(100)
    with Sequential.of(Input(28, 28, 1), Flatten(), Dense(32), Dense(10, activation="linear"), seed=7) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit((train_x, train_y), epochs=1, batch_size=100, verbose=0)
        model.export(tmp_path / "model.onnx")
    np.save(tmp_path / "images.npy", images)
    python = InferenceModel.load(tmp_path / "model.onnx")
    done = _predict_mjs(workdir, tmp_path / "model.onnx", tmp_path / "images.npy")
    assert done.returncode == 0, done.stderr
    node = json.loads(done.stdout)
    assert (node["inputs"], node["outputs"]) == (["input"], ["logits", "probabilities"])
    assert node["predictions"] == python.predict(images).tolist()
    np.testing.assert_allclose(np.array(node["probabilities"]), python.predict_softly(images), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_node_example_reads_uint8_pixels_with_the_input_scale(tmp_path):
    workdir = _node_workdir()
    pixels = np.random.default_rng(3).integers(0, 256, size=(12, 4, 4, 1), dtype=np.uint8)
    with _model() as model:
        model.input_scale = 1 / 255
        model.export(tmp_path / "model.onnx")
        expected = model.predict(pixels).tolist()
    np.save(tmp_path / "pixels.npy", pixels)
    done = _predict_mjs(workdir, tmp_path / "model.onnx", tmp_path / "pixels.npy", "--input-scale", repr(1 / 255))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"] == expected


@pytest.mark.parametrize("input_scale", [1 / 255, 1 / 49, 0.003, 1.0])
@pytest.mark.slow
def test_node_example_takes_the_input_scale_of_uint8_pixels_from_the_model(tmp_path, input_scale):
    """Without --input-scale, predict.mjs scales uint8 pixels by the model's `input_scale` metadata as Python
    does: a float32 division by n for a scale of 1/n, else a float32 product (the probabilities are compared)."""
    workdir = _node_workdir()
    pixels = np.random.default_rng(3).integers(0, 256, size=(12, 4, 4, 1), dtype=np.uint8)
    with _model() as model:
        model.input_scale = input_scale
        model.export(tmp_path / "model.onnx")
        with (
            warnings.catch_warnings()
        ):  # a scale of 1 reads the pixels raw, with a warning (tests/test_pixel_inputs.py)
            warnings.simplefilter("ignore", UserWarning)
            expected = model.predict_softly(pixels)
    np.save(tmp_path / "pixels.npy", pixels)
    done = _predict_mjs(workdir, tmp_path / "model.onnx", tmp_path / "pixels.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)["probabilities"]), expected, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_node_example_refuses_uint8_pixels_without_any_input_scale(tmp_path):
    workdir = _node_workdir()
    with _model() as model:
        proto = onnx.load_model_from_string(model.export(tmp_path / "model.onnx").read_bytes())
    del proto.metadata_props[:]  # an ONNX file from elsewhere: no input_scale metadata
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    np.save(tmp_path / "pixels.npy", np.zeros((2, 4, 4, 1), np.uint8))
    done = _predict_mjs(workdir, tmp_path / "foreign.onnx", tmp_path / "pixels.npy")
    assert done.returncode == 1
    assert re.search(r"uint8 pixels need --input-scale: .*foreign\.onnx has no input_scale metadata", done.stderr)


@pytest.mark.slow
def test_compare_with_python_runs_from_the_repository_root(tmp_path, monkeypatch, capsys):
    """The example's README runs it from the repository root: relative --out paths must reach node too."""
    import importlib.util

    from onnxtrain.datasets import Dataset

    workdir = _node_workdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(120, 28, 28, 1), dtype=np.uint8)
    y = (x[:, :14].mean(axis=(1, 2, 3)) > 127.5).astype(np.int64)
    scaled = np.divide(x, np.float32(255), dtype=np.float32)
    splits = (Dataset(scaled[:100], y[:100], input_scale=1 / 255), Dataset(scaled[100:], y[100:], input_scale=1 / 255))
    monkeypatch.setattr("onnxtrain.datasets.fashion_mnist", lambda **kwargs: splits)
    spec = importlib.util.spec_from_file_location("compare_with_python", NODE_EXAMPLE / "compare_with_python.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)  # the repository root's place: node itself runs in --node-dir
    assert example.main(["--count", "20", "--out", "runs/node-demo", "--node-dir", str(workdir)]) == 0
    assert "identical predictions: 20/20" in capsys.readouterr().out
    assert (tmp_path / "runs" / "node-demo" / "model.onnx").is_file()


# --- a softmax output layer with softmax cross-entropy


def test_a_softmax_output_layer_exports_its_logits_and_its_own_softmax_as_probabilities():
    with Sequential.of(Input(4, 4, 1), Flatten(), Dense(8), Dense(3, activation="softmax"), seed=2) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = _x()
        logits, probabilities = _ort(model.inference_model(), x)
        weights = model.get_weights()
    # numpy reference: the layers as declared, ReLU then the last layer's softmax
    hidden = np.maximum(x.reshape(len(x), -1) @ weights["dense_1.kernel"] + weights["dense_1.bias"], 0)
    z = hidden @ weights["dense_2.kernel"] + weights["dense_2.bias"]
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits, z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities, softmax, rtol=1e-5, atol=1e-6)


def test_a_last_softmax_or_softmax_activation_layer_is_left_to_softmax_cross_entropy():
    from onnxtrain import emit, losses
    from onnxtrain.layers import Activation, Softmax

    softmax_ce = losses.SoftmaxCrossEntropyWithLogits()
    for last, loss, folded in [
        (Softmax(), softmax_ce, True),
        (Activation("softmax"), softmax_ce, True),
        (Softmax(axis=1), softmax_ce, False),  # not the last axis, as Keras numbers them
        (Activation("relu"), softmax_ce, False),
        (Softmax(), losses.MeanSquaredError(), False),
        (Activation("softmax"), None, False),
    ]:
        layers = [Input(4), Dense(3, activation="linear"), last]
        emitted = emit.graph_layers(layers, loss)
        assert emitted[:2] == layers[:2]
        if folded:
            assert isinstance(emitted[-1], Activation) and emitted[-1].activation.name == "linear", (last, loss)
            assert emitted[-1].name == last.name
        else:
            assert emitted[-1] is last, (last, loss)
        assert not emit.default_activation_emits_logits(last, loss)  # no Dense default behind it


def test_only_softmax_cross_entropy_leaves_a_final_softmax_or_default_activation_to_the_loss():
    from onnxtrain import emit, losses

    class Scaled(Dense):  # a forward of its own: its activation is not Dense's last step any more
        def emit(self, builder, x):
            return builder.node("Mul", [super().emit(builder, x), builder.constant(2.0, "two")])

    softmax_ce = losses.SoftmaxCrossEntropyWithLogits()
    for last, loss, folded in [
        (Dense(3, activation="softmax"), softmax_ce, True),
        (Dense(3, activation="softmax"), losses.MeanSquaredError(), False),
        (Dense(3, activation="softmax"), None, False),
        (Dense(3, activation="sigmoid"), softmax_ce, False),
        (Scaled(3, activation="softmax"), softmax_ce, False),
        (Dense(3), softmax_ce, True),  # KotlinDL's tutorial: the default ReLU gives way to logits
        (Dense(3, activation="relu"), softmax_ce, False),  # an explicit ReLU stays (and compile warns)
        (Dense(3), losses.MeanSquaredError(), False),
        (Dense(3), losses.BinaryCrossentropy(), False),  # takes probabilities, not logits
        (Dense(3), None, False),
        (Scaled(3), softmax_ce, False),
    ]:
        layers = [Input(4), Dense(5), last]
        emitted = emit.graph_layers(layers, loss)
        assert emitted[:2] == layers[:2]  # only the last layer can change
        assert emitted[-1].activation.name == ("linear" if folded else last.activation.name), (last, loss)
        assert last.activation.name in ("softmax", "sigmoid", "relu")  # the model's own layer is never changed
        assert emit.default_activation_emits_logits(last, loss) is (folded and not last.activation_given)


# --- integer inputs (token ids)


def _token_model(dtype: str = "int64") -> Sequential:
    model = Sequential([Input(shape=(5,), dtype=dtype), Embedding(30, 4), Flatten(), Dense(3)], seed=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


TOKEN_IDS = np.random.default_rng(6).integers(0, 30, size=(16, 5))


@pytest.mark.parametrize("dtype", ["int64", "int32"])
@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_an_integer_input_exports_with_its_type_and_onnx_runtime_on_ids_equals_predict(tmp_path, dtype, engine):
    model = Sequential([Input(shape=(5,), dtype=dtype), Embedding(30, 4), Flatten(), Dense(3)], seed=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine=engine)
    with model:
        model.fit(TOKEN_IDS, TOKEN_IDS[:, 0] % 3, epochs=2, batch_size=4, verbose=0)
        expected = model.predict_softly(TOKEN_IDS)
        model.export(tmp_path / "model.onnx")
        model.save(tmp_path / "saved")
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert (proto.graph.input[0].name, proto.graph.input[0].type.tensor_type.elem_type) == (
        "input",
        onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
    )
    casts = {a.i for n in proto.graph.node if n.op_type == "Cast" and "input" in n.input for a in n.attribute}
    assert casts <= {onnx.TensorProto.INT64}  # int32 ids widened for Gather; never through float
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"input": TOKEN_IDS.astype(dtype)})[0]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6, atol=1e-7)
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert metadata["input_scaling"].startswith("feed integer token ids in the input's own type")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["layers"][0]["config"]["dtype"] == dtype
    with onnxtrain.load_model(tmp_path / "saved") as loaded:
        assert loaded.graph.inputs[0].dtype == np.dtype(dtype)
        np.testing.assert_allclose(loaded.predict_softly(TOKEN_IDS), expected, rtol=1e-6, atol=1e-7)
    with InferenceModel.load(tmp_path / "model.onnx") as exported:
        assert exported.input_dtype == np.dtype(dtype)
        np.testing.assert_allclose(exported.predict_softly(TOKEN_IDS.astype(np.uint8)), expected, rtol=1e-6)


@pytest.mark.slow  # a 2**24 + 2-row table: ~3 s
def test_ids_past_float32s_integers_reach_the_table_exactly():
    """Ids above 2**24 stay integers from the array to Gather (float32 would read row 2**24 for 2**24 + 1)."""
    big = 2**24 + 2
    model = Sequential([Input(1, dtype="int64"), Embedding(big, 1), Flatten(), Dense(1, activation="linear")], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    with model:
        table = model.get_weights()["embedding_1.embeddings"]
        table[-2:] = [[1.0], [-1.0]]  # rows 2**24 and 2**24 + 1
        model.set_weights({"embedding_1.embeddings": table})
        weights = model.get_weights()
        kernel, bias = weights["dense_1.kernel"], weights["dense_1.bias"]
        ids = np.array([[2**24], [2**24 + 1]])
        np.testing.assert_allclose(model.predict(ids), table[ids[:, 0]] @ kernel + bias, rtol=1e-6)


@pytest.mark.slow
def test_node_example_feeds_int64_token_ids(tmp_path):
    workdir = _node_workdir()
    with _token_model() as model:
        model.export(tmp_path / "model.onnx")
        expected = model.predict_softly(TOKEN_IDS)
    np.save(tmp_path / "ids.npy", TOKEN_IDS.astype(np.int64))
    done = _predict_mjs(workdir, tmp_path / "model.onnx", tmp_path / "ids.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)["probabilities"]), expected, rtol=0, atol=1e-6)


def test_an_export_names_its_token_id_inputs_in_its_metadata(tmp_path):
    with _token_model() as model:
        proto = onnx.load(model.export(tmp_path / "ids.onnx"))
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(metadata["onnxtrain.token_ids"]) == {"input": {"input_dim": 30, "layer": "embedding_1"}}
    with _model() as model:
        proto = onnx.load(model.export(tmp_path / "pixels.onnx"))
    assert "onnxtrain.token_ids" not in {p.key for p in proto.metadata_props}


@pytest.mark.slow
def test_node_example_checks_ids_dtype_and_shape_against_the_model_as_python_does(tmp_path):
    """int32 ids for an int64 model are cast (as InferenceModel casts them); an id past the table, a float64 batch
    of the wrong shape are refused with InferenceModel's message, before ONNX Runtime runs."""
    workdir = _node_workdir()
    with _token_model() as model:
        model.export(tmp_path / "ids.onnx")
    with _model() as model:
        model.export(tmp_path / "pixels.onnx")
    bad_ids = TOKEN_IDS.copy()
    bad_ids[3, 1] = 30
    arrays = {"ids32": TOKEN_IDS.astype(np.int32), "bad": bad_ids, "wide": np.zeros((2, 4, 4, 2))}
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
    with InferenceModel.load(tmp_path / "ids.onnx") as python:
        expected = python.predict_softly(TOKEN_IDS.astype(np.int32))
        with pytest.raises(InvalidArgumentError) as refused:
            python.predict(bad_ids)
    done = _predict_mjs(workdir, tmp_path / "ids.onnx", tmp_path / "ids32.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)["probabilities"]), expected, rtol=0, atol=1e-6)
    done = _predict_mjs(workdir, tmp_path / "ids.onnx", tmp_path / "bad.npy")
    assert done.returncode == 1
    path = str(tmp_path / "bad.npy")
    python_message = str(refused.value)  # "x expects integer token ids ... Received: x[3, 1]=30": x is the file
    assert python_message.startswith("x expects integer token ids in [0, 29]")
    assert done.stderr.strip() == path + python_message[1:].replace("Received: x[", f"Received: {path}[")
    done = _predict_mjs(workdir, tmp_path / "pixels.onnx", tmp_path / "wide.npy")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{tmp_path / 'wide.npy'} expects a batch of examples of shape [4, 4, 1] for input 'input' of the model "
        "(shape [N, 4, 4, 1]). Received: shape [2, 4, 4, 2]"
    )


@pytest.mark.slow
def test_node_example_reads_float64_batches_unscaled_as_python_does(tmp_path):
    workdir = _node_workdir()
    x = np.random.default_rng(3).random((12, 4, 4, 1))
    with _model() as model:
        model.input_scale = 1 / 255
        model.export(tmp_path / "model.onnx")
        expected = model.predict_softly(x)
    np.save(tmp_path / "x.npy", x)
    done = _predict_mjs(workdir, tmp_path / "model.onnx", tmp_path / "x.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)["probabilities"]), expected, rtol=0, atol=1e-6)
