"""One rule for integer pixels wherever they enter (`onnxtrain._integer_pixels`): `Dataset(x, y, input_scale=...)`,
fit, evaluate, predict and `InferenceModel.predict` refuse integers outside [0, 255] at input_scale 1/255, and warn of
raw uint8, uint16 and int16 images at input_scale 1; in-range integers reach the model as numpy's x / 255."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from onnxtrain import Dataset, InferenceModel, Model, Sequential
from onnxtrain._integer_pixels import check_integer_pixels, check_pixel_range, rescales_raw_pixels
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import (
    Concatenate,
    Dense,
    Flatten,
    Input,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    Rescaling,
    Resizing,
)

PIXEL_DTYPES = [np.uint8, np.uint16, np.int16]
LABELS = np.array([0, 1, 0, 1])


def _pixels(dtype: Any, value: int = 200) -> np.ndarray:
    return np.full((4, 3), value, dtype)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A tiny classifier, compiled, at input_scale 1 and at 1/255, with an InferenceModel of each."""
    folder = tmp_path_factory.mktemp("pixels")
    found: dict[str, Any] = {}
    for name, scale in (("raw", 1.0), ("pixels", 1 / 255)):
        model = Sequential.of(Input(3), Dense(2), seed=0)
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        model.input_scale = scale
        found[name] = model
        found[f"{name} inference"] = InferenceModel.load(model.save(folder / name))
    yield found
    for model in found.values():
        model.close()


ENTRIES: list[tuple[str, Callable[[dict[str, Any], str, np.ndarray], Any]]] = [
    ("fit", lambda m, scale, x: m[scale].fit(x, LABELS, epochs=1, verbose=0)),
    ("fit Dataset", lambda m, scale, x: m[scale].fit(Dataset(x, LABELS), epochs=1, verbose=0)),
    ("evaluate", lambda m, scale, x: m[scale].evaluate(x, LABELS, verbose=0)),
    ("predict", lambda m, scale, x: m[scale].predict(x)),
    ("InferenceModel.predict", lambda m, scale, x: m[f"{scale} inference"].predict(x)),
    ("Dataset", lambda m, scale, x: Dataset(x, LABELS, input_scale={"raw": 1.0, "pixels": 1 / 255}[scale])),
]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", PIXEL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("enter", [row[1] for row in ENTRIES], ids=[row[0] for row in ENTRIES])
def test_raw_integer_images_are_warned_of_at_input_scale_1_wherever_they_enter(models, enter, dtype):
    with pytest.warns(UserWarning, match=rf"is {np.dtype(dtype).name} \(.*pixels .*\) and the \w+'s input_scale is 1"):
        enter(models, "raw", _pixels(dtype))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("enter", [row[1] for row in ENTRIES], ids=[row[0] for row in ENTRIES])
def test_integers_outside_0_255_are_refused_at_input_scale_1_255_wherever_they_enter(models, enter, dtype):
    x = _pixels(dtype)
    x[2, 1] = 1000 if dtype != np.int16 else -3
    with pytest.raises(InvalidArgumentError, match=rf"\[2, 1\]={x[2, 1]} \(dtype {np.dtype(dtype).name}\)"):
        enter(models, "pixels", x)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", PIXEL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_integers_in_range_reach_the_model_as_numpy_divides_them_by_255(models, dtype):
    x = np.arange(12).reshape(4, 3).astype(dtype) * 21
    scaled = x.astype(np.float32) / np.float32(255)  # the reference: what the loaders and `x / 255` make
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in range at 1/255: no warning, no refusal
        assert np.array_equal(Dataset(x, LABELS, input_scale=1 / 255).x, scaled)
        assert np.array_equal(models["pixels"].predict(x), models["pixels"].predict(scaled))
        inference = models["pixels inference"]
        assert np.array_equal(inference.predict_softly(x), inference.predict_softly(scaled))


def test_a_dataset_names_its_own_input_scale_and_fix():
    with pytest.raises(InvalidArgumentError, match=r"^x expects integer pixels in \[0, 255\]: the Dataset's input_sc"):
        Dataset(_pixels(np.uint16, 1000), LABELS, input_scale=1 / 255)
    with pytest.warns(UserWarning, match=r"give the Dataset input_scale=1 / 65535 \(integer x is then divided by"):
        Dataset(_pixels(np.uint16), LABELS, input_scale=1)


RULES = [  # dtype, scale, what the rule does: None (nothing), "warns" or "refuses"
    (np.uint8, 1.0, "warns"),
    (np.uint16, 1.0, "warns"),
    (np.int16, 1.0, "warns"),
    (np.int32, 1.0, None),  # integer features (counts, codes) more than images
    (np.int64, 1.0, None),
    (np.int8, 1.0, None),
    (np.uint16, 1 / 65535, None),  # 16-bit pixels at their own scale
    (np.uint16, 0.5, None),
    (np.uint16, 1 / 255, "refuses"),
    (np.int32, 1 / 255, "refuses"),
    (np.uint8, 1 / 255, None),  # always in range
]


@pytest.mark.parametrize(("dtype", "scale", "does"), RULES, ids=[f"{np.dtype(r[0]).name}@{r[1]:.3g}" for r in RULES])
def test_the_rule_by_dtype_and_scale(dtype, scale, does):
    x = _pixels(dtype, {np.uint8: 200, np.int8: 100}.get(dtype, 300))  # 300: outside [0, 255] where it fits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if does == "refuses":
            with pytest.raises(InvalidArgumentError, match=r"expects integer pixels in \[0, 255\]"):
                check_integer_pixels(x, scale, "x")
        else:
            check_integer_pixels(x, scale, "x")
    assert [str(w.message)[:5] for w in caught] == (["x is "] if does == "warns" else [])


@pytest.mark.slow
def test_the_warning_points_at_the_callers_line(models):
    with pytest.warns(UserWarning) as caught:
        models["raw inference"].predict(_pixels(np.int16))
    assert caught[0].filename == __file__


def test_a_range_check_costs_nothing_for_uint8_and_floats():
    check_pixel_range(np.full((2, 2), 255, np.uint8), 1 / 255, "x")  # returns: uint8 is always in range
    check_pixel_range(np.full((2, 2), 1e6, np.float32), 1 / 255, "x")  # floats are used as they are
    with pytest.raises(InvalidArgumentError, match=r"Received: x\[0, 0\]=256 \(dtype int64\)"):
        check_pixel_range(np.full((2, 2), 256, np.int64), np.float32(1 / 255).item(), "x")


OWN_SCALING = [  # the layers before Flatten and Dense; whether the model then scales raw pixels itself
    ("Rescaling(1/255) first", lambda: (Rescaling(1 / 255),), True),
    ("Rescaling to [-1, 1]", lambda: (Rescaling(1 / 127.5, offset=-1.0),), True),
    (
        "after layers that move values",
        lambda: (RandomFlip("horizontal", seed=0), Resizing(2, 2), Rescaling(1 / 255)),
        True,
    ),
    (
        "after layers that keep their value_range",
        lambda: (RandomBrightness(0.2, seed=0), RandomContrast(0.2, seed=0), Rescaling(1 / 255)),
        True,
    ),
    ("no Rescaling", lambda: (), False),
    ("a Rescaling that is no pixel scaling", lambda: (Rescaling(2.0),), False),
    ("after a layer that computes", lambda: (Dense(1), Rescaling(1 / 255)), False),
]


@pytest.mark.parametrize(("first", "rescales"), [r[1:] for r in OWN_SCALING], ids=[r[0] for r in OWN_SCALING])
def test_a_model_that_starts_by_rescaling_pixels_is_found_to_scale_raw_pixels_itself(first, rescales):
    with Sequential.of(Input(2, 2, 1), *first(), Flatten(), Dense(2), seed=0) as model:
        assert rescales_raw_pixels(model.graph) == [rescales]


@pytest.mark.parametrize("dtype", PIXEL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_raw_pixels_into_a_model_that_rescales_them_itself_are_not_warned_of(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_integer_pixels(_pixels(dtype), 1.0, "x", model_rescales=True)
    with pytest.warns(UserWarning, match=r"^x is "):
        check_integer_pixels(_pixels(dtype), 1.0, "x", model_rescales=False)
    with pytest.raises(InvalidArgumentError, match=r"expects integer pixels in \[0, 255\]"):  # its range rule stays
        check_integer_pixels(_pixels(np.int16, 300), 1 / 255, "x", model_rescales=True)


ENTRIES_OF_A_MODEL = ENTRIES[:4]  # fit, fit Dataset, evaluate, predict: what reads the model's own layers


@pytest.mark.parametrize("enter", [row[1] for row in ENTRIES_OF_A_MODEL], ids=[row[0] for row in ENTRIES_OF_A_MODEL])
def test_raw_pixels_are_not_warned_of_where_the_model_rescales_them_itself(enter):
    model = Sequential.of(Input(3), Rescaling(1 / 255), Dense(2), seed=0)
    model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
    with model, warnings.catch_warnings():
        warnings.simplefilter("error")
        enter({"raw": model}, "raw", _pixels(np.uint8))


def _image_and_meta(image_path: Callable[[Any], Any], meta_path: Callable[[Any], Any] = lambda x: x) -> Model:
    """A model of an image input (2, 2, 1) and a float `meta` input (2,), each through its own layers."""
    image, meta = Input(2, 2, 1, name="image"), Input(2, name="meta")
    joined = Concatenate()([Flatten()(image_path(image)), meta_path(meta)])
    return Model([image, meta], Dense(2, activation="linear")(joined), seed=0)


PER_INPUT = [  # the image input's layers, the meta input's; whether each input is rescaled by the model
    ("image rescaled", lambda x: Rescaling(1 / 255)(x), lambda x: x, [True, False]),
    (
        "image moved, then rescaled",
        lambda x: Rescaling(1 / 255)(RandomFlip("horizontal", seed=0)(x)),
        lambda x: x,
        [True, False],
    ),
    ("only meta rescaled", lambda x: x, lambda x: Rescaling(1 / 255)(x), [False, True]),
    ("image rescaled after a computing layer", lambda x: Rescaling(1 / 255)(Dense(1)(x)), lambda x: x, [False, False]),
    (
        "image rescaled inside a nested model",
        lambda x: Sequential.of(Input(2, 2, 1), RandomFlip("horizontal", seed=0), Rescaling(1 / 255))(x),
        lambda x: x,
        [True, False],
    ),
    (
        "image read raw beside its rescaling",
        lambda x: Concatenate()([Rescaling(1 / 255)(x), x]),
        lambda x: x,
        [True, False],
    ),
]


@pytest.mark.parametrize(("image", "meta", "rescales"), [r[1:] for r in PER_INPUT], ids=[r[0] for r in PER_INPUT])
def test_a_model_of_several_inputs_is_found_to_rescale_raw_pixels_per_input(image, meta, rescales):
    with _image_and_meta(image, meta) as model:
        assert rescales_raw_pixels(model.graph) == rescales


SEVERAL_INPUT_ENTRIES: list[tuple[str, Callable[[Model, dict[str, np.ndarray]], Any]]] = [
    ("fit", lambda model, x: model.fit(x, LABELS, epochs=1, verbose=0)),
    ("evaluate", lambda model, x: model.evaluate(x, LABELS, verbose=0)),
    ("predict", lambda model, x: model.predict(x)),
]


@pytest.mark.parametrize("enter", [r[1] for r in SEVERAL_INPUT_ENTRIES], ids=[r[0] for r in SEVERAL_INPUT_ENTRIES])
def test_raw_pixels_of_an_input_the_model_rescales_are_not_warned_of_beside_a_float_input(enter):
    x = {"image": np.full((4, 2, 2, 1), 200, np.uint8), "meta": np.full((4, 2), 0.5, np.float32)}
    rescaled = _image_and_meta(lambda image: Rescaling(1 / 255)(image))
    rescaled.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
    with rescaled, warnings.catch_warnings():
        warnings.simplefilter("error")
        enter(rescaled, x)
    raw = _image_and_meta(lambda image: image, lambda meta: Rescaling(1 / 255)(meta))  # the image's own path reads raw
    raw.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
    with raw, pytest.warns(UserWarning, match=r"^x\['image'\] is uint8 \(pixels 0-255\)"):
        enter(raw, x)
