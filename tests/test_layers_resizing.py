"""Resizing and CenterCrop: Keras 3's outputs (tests/data/keras_augmentation/resizing.npz, written by
tools/keras_augmentation_fixtures.py), the layer harness (config, shapes, training on both engines, the export),
channels-first inputs, the gradient they pass back, and bad arguments."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from layer_gradients import check_input_gradient
from layer_harness import LayerCase, ToChannelsFirst, check_reference, check_training_and_export, forward

from onnxtrain import Sequential, emit
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.layers import CenterCrop, Conv2D, Dense, Flatten, Input, Layer, RandomCrop, Resizing

FIXTURES = Path(__file__).parent / "data" / "keras_augmentation"


def keras_cases(name: str) -> dict[str, dict[str, np.ndarray]]:
    """The fixture file's cases: id -> {"x", "y", "config", ...} (config: {"class_name", "config"})."""
    with np.load(FIXTURES / f"{name}.npz") as data:
        cases: dict[str, dict] = {}
        for key in data.files:
            case, field = key.rsplit(".", 1)
            cases.setdefault(case, {})[field] = json.loads(str(data[key])) if field == "config" else data[key]
    return cases


RESIZING = keras_cases("resizing")


def keras_layer(case: dict) -> Layer:
    """The onnxtrain layer of a fixture; Keras' `smart_resize` is what RandomCrop computes outside training."""
    spec = case["config"]
    if spec["class_name"] == "smart_resize":
        return RandomCrop(**spec["config"])
    return Layer.registry[spec["class_name"]](**spec["config"])


@pytest.mark.parametrize("case_id", sorted(RESIZING))
def test_the_forward_matches_keras(case_id):
    case = RESIZING[case_id]
    model = Sequential.of(Input(*case["x"].shape[1:]), keras_layer(case))
    y = forward(model, case["x"])
    assert y.shape == case["y"].shape
    np.testing.assert_allclose(y, case["y"], rtol=1e-5, atol=1e-5)  # measured: at most 2.6e-6 (bicubic down)


def test_the_fixtures_cover_every_interpolation_and_both_aspect_ratio_modes():
    configs = [case["config"] for case in RESIZING.values()]
    resizing = [c["config"] for c in configs if c["class_name"] == "Resizing"]
    assert {c.get("interpolation", "bilinear") for c in resizing} == {"bilinear", "nearest", "bicubic"}
    assert any(c.get("crop_to_aspect_ratio") for c in resizing) and any(c.get("pad_to_aspect_ratio") for c in resizing)
    assert sum(c["class_name"] == "CenterCrop" for c in configs) >= 3


def center(x: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
    return x[:, top : top + height, left : left + width]


CASES = [
    LayerCase("resizing_bilinear", lambda: Resizing(5, 3), (4, 6, 2), (5, 3, 2), 0),
    LayerCase("resizing_nearest", lambda: Resizing(3, 7, interpolation="nearest"), (6, 5, 2), (3, 7, 2), 0),
    LayerCase("resizing_bicubic", lambda: Resizing(7, 4, interpolation="bicubic"), (5, 6, 1), (7, 4, 1), 0),
    LayerCase("resizing_crop", lambda: Resizing(3, 3, crop_to_aspect_ratio=True), (4, 6, 2), (3, 3, 2), 0),
    LayerCase(
        "resizing_pad", lambda: Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=1.0), (3, 5, 2), (4, 4, 2), 0
    ),
    LayerCase("resizing_same_size", lambda: Resizing(4, 5), (4, 5, 2), (4, 5, 2), 0, lambda _, x: x),
    LayerCase("center_crop", lambda: CenterCrop(3, 2), (6, 5, 2), (3, 2, 2), 0, lambda _, x: center(x, 3, 2)),
    LayerCase("center_crop_smaller", lambda: CenterCrop(5, 5), (4, 6, 1), (5, 5, 1), 0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_structure_and_reference(case: LayerCase):
    check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_layer_trains_and_exports(case: LayerCase, engine: str, tmp_path):
    check_training_and_export(case, tmp_path, engine)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient_through_the_layer_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_channels_first_input_gives_the_channels_last_output(case: LayerCase):
    x = np.random.default_rng(0).normal(size=(3, *case.input_shape)).astype(np.float32)
    plain = Sequential.of(Input(*case.input_shape), case.make())
    moved = Sequential.of(Input(*case.input_shape), ToChannelsFirst(), case.make())
    np.testing.assert_allclose(forward(moved, x), forward(plain, x), rtol=1e-6, atol=1e-6)


def test_the_layers_apply_in_every_graph_and_the_export(tmp_path):
    case = RESIZING["bilinear_down"]
    model = Sequential.of(Input(*case["x"].shape[1:]), keras_layer(case))
    for training in (False, True):
        graph = emit.loss_model(model.layers, "mse", training=training)
        assert any(node.op_type == "Resize" for node in graph.graph.node), training
    model.export(tmp_path / "model.onnx")
    from onnxtrain import InferenceModel

    np.testing.assert_allclose(
        InferenceModel.load(tmp_path / "model.onnx").predict(case["x"]), case["y"], rtol=1e-5, atol=1e-5
    )


@pytest.mark.training
@pytest.mark.parametrize("interpolation", ["nearest", "bicubic", "bilinear"])
def test_ort_training_trains_through_a_resizing_after_a_convolution_or_refuses_clearly(interpolation):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, size=(40, 8, 8, 1)).astype(np.float32), rng.integers(0, 2, 40)
    layers = [Input(8, 8, 1), Conv2D(2, 3), Resizing(5, 7, interpolation), Flatten(), Dense(2, activation="linear")]
    with Sequential(layers, seed=1) as model:
        compile_model = partial(model.compile, optimizer="adam", loss="sparse_categorical_crossentropy")
        if interpolation == "bilinear":  # Resize's gradient: ONNX Runtime training has no CPU kernel for ResizeGrad
            with pytest.raises(UnsupportedError, match=r"no cpu kernel for ResizeGrad .*engine='portable'"):
                compile_model(engine="ort-training")
            return
        compile_model(engine="ort-training")
        losses = model.fit(x, y, epochs=3, batch_size=10, verbose=0).history["loss"]
        assert losses[-1] < losses[0], losses


def test_keras_configs_load():
    keras_config = {
        "name": "resizing",
        "trainable": True,
        "height": 4,
        "width": 5,
        "interpolation": "nearest",
        "crop_to_aspect_ratio": False,
        "pad_to_aspect_ratio": False,
        "fill_mode": "constant",
        "fill_value": 0.0,
        "antialias": False,
        "data_format": "channels_last",
    }
    layer = Layer.from_config({"class_name": "Resizing", "config": keras_config})
    assert (layer.height, layer.width, layer.interpolation) == (4, 5, "nearest")
    crop = Layer.from_config({"class_name": "CenterCrop", "config": {"height": 2, "width": 3, "data_format": None}})
    assert crop.get_config() == {"height": 2, "width": 3, "name": None, "trainable": True}


BAD = [
    (
        lambda: Resizing(0, 4),
        InvalidArgumentError,
        r"Resizing\(height=...\) expects a positive int. Received: height=0",
    ),
    (lambda: Resizing(4, 2.5), InvalidArgumentError, r"Received: width=2.5"),
    (
        lambda: Resizing(4, 4, interpolation="lanczos3"),
        UnsupportedError,
        r"Resizing\(interpolation='lanczos3'\) is not supported: onnxtrain resizes with "
        r"\['bilinear', 'nearest', 'bicubic'\]",
    ),
    (
        lambda: Resizing(4, 4, interpolation="area"),
        InvalidArgumentError,
        r"expects one of \['bilinear', 'nearest', 'bicubic'\]. Received: interpolation='area'",
    ),
    (lambda: Resizing(4, 4, antialias=True), UnsupportedError, r"Resizing\(antialias=True\) is not supported"),
    (
        lambda: Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True),
        InvalidArgumentError,
        r"at most one of crop_to_aspect_ratio and pad_to_aspect_ratio",
    ),
    (
        lambda: Resizing(4, 4, crop_to_aspect_ratio=1),
        InvalidArgumentError,
        r"crop_to_aspect_ratio=...\) expects a bool",
    ),
    (lambda: Resizing(4, 4, fill_mode="reflect"), UnsupportedError, r"takes 'constant' only.*fill_mode='reflect'"),
    (lambda: Resizing(4, 4, fill_value=float("nan")), InvalidArgumentError, r"Received: fill_value=nan"),
    (lambda: Resizing(4, 4, data_format="channels_first"), UnsupportedError, r"data_format='channels_first'"),
    (lambda: CenterCrop(3, -1), InvalidArgumentError, r"CenterCrop\(width=...\) expects a positive int"),
    (lambda: CenterCrop(3, 3, size=2), InvalidTypeError, r"unexpected keyword argument 'size'"),
    (
        lambda: Sequential.of(Input(8, 3), Resizing(4, 4)),
        ShapeError,
        r"Resizing layer '\w+' expects images of shape \[None, height, width, channels\]. "
        r"Received: input shape \[None, 8, 3\]",
    ),
    (lambda: Sequential.of(Input(8, 8), CenterCrop(4, 4)), ShapeError, r"CenterCrop layer '\w+' expects images"),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
