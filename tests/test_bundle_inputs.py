"""onnxtrain.bundle's inputs: what bundle.json says of each model input so that onnxtrain-js reads it as Python does
(here: `rescales_pixels`, a model that scales its raw pixels itself, read raw without the warning of raw pixels)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.bundle import read_metadata
from onnxtrain.layers import Concatenate, Dense, Flatten, Input, Rescaling
from tests.js_harness import JS, ORT_NODE, missing_js_dependencies, node_script

RNG = np.random.default_rng(4)
PIXELS = RNG.integers(0, 256, (16, 4, 4, 1), dtype=np.uint8)
Y = RNG.integers(0, 3, 16)


def _rescaling() -> Sequential:
    model = Sequential.of(Input(4, 4, 1), Rescaling(1 / 255), Flatten(), Dense(3, activation="linear"), seed=2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_the_bundle_says_which_inputs_the_model_rescales_itself(tmp_path):
    with _rescaling() as model:
        model.export_training_bundle(tmp_path / "own")
    image, meta = Input(shape=(4, 4, 1), name="image"), Input(shape=(3,), name="meta")
    joined = Concatenate()([Flatten()(Rescaling(1 / 255)(image)), meta])
    with Model(inputs=[image, meta], outputs=Dense(2, activation="linear")(joined), seed=1) as two:
        two.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        two.export_training_bundle(tmp_path / "two")
    with Sequential.of(Input(4, 4, 1), Flatten(), Dense(3, activation="linear"), seed=2) as plain:
        plain.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        plain.export_training_bundle(tmp_path / "plain")
    found = {
        name: [i["rescales_pixels"] for i in read_metadata(tmp_path / name)["inputs"]]
        for name in ("own", "two", "plain")
    }
    assert found == {"own": [True], "two": [True, False], "plain": [False]}


@pytest.mark.slow
def test_node_reads_raw_pixels_into_a_rescaling_model_as_python_does_without_a_warning(tmp_path):
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    with _rescaling() as model:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Python does not warn: the model scales its pixels
            expected = model.evaluate(PIXELS, Y, return_dict=True)["loss"]
        model.export_training_bundle(tmp_path / "b")
    body = f"""
const warned = [];
console.warn = (message) => void warned.push(message);
const trainer = await Trainer.load(ort, {json.dumps(str(tmp_path / "b"))});
const x = Uint8Array.from({json.dumps(PIXELS.ravel().tolist())});
const {{ loss }} = await trainer.evaluate(x, {json.dumps(Y.tolist())});
result = {{ loss, warned }};
"""
    node = node_script(body, tmp_path)
    assert node["warned"] == []
    assert node["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_canvas_bytes_are_refused_and_image_pixels_gives_pillows_gray_as_python_reads_it(tmp_path):
    """onnxtrain-js' imagePixels(rgba, 1) against Pillow's convert("L"), the conversion a Python user makes: the
    same gray pixels and the same loss; the RGBA bytes as they are refused, naming the 4 examples they would make."""
    image = pytest.importorskip("PIL.Image")
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    rgba = np.random.default_rng(9).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    picture = image.fromarray(rgba, "RGBA")
    gray = np.asarray(picture.convert("L"))
    with Sequential.of(Input(16, 16, 1), Flatten(), Dense(3, activation="linear"), seed=2) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.input_scale = 1 / 255
        expected = model.evaluate(gray[None, :, :, None], np.array([1]), return_dict=True)["loss"]
        model.export_training_bundle(tmp_path / "b")
    src = json.dumps((JS / "src" / "index.js").as_uri())
    body = f"""
const {{ imagePixels }} = await import({src});
const trainer = await Trainer.load(ort, {json.dumps(str(tmp_path / "b"))});
const rgba = Uint8ClampedArray.from({json.dumps(rgba.ravel().tolist())});
const gray = imagePixels({{ data: rgba, width: 16, height: 16 }}, 1);
result = {{
  gray, rgb: imagePixels(rgba, 3), loss: (await trainer.evaluate(gray, [1])).loss,
  refused: await attempt(() => trainer.step(rgba, [1])),
}};
"""
    node = node_script(body, tmp_path)
    np.testing.assert_array_equal(node["gray"], gray.ravel())
    np.testing.assert_array_equal(node["rgb"], np.asarray(picture.convert("RGB")).ravel())
    assert node["loss"] == pytest.approx(expected, rel=1e-6)
    assert node["refused"]["error"] == "RangeError"
    assert "which would be read as 4 examples. Convert them: imagePixels(imageData, 1" in node["refused"]["message"]


@pytest.mark.slow
def test_node_takes_inputs_by_name_and_integer_float_targets_as_python_does(tmp_path):
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    rng = np.random.default_rng(6)
    feats, meta = rng.random((8, 6), dtype=np.float32), rng.random((8, 3), dtype=np.float32)
    targets = rng.integers(0, 5, (8, 2))  # int64 targets of a regression
    a, b = Input(shape=(6,), name="feats"), Input(shape=(3,), name="meta")
    out = Dense(2, activation="linear")(Concatenate()([Dense(4)(a), b]))
    with Model(inputs=[a, b], outputs=out, seed=5) as model:
        model.compile(optimizer="adam", loss="mse")
        expected = model.evaluate({"feats": feats, "meta": meta}, targets, return_dict=True)["loss"]
        model.export_training_bundle(tmp_path / "b")
    body = f"""
const trainer = await Trainer.load(ort, {json.dumps(str(tmp_path / "b"))});
const feats = Float32Array.from({json.dumps(feats.ravel().tolist())});
const meta = Float32Array.from({json.dumps(meta.ravel().tolist())});
const targets = BigInt64Array.from({json.dumps(targets.ravel().tolist())}, BigInt);
result = {{
  named: (await trainer.evaluate({{ meta, feats }}, targets)).loss,
  listed: (await trainer.evaluate([feats, meta], Array.from(targets, Number))).loss,
  tensor: (await trainer.evaluate(
    new Map([["feats", feats], ["meta", meta]]), new ort.Tensor("int64", targets, [8, 2]))).loss,
}};
"""
    node = node_script(body, tmp_path)
    assert node["named"] == node["listed"] == node["tensor"] == pytest.approx(expected, rel=1e-6)
