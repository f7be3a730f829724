"""examples/node/predict.mjs takes what InferenceModel takes and refuses what it refuses: non-finite values (with
the index and value), one example without the batch axis, Fortran-ordered .npy files, one file per input of a model
of several; it decides every output of a model of several as InferenceModel does, and computes a ZeroPadding2D
before a pool as Python does (without ONNX Runtime's Pad_Fusion). Needs node and
examples/node/node_modules (`.ci/run` runs `npm ci --ignore-scripts` there); they are required in CI (CI=true),
skipped with the reason elsewhere. tests/test_export.py holds the other Node parity tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import InferenceModel, Model, Sequential, losses
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import (
    Concatenate,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    Input,
    MaxPooling2D,
    ZeroPadding2D,
)
from tests.js_harness import in_ci

NODE_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node"
PREDICT = NODE_EXAMPLE / "predict.mjs"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _node_and_packages() -> None:
    reason = None
    if shutil.which("node") is None:
        reason = "node is not installed (CI installs Node.js 20)"
    elif not (NODE_EXAMPLE / "node_modules" / "onnxruntime-node").is_dir():
        reason = "examples/node/node_modules is missing: run `npm ci --ignore-scripts` in examples/node (.ci/run does)"
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the Node.js example tests: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A classifier of [3, 4, 2] examples (no axis of equal sizes, so a wrong memory order changes the outputs)."""
    path = tmp_path_factory.mktemp("node") / "model.onnx"
    with Sequential.of(Input(3, 4, 2), Flatten(), Dense(8), Dense(5, activation="linear"), seed=4) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.input_scale = 1 / 255
        model.export(path)
    return path


def _images(count: int = 6) -> np.ndarray:
    return np.random.default_rng(8).normal(size=(count, 3, 4, 2)).astype(np.float32)


def _predict_mjs(model: Path, images: np.ndarray, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """predict.mjs on `model` and `images` saved as tmp_path/x.npy (as np.save writes them: Fortran order kept)."""
    np.save(tmp_path / "x.npy", images)
    return _run_predict_mjs(str(model), str(tmp_path / "x.npy"))


def _run_predict_mjs(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = ["node", str(PREDICT), *arguments]
    return subprocess.run(command, cwd=NODE_EXAMPLE, capture_output=True, text=True, timeout=120)


def _python_message(model: Path, images: np.ndarray) -> str:
    with InferenceModel.load(model) as python, pytest.raises(InvalidArgumentError) as refused:
        python.predict(images)
    return str(refused.value)


@pytest.mark.parametrize(
    ("dtype", "value", "where"),
    [
        (np.float32, np.nan, (1, 2, 3, 0)),
        (np.float32, -np.inf, (0, 0, 1, 1)),
        (np.float64, np.inf, (5, 2, 0, 1)),
        (np.float64, 1e39, (2, 1, 1, 0)),  # finite, but beyond float32's range: inf once fed
    ],
    ids=["nan", "-inf", "float64-inf", "float64-beyond-float32"],
)
def test_node_refuses_non_finite_values_with_pythons_message(tmp_path, model_path, dtype, value, where):
    """A NaN gave class 0 with null probabilities; now Node refuses it as InferenceModel does, naming the first
    offending index and its value ("x" in Python's message is the file's path in Node's)."""
    images = _images().astype(dtype)
    images[where] = value
    images[5, 2, 3, 1] = np.nan  # a later one: the first is named
    done = _predict_mjs(model_path, images, tmp_path)
    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    python = _python_message(model_path, images)
    assert python.endswith(f"Received: x[{', '.join(map(str, where))}]={value!r}")
    path = str(tmp_path / "x.npy")
    assert done.stderr.strip() == path + python[1:].replace("Received: x[", f"Received: {path}[")


def test_node_takes_one_example_without_the_batch_axis_as_python_does(tmp_path, model_path):
    images = _images()
    done = _predict_mjs(model_path, images[3], tmp_path)
    assert done.returncode == 0, done.stderr
    node = json.loads(done.stdout)
    with InferenceModel.load(model_path) as python:
        assert node["predictions"] == [python.predict(images[3])]
        np.testing.assert_allclose(node["probabilities"], [python.predict_softly(images[3])], rtol=0, atol=1e-6)
        assert node["predictions"] == python.predict(images[3:4]).tolist()  # as the example inside a batch


def test_node_names_the_batch_index_of_a_nan_in_one_example(tmp_path, model_path):
    example = _images()[0]
    example[2, 3, 0] = np.nan
    done = _predict_mjs(model_path, example, tmp_path)
    assert done.returncode == 1
    assert _python_message(model_path, example) == "x expects finite values. Received: x[0, 2, 3, 0]=nan"
    path = tmp_path / "x.npy"
    assert done.stderr.strip() == f"{path} expects finite values. Received: {path}[0, 2, 3, 0]=nan"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_node_reads_fortran_ordered_npy_files_as_numpy_does(tmp_path, model_path, dtype):
    """A Fortran-ordered .npy (np.save of a transposed or np.asfortranarray array) was refused; now its values are
    put in C order as np.load gives them to Python, so the outputs are Python's, and the C-ordered file's."""
    images = _images() if dtype != np.uint8 else np.random.default_rng(2).integers(0, 256, (6, 3, 4, 2), np.uint8)
    images = images.astype(dtype)
    fortran = np.asfortranarray(images)
    np.save(tmp_path / "check.npy", fortran)
    assert np.load(tmp_path / "check.npy").flags.f_contiguous  # the file is Fortran-ordered
    done = _predict_mjs(model_path, fortran, tmp_path)
    assert done.returncode == 0, done.stderr
    node = json.loads(done.stdout)
    with InferenceModel.load(model_path) as python:
        assert node["predictions"] == python.predict(images).tolist()
        np.testing.assert_allclose(node["probabilities"], python.predict_softly(images), rtol=0, atol=1e-6)
    c_ordered = _predict_mjs(model_path, np.ascontiguousarray(images), tmp_path)
    assert json.loads(c_ordered.stdout) == node


def test_node_still_refuses_a_shape_that_is_neither_a_batch_nor_one_example(tmp_path, model_path):
    done = _predict_mjs(model_path, _images()[:, :, :, :1], tmp_path)
    assert done.returncode == 1
    assert "Received: shape [6, 3, 4, 1]" in done.stderr
    done = _predict_mjs(model_path, _images()[0, :, :, :1], tmp_path)
    assert done.returncode == 1
    assert "Received: shape [3, 4, 1]" in done.stderr


@pytest.mark.parametrize(
    ("dtype", "value"), [(np.uint16, 771), (np.int16, -1), (np.int32, 300)], ids=["uint16", "negative", "300"]
)
def test_node_refuses_integers_outside_the_pixel_range_of_a_1_255_model_as_python_does(
    tmp_path, model_path, dtype, value
):
    pixels = np.random.default_rng(2).integers(0, 256, size=(4, 3, 4, 2)).astype(dtype)
    pixels[2, 1, 3, 0] = value
    done = _predict_mjs(model_path, pixels, tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    python = _python_message(model_path, pixels)
    assert python.startswith("x expects integer pixels in [0, 255]") and f"x[2, 1, 3, 0]={value}" in python
    assert "x.npy expects integer pixels in [0, 255]" in done.stderr
    assert f"x.npy[2, 1, 3, 0]={value}." in done.stderr


def test_node_warns_of_uint8_pixels_read_raw_by_a_model_of_input_scale_1(tmp_path):
    path = tmp_path / "raw.onnx"
    with Sequential.of(Input(3, 4, 2), Flatten(), Dense(5, activation="linear"), seed=4) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.export(path)  # input_scale 1: trained on floats
    pixels = np.random.default_rng(2).integers(0, 256, size=(4, 3, 4, 2)).astype(np.uint8)
    done = _predict_mjs(path, pixels, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "is uint8 (pixels 0-255) and the model's input_scale is 1, so the model reads the raw" in done.stderr
    with InferenceModel.load(path) as python, pytest.warns(UserWarning, match="reads the raw values"):
        assert json.loads(done.stdout)["predictions"] == python.predict(pixels).tolist()


@pytest.mark.parametrize("pool", ["max", "max-strided"])
def test_node_computes_a_zero_padding_before_a_pool_as_python_does(tmp_path, pool):
    """Conv -> ZeroPadding2D -> MaxPooling2D(padding="same"): ONNX Runtime's Pad_Fusion folds the zeros into the
    pool's own padding, which MaxPool fills with -inf, and Node's default session printed values 3-7 away from
    Python's (which runs without it). On mostly negative inputs the zeros are the maxima of the border windows."""
    strides = 1 if pool == "max" else 2
    layers = (
        Input(8, 8, 3),
        Conv2D(4, 3, activation="linear"),
        ZeroPadding2D(1),
        MaxPooling2D(3, strides=strides, padding="same"),
        Flatten(),
    )
    with Sequential.of(*layers, seed=2) as model:
        model.compile(optimizer="sgd", loss="mse")
        model.export(tmp_path / "model.onnx")
    images = (np.random.default_rng(0).normal(size=(5, 8, 8, 3)) - 2).astype(np.float32)
    done = _predict_mjs(tmp_path / "model.onnx", images, tmp_path)
    assert done.returncode == 0, done.stderr
    with InferenceModel.load(tmp_path / "model.onnx") as python:
        expected = python.predict(images)
    np.testing.assert_allclose(json.loads(done.stdout)["predictions"], expected, rtol=0, atol=1e-5)


def _several_outputs(path: Path) -> np.ndarray:
    """Export a model of three outputs (a softmax classifier `kind`, a regression `size`, a binary classifier on
    logits `flag`) to `path`; returns examples for it."""
    x = np.random.default_rng(3).normal(size=(40, 4)).astype(np.float32)
    targets = [
        (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0),
        x[:, 2:4] * 2,
        (x[:, 3] > 0).astype(np.float32)[:, None],
    ]
    i = Input(4)
    h = Dense(16, activation="relu")(i)
    heads = [Dense(3, name="kind")(h), Dense(2, activation="linear", name="size")(h), Dense(1, name="flag")(h)]
    with Model(i, heads, seed=1) as model:
        flag = losses.BinaryCrossentropy(from_logits=True)
        model.compile(optimizer="adam", loss={"kind": "sparse_categorical_crossentropy", "size": "mse", "flag": flag})
        model.fit(x, targets, epochs=3, batch_size=8, verbose=0)
        model.export(path)
    return x


def test_node_decides_every_output_of_a_model_of_several_as_python_does(tmp_path):
    """predict.mjs printed the first output's logits as the predictions, probabilities null, and dropped the
    others; now each of the model's own outputs is decided by its loss, as InferenceModel.predict decides it, and
    its probabilities are InferenceModel.predict_softly's (none for a regression)."""
    x = _several_outputs(tmp_path / "model.onnx")
    done = _predict_mjs(tmp_path / "model.onnx", x, tmp_path)
    assert done.returncode == 0, done.stderr
    node = json.loads(done.stdout)
    with InferenceModel.load(tmp_path / "model.onnx") as python:
        kind, size, flag = python.predict(x)
        soft_kind, _, soft_flag = python.predict_softly(x)
        assert node["outputs"] == list(python.output_names)
    assert list(node["predictions"]) == list(node["probabilities"]) == ["kind", "size", "flag"]
    assert node["predictions"]["kind"] == kind.tolist()
    assert len(set(kind.tolist())) > 1 and len(set(flag.tolist())) > 1  # checks that could fail
    np.testing.assert_allclose(node["predictions"]["size"], size, rtol=0, atol=1e-6)
    assert node["predictions"]["flag"] == flag.tolist()
    np.testing.assert_allclose(node["probabilities"]["kind"], soft_kind, rtol=0, atol=1e-6)
    np.testing.assert_allclose(node["probabilities"]["flag"], soft_flag, rtol=0, atol=1e-6)
    assert node["probabilities"]["size"] is None


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A model of a float input `image_feats` and an int64 input `ids` (an Embedding's), its file and examples."""
    folder = tmp_path_factory.mktemp("two_inputs")
    rng = np.random.default_rng(5)
    feats, ids = rng.normal(size=(6, 8)).astype(np.float32), rng.integers(0, 10, size=(6, 2))
    a, b = Input(8, name="image_feats"), Input(2, dtype="int64", name="ids")
    outputs = Dense(3, activation="linear")(Concatenate()([Dense(4)(a), Flatten()(Embedding(10, 2)(b))]))
    with Model([a, b], outputs, seed=3) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.export(folder / "model.onnx")
    np.save(folder / "feats.npy", feats)
    np.save(folder / "ids.npy", ids)
    return folder / "model.onnx", feats, ids


def test_node_takes_one_file_per_input_by_name_or_in_order(two_inputs):
    model, feats, ids = two_inputs
    folder = model.parent
    with InferenceModel.load(model) as python:
        expected, soft = python.predict([feats, ids]).tolist(), python.predict_softly([feats, ids])
    for arguments in (
        [str(folder / "feats.npy"), str(folder / "ids.npy")],
        [f"ids={folder / 'ids.npy'}", f"image_feats={folder / 'feats.npy'}"],
        [f"ids={folder / 'ids.npy'}", str(folder / "feats.npy")],
    ):
        done = _run_predict_mjs(str(model), *arguments)
        assert done.returncode == 0, (arguments, done.stderr)
        node = json.loads(done.stdout)
        assert node["inputs"] == ["image_feats", "ids"]
        assert node["predictions"] == expected, arguments
        np.testing.assert_allclose(node["probabilities"], soft, rtol=0, atol=1e-6)


INPUTS = "image_feats [N, 8] float32, ids [N, 2] int64"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["feats.npy"],
            f"expects one .npy file per input: it has 2 ({INPUTS}). Give them as NAME=FILE or in that order: "
            "node predict.mjs {model} image_feats=image_feats.npy ids=ids.npy. Received: 1 file ({folder}/feats.npy)",
        ),
        (
            ["meta=feats.npy", "ids.npy"],
            f"has no input 'meta' (given as meta={{folder}}/feats.npy). Its inputs: {INPUTS}",
        ),
        (["ids=ids.npy", "ids=ids.npy"], "input 'ids' was given twice: {folder}/ids.npy and {folder}/ids.npy"),
        (
            ["feats.npy", "short_ids.npy"],
            "Received: {folder}/feats.npy: 6 (image_feats), {folder}/short_ids.npy: 4 (ids)",
        ),
        (["feats.npy", "ids.npy", "--batch", "4"], "takes the option --input-scale S only. Received: --batch"),
    ],
    ids=["one-file", "unknown-name", "twice", "examples", "option"],
)
def test_node_refuses_files_that_are_not_one_per_input_naming_the_inputs(two_inputs, arguments, message):
    """A model of two inputs given one file died with ONNX Runtime's "input 'ids' is missing in 'feeds'"."""
    model, _, ids = two_inputs
    folder = model.parent
    np.save(folder / "short_ids.npy", ids[:4])
    given = [a if a.startswith("--") or a.isdigit() else _in_folder(a, folder) for a in arguments]
    done = _run_predict_mjs(str(model), *given)
    assert done.returncode == 1 and done.stdout == ""
    assert message.format(model=model, folder=folder) in done.stderr


def _in_folder(argument: str, folder: Path) -> str:
    """`name=file` or `file` with the file in `folder`."""
    name, _, file = argument.rpartition("=")
    return f"{name}={folder / file}" if name else str(folder / file)
