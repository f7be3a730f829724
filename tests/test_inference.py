"""Tests of InferenceModel: the same predictions as Sequential from a saved directory or an exported file,
with plain onnxruntime (no training build), and clear errors for bad paths and inputs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxtrain import InferenceModel, Sequential
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    RuntimeSetupError,
    ShapeError,
)
from onnxtrain.layers import Dense, Flatten, Input

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("zero", "one", "two")


def _x(n: int = 9) -> np.ndarray:
    return np.random.default_rng(5).random(size=(n, 4, 4, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A classifier trained on [0, 1] inputs with input_scale 1/255, saved, exported, and its predictions."""
    folder = tmp_path_factory.mktemp("inference")
    x = _x(60)
    y = (x.reshape(60, -1).mean(axis=1) * 6).astype(np.int64) % 3
    with Sequential.of(Input(4, 4, 1), Flatten(), Dense(12), Dense(3, activation="linear"), seed=8) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit((x, y), epochs=3, batch_size=10, verbose=0)
        model.class_names, model.input_scale = CLASSES, 1 / 255
        pixels = (x[:9] * 255).round().astype(np.uint8)
        return {
            "directory": model.save(folder / "model"),
            "file": model.export(folder / "model.onnx"),
            "predictions": model.predict(x[:9]),
            "probabilities": model.predict_softly(x[:9]),
            "pixels": pixels,
            "pixel_predictions": model.predict(pixels),
        }


@pytest.mark.parametrize("source", ["directory", "file"])
def test_predictions_equal_sequential_from_a_directory_or_a_file(saved, source):
    with InferenceModel.load(saved[source]) as model:
        assert model.class_names == CLASSES and model.input_shape == (4, 4, 1)
        assert model.output_names == ("logits", "probabilities")
        assert np.array_equal(model.predict(_x()), saved["predictions"])
        np.testing.assert_allclose(model.predict_softly(_x()), saved["probabilities"], rtol=0, atol=1e-6)
        assert np.array_equal(model.predict(saved["pixels"]), saved["pixel_predictions"])  # x input_scale


@pytest.mark.parametrize("verbose", [0, 1, 2, "auto"])
def test_predict_takes_keras_verbose_and_shows_no_progress(saved, capsys, verbose):
    with InferenceModel.load(saved["file"]) as model:
        assert np.array_equal(model.predict(_x(), verbose=verbose), saved["predictions"])
        np.testing.assert_allclose(model.predict_softly(_x(), verbose=verbose), saved["probabilities"], atol=1e-6)
        with pytest.raises(InvalidArgumentError, match=r"verbose expects 0 \(silent\).*Received: verbose='loud'"):
            model.predict(_x(), verbose="loud")
    assert capsys.readouterr().out == ""


def test_one_example_gives_a_class_index_and_one_probability_row(saved):
    model = InferenceModel.load(saved["file"])
    single = model.predict(_x()[0])
    assert isinstance(single, int) and single == saved["predictions"][0]
    assert model.class_names[single] in CLASSES
    probabilities = model.predict_softly(_x()[0])
    assert probabilities.shape == (3,) and probabilities.sum() == pytest.approx(1.0, abs=1e-6)


def test_batches_do_not_change_the_result(saved):
    model = InferenceModel.load(saved["file"])
    assert np.array_equal(model.predict(_x(), batch_size=2), saved["predictions"])
    with pytest.raises(InvalidArgumentError, match=r"batch_size expects a positive int\. Received: batch_size=0"):
        model.predict(_x(), batch_size=0)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (
            np.zeros((2, 16), np.float32),
            ShapeError,
            r"expects shape \[None, 4, 4, 1\].*Reshape it with x\.reshape",
        ),
        (np.zeros((0, 4, 4, 1), np.float32), InvalidArgumentError, "at least one example"),
        (np.full((1, 4, 4, 1), np.nan, np.float32), InvalidArgumentError, "finite values"),
        (np.array([["a"]]), InvalidTypeError, "float or integer array"),
        ("pixels", InvalidTypeError, "expects a numpy array"),
    ],
)
def test_bad_inputs_are_refused_like_sequential_predict(saved, x, error, match):
    with pytest.raises(error, match=match):
        InferenceModel.load(saved["file"]).predict(x)


def _tiny(loss: str, last: str, units: int) -> Sequential:
    model = Sequential.of(Input(3), Dense(units, activation=last), seed=1)
    model.compile(loss=loss)
    return model


def test_a_regression_model_predicts_raw_outputs_and_has_no_probabilities(tmp_path):
    x = _x(4).reshape(4, -1)[:, :3]
    with _tiny("mse", "linear", 2) as model:
        expected = model.predict(x)
        model.export(tmp_path / "m.onnx")
    inference = InferenceModel.load(tmp_path / "m.onnx")
    np.testing.assert_allclose(inference.predict(x), expected, rtol=0, atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="predict_softly needs a classification loss"):
        inference.predict_softly(x)


def test_a_binary_model_thresholds_its_sigmoid_output(tmp_path):
    x = _x(6).reshape(6, -1)[:, :3] * 4 - 2
    with _tiny("binary_crossentropy", "sigmoid", 1) as model:
        expected, soft = model.predict(x), model.predict_softly(x)
        model.export(tmp_path / "m.onnx")
    inference = InferenceModel.load(tmp_path / "m.onnx")
    assert np.array_equal(inference.predict(x), expected)
    np.testing.assert_allclose(inference.predict_softly(x), soft, rtol=0, atol=1e-6)


def test_an_uncompiled_export_predicts_logits_and_has_no_probabilities(tmp_path):
    model = Sequential.of(Input(3), Dense(2), seed=0)
    inference = InferenceModel.load(model.export(tmp_path / "m.onnx"))
    assert inference.predict(np.ones((2, 3), np.float32)).shape == (2, 2)
    with pytest.raises(InvalidArgumentError, match="has no 'probabilities' output and no loss"):
        inference.predict_softly(np.ones((2, 3), np.float32))


@pytest.mark.parametrize(
    "make, match",
    [
        ("missing", r"No model at .*expected a directory written by model\.save\(\) or a \.onnx file"),
        ("empty directory", r"has no model\.onnx"),
        ("garbage", r"thing is not an ONNX model \(it does not parse as an ONNX ModelProto\)"),
    ],
)
def test_bad_paths_raise_model_file_error(tmp_path, make, match):
    path = tmp_path / "thing"
    if make == "empty directory":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"\x00not onnx" * 8)
    with pytest.raises(ModelFileError, match=match):
        InferenceModel.load(path)


def _without(field: str) -> Callable[[bytes], bytes]:
    """The model with `field` cleared: what a cut at that field's start leaves (fields are written in order)."""

    def cut(data: bytes) -> bytes:
        proto = onnx.load_model_from_string(data)
        proto.ClearField(field)
        return proto.SerializeToString()

    return cut


DAMAGED_FILES = [
    ("empty", lambda data: b"", r"m\.onnx is empty \(0 bytes\)"),
    (
        "random bytes",
        lambda data: np.random.default_rng(0).bytes(len(data)),
        r"m\.onnx is not an ONNX model \(it does not parse as an ONNX ModelProto\)",
    ),
    (
        "truncated",
        lambda data: data[: len(data) // 2],
        r"m\.onnx is truncated \(\d+ bytes; it ends inside its 'graph' field, so it does not parse as an ONNX "
        r"ModelProto\)",
    ),
    ("last byte cut", lambda data: data[:-1], r"m\.onnx is truncated \(\d+ bytes; it ends inside its '\w+' field"),
    ("cut before the graph", _without("graph"), r"m\.onnx has no graph \(truncated or not an ONNX model\?\)"),
    (
        "cut after the graph",
        _without("opset_import"),
        r"m\.onnx has a graph but no opset_import \(truncated or not an ONNX model\?\)",
    ),
]


@pytest.mark.parametrize(("damage", "match"), [row[1:] for row in DAMAGED_FILES], ids=[r[0] for r in DAMAGED_FILES])
def test_a_damaged_onnx_file_is_described_in_words_before_onnx_runtime_sees_it(tmp_path, saved, damage, match):
    path = tmp_path / "m.onnx"
    path.write_bytes(damage(saved["file"].read_bytes()))
    with pytest.raises(ModelFileError, match=match) as error:
        InferenceModel.load(path)
    assert "ONNXRuntimeError" not in str(error.value)
    # The gate refuses it first (ORT is the second line): the cause, if any, is protobuf's parse error.
    cause = error.value.__cause__
    assert cause is None or not type(cause).__module__.startswith("onnxruntime")


def test_bad_arguments_are_refused(saved):
    with pytest.raises(InvalidTypeError, match=r"expects a model directory or \.onnx file path"):
        InferenceModel.load(42)
    with pytest.raises(InvalidArgumentError, match='device expects "cpu", "cuda"'):
        InferenceModel.load(saved["file"], device="tpu")


@pytest.mark.skipif("CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(), reason="has CUDA")
def test_asking_for_cuda_without_the_provider_says_which_package_brings_it(saved):
    with pytest.raises(RuntimeSetupError, match=r"CUDA execution provider.*onnxtrain\[infer-gpu\]"):
        InferenceModel.load(saved["file"], device="cuda")


@pytest.mark.cuda
def test_a_cuda_session_runs_on_the_gpu_and_predicts_what_the_cpu_does(saved):
    with InferenceModel.load(saved["directory"], device="cuda") as model:
        assert model.device == "cuda:0" and model._session.get_providers()[0] == "CUDAExecutionProvider"
        assert np.array_equal(model.predict(_x()), saved["predictions"])
        np.testing.assert_allclose(model.predict_softly(_x()), saved["probabilities"], rtol=0, atol=1e-5)


@pytest.mark.cuda
def test_a_gpu_that_is_not_there_is_one_clear_error(saved):
    with pytest.raises(RuntimeSetupError, match=r"device='cuda:63'.*no GPU 63"):
        InferenceModel.load(saved["file"], device="cuda:63")


# --- no training package needed


@pytest.mark.slow
@pytest.mark.parametrize("module", ["inference.py", "_inference_source.py", "_inference_metadata.py"])
def test_the_inference_modules_never_import_the_training_api(module):
    tree = ast.parse((REPO / "onnxtrain" / module).read_text())
    imported = {n.name for node in ast.walk(tree) if isinstance(node, ast.Import) for n in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [m for m in imported if m.startswith(("onnxruntime.training", "onnxtrain._ort_training", "torch"))]


def _training_modules_after(code: str) -> list[str]:
    found = "sorted(k for k in sys.modules if 'onnxruntime.training' in k or k == 'torch')"
    script = f"import sys\n{code}\nprint({found})"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_loading_and_predicting_imports_no_more_of_onnxruntime_training_than_onnxruntime_does(saved):
    # The training build's own `import onnxruntime` already pulls in parts of onnxruntime.training; an
    # inference-only install has none (see the next test). InferenceModel must add nothing (no training API).
    use = (
        "import numpy as np\nfrom onnxtrain import InferenceModel\n"
        f"InferenceModel.load({str(saved['directory'])!r}).predict(np.zeros((2, 4, 4, 1), np.float32))"
    )
    assert _training_modules_after(use) == _training_modules_after("import onnxruntime")


@pytest.mark.slow
def test_saved_and_exported_models_run_with_only_onnxruntime_installed():
    """tools/check_infer_only.py builds (once, cached) a venv with onnxruntime but no training package and
    runs InferenceModel there against Sequential's predictions."""
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "check_infer_only.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode == 3:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ort_packages"] == ["onnxruntime"]
    assert result["saved_model"]["predictions_equal"] and result["model.onnx"]["predictions_equal"]
    assert "inference-only build" in result["compile_error"]


def test_predict_outputs_gives_every_output_of_a_model_of_several_by_name(tmp_path):
    from onnxtrain import Model

    x = _x(12).reshape(12, -1)
    inputs = Input(16)
    with Model(inputs, [Dense(3, name="kind")(inputs), Dense(2, name="size")(inputs)], seed=0) as model:
        model.compile(optimizer="adam", loss={"kind": "softmax_cross_entropy_with_logits", "size": "mse"})
        expected = model.predict(x[:5])
        model.export(tmp_path / "m.onnx")
    with InferenceModel.load(tmp_path / "m.onnx") as loaded:
        outputs = loaded.predict_outputs(x[:5], batch_size=2)  # batches concatenated output by output
    assert list(outputs) == ["kind", "kind_probabilities", "size"]
    assert outputs["size"].shape == (5, 2) and outputs["kind_probabilities"].shape == (5, 3)
    np.testing.assert_array_equal(outputs["kind_probabilities"].argmax(axis=1), expected[0])
    np.testing.assert_allclose(outputs["size"], expected[1], atol=1e-5)


def _two_inputs(heads: list[str], folder: Path) -> dict:
    """A trained Functional model of two inputs (`image`, `extra`) and the outputs `heads` of: `kind` (softmax,
    sparse categorical cross-entropy), `flag` (sigmoid, binary cross-entropy), `size` (linear, mse); saved,
    exported, and what Model.predict (and predict_softly, where every output is a classifier's) give."""
    from onnxtrain import Model
    from onnxtrain.layers import Concatenate

    rng = np.random.default_rng(3)
    image, extra = rng.random((40, 4, 4, 1), np.float32), rng.random((40, 3), np.float32)
    labels = {
        "kind": rng.integers(0, 3, 40),
        "flag": rng.integers(0, 2, (40, 1)).astype(np.float32),
        "size": rng.random((40, 2)).astype(np.float32),
    }
    layers = {
        "kind": (Dense(3, activation="softmax", name="kind"), "sparse_categorical_crossentropy"),
        "flag": (Dense(1, activation="sigmoid", name="flag"), "binary_crossentropy"),
        "size": (Dense(2, activation="linear", name="size"), "mse"),
    }
    a, b = Input(4, 4, 1, name="image"), Input(3, name="extra")
    hidden = Dense(8, activation="relu")(Concatenate()([Flatten()(a), b]))
    with Model([a, b], [layers[name][0](hidden) for name in heads], seed=0) as model:
        model.compile(optimizer="adam", loss={name: layers[name][1] for name in heads})
        model.fit([image, extra], [labels[name] for name in heads], epochs=2, verbose=0)
        x = [image[:9], extra[:9]]
        classifiers = "size" not in heads
        return {
            "x": x,
            "directory": model.save(folder / "model"),
            "file": model.export(folder / "model.onnx"),
            "predictions": model.predict(x, batch_size=4),
            "one": model.predict([image[0], extra[0]]),
            "probabilities": model.predict_softly(x) if classifiers else None,
            "one_soft": model.predict_softly([image[0], extra[0]]) if classifiers else None,
        }


def _assert_same(result, expected) -> None:
    assert isinstance(result, list) and len(result) == len(expected)
    for got, want in zip(result, expected, strict=True):
        assert type(got) is type(want) and np.shape(got) == np.shape(want)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("source", ["directory", "file"])
def test_a_model_of_two_inputs_and_two_classifier_outputs_predicts_as_model_predict(tmp_path, source):
    made = _two_inputs(["kind", "flag"], tmp_path)
    image, extra = made["x"]
    with InferenceModel.load(made[source]) as loaded:
        assert loaded.input_names == ("image", "extra") and loaded.input_shape == [(4, 4, 1), (3,)]
        assert loaded.predicted_outputs == ("kind", "flag")
        _assert_same(loaded.predict([image, extra], batch_size=4), made["predictions"])
        _assert_same(loaded.predict({"extra": extra, "image": image}), made["predictions"])  # Keras' dict
        _assert_same(loaded.predict([image[0], extra[0]]), made["one"])  # one example: an int per classifier
        soft = loaded.predict_softly([image, extra])
        assert [p.shape for p in soft] == [(9, 3), (9, 1)]
        for got, want in zip(soft, made["probabilities"], strict=True):  # ORT's Softmax and Sigmoid against numpy's
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        np.testing.assert_allclose(loaded.predict_softly((image[0], extra[0]))[0], made["one_soft"][0], atol=1e-6)
        with pytest.raises(InvalidTypeError, match=r"x expects one array per model input \(\['image', 'extra'\]\)"):
            loaded.predict(image)


def test_a_regression_output_of_a_model_of_several_predicts_its_values_soft_or_not(tmp_path):
    made = _two_inputs(["kind", "size"], tmp_path)
    with InferenceModel.load(made["file"]) as loaded:
        _assert_same(loaded.predict(made["x"]), made["predictions"])
        assert loaded.predict(made["x"])[1].dtype == np.float32
        # as Model.predict_softly: the classifier head's probabilities, the regression head's values
        probabilities, sizes = loaded.predict_softly(made["x"])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(sizes, made["predictions"][1])
