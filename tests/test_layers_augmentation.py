"""The random augmentation layers and their shared sampler: `_image_sampling.affine_transform` against Keras 3's
`ops.image.affine_transform` for every fill mode and interpolation, and as a linear map its autodiff gradient is the
adjoint; the layers in training against Keras 3 where a range of one value fixes the draw, and against the
documented draws (a numpy twin of the hash) otherwise; the identity outside training (predict, evaluate, the
export); reproducible draws per (seed, name, step, image); a CNN that trains with them on the portable engine, which
ort-training refuses by the layer's name; configs and bad arguments. Fixtures: tools/keras_augmentation_fixtures.py.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from layer_harness import LayerCase, ToChannelsFirst, check_reference, check_resumed_fit, check_training_and_export
from test_layers_resizing import keras_cases

from onnxtrain import InferenceModel, Sequential, autodiff
from onnxtrain.errors import InvalidArgumentError, PortableEngineOnlyError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    Conv2D,
    Dense,
    Flatten,
    Input,
    Layer,
    MaxPooling2D,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
)
from onnxtrain.layers import _dropout as spec
from onnxtrain.layers._image_sampling import affine_transform
from onnxtrain.layers._layout import channels_last, emit_layer
from onnxtrain.portable._graphs import ParameterInputBuilder

AFFINE = keras_cases("affine_transform")
FIXED = keras_cases("layers_fixed")


# --- the sampler ---------------------------------------------------------------------------------------------
def sampler_session(shape: tuple[int, int, int], gradient: bool = False, **arguments) -> ort.InferenceSession:
    """A graph of `affine_transform` over inputs "x" (N, *shape) and "transform" (N, 8); with `gradient`, also
    "loss" = sum(y * weights) (input "weights", like y) and its gradient "x_grad"."""
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (None, *shape))
    transform = b.add_input("transform", np.float32, (None, 8))
    sampled = affine_transform(b, b.node("Transpose", [x], perm=[0, 3, 1, 2]), transform, shape, **arguments)
    y = b.node("Transpose", [sampled], perm=[0, 2, 3, 1])  # channels first, as the sampler computes
    b.add_output(y, "y", np.float32, (None, *shape))
    if gradient:
        weights = b.add_input("weights", np.float32, (None, *shape))
        b.add_output(b.reduce("ReduceSum", b.node("Mul", [y, weights]), None, keepdims=False), "loss", np.float32, ())
    model = b.build()
    if gradient:
        model = autodiff.gradients(model, ["x"])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case_id", sorted(AFFINE))
def test_the_sampler_matches_keras_affine_transform(case_id):
    case = AFFINE[case_id]
    session = sampler_session(case["x"].shape[1:], **case["config"]["config"])
    (y,) = session.run(["y"], {"x": case["x"], "transform": case["transform"]})
    np.testing.assert_allclose(y, case["y"], rtol=1e-5, atol=1e-5)  # measured: at most 2.4e-7 (bilinear), 0 (nearest)


def test_the_sampler_fixtures_cover_every_fill_mode_and_interpolation():
    pairs = {(c["config"]["config"]["interpolation"], c["config"]["config"]["fill_mode"]) for c in AFFINE.values()}
    assert pairs == {(i, f) for i in ("nearest", "bilinear") for f in ("reflect", "wrap", "constant", "nearest")}


@pytest.mark.parametrize("case_id", sorted(AFFINE))
def test_the_sampler_passes_back_its_adjoint(case_id):
    # The sample is affine in x (linear, plus the fill in "constant" mode): the gradient of sum(y * w) at pixel i of
    # image n is loss(basis image e_i) - loss(0) under image n's transform and weights.
    case = AFFINE[case_id]
    x, transform = case["x"][:3, :4, :5], case["transform"][[1, 5, 6]]  # a smaller image, three transforms
    shape = x.shape[1:]
    session = sampler_session(shape, gradient=True, **case["config"]["config"])
    weights = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    (gradient,) = session.run(["x_grad"], {"x": x, "transform": transform, "weights": weights})
    size = math.prod(shape)
    basis = np.concatenate([np.eye(size, dtype=np.float32), np.zeros((1, size), np.float32)]).reshape(-1, *shape)
    for n in range(len(x)):
        rows = np.repeat(transform[n : n + 1], len(basis), axis=0)
        per_image = np.repeat(weights[n : n + 1], len(basis), axis=0)
        (sampled,) = session.run(["y"], {"x": basis, "transform": rows, "weights": per_image})
        losses = (sampled * per_image).reshape(len(basis), -1).sum(axis=1)
        np.testing.assert_allclose(gradient[n].reshape(-1), losses[:-1] - losses[-1], rtol=1e-5, atol=1e-5)


# --- the layers' draws -----------------------------------------------------------------------------------------
def scramble(v: np.ndarray | int, constants: tuple[int, ...]) -> np.ndarray:
    v = (np.asarray(v, np.int64) * spec.MULTIPLIER + constants[0]) % spec.P
    for c in constants[1:]:
        v = (v * v + c) % spec.P
    return v


def draws(name: str, seed: int | None, step: int, n: int, count: int, per_image: bool = True) -> np.ndarray:
    """The layers' uniform draws in numpy (the docstrings of `_dropout.py` and `_augmentation.py`): float32
    (n or 1, count) in [0, 1)."""
    step_key = scramble(step % spec.P + spec.layer_key(name, seed), spec.STEP)
    row = scramble((np.arange(n) if per_image else np.zeros(1, np.int64)) + step_key, spec.ROW) % spec.Q
    local = scramble(np.arange(count), spec.LOCAL) % spec.Q
    key = row[:, None] + local[None, :]
    return ((key * key % spec.P) // 128).astype(np.float32) * np.float32(2.0**-24)


def between(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return u * np.float32(high - low) + np.float32(low)  # float32, as the graph computes it


def training_graph(layers: list[Layer], shape: tuple[int, ...], with_loss: bool = False) -> onnx.ModelProto:
    """The portable engine's training forward of `layers` after an Input of `shape`: inputs "input" and "step",
    output "y"; `with_loss`: also input "weights" (like y) and output "loss" = sum(y * weights)."""
    Sequential.of(Input(*shape), *layers)
    b = ParameterInputBuilder({}, 17, 8, training=True)
    value = b.add_input("input", np.float32, (None, *shape))
    for layer in layers:
        value = emit_layer(b, layer, value)
    output_shape = layers[-1].output_shape
    assert output_shape is not None
    y = b.add_output(channels_last(b, value, len(output_shape) + 1), "y", np.float32, (None, *output_shape))
    if with_loss:
        weights = b.add_input("weights", np.float32, (None, *output_shape))
        b.add_output(b.reduce("ReduceSum", b.node("Mul", [y, weights]), None, keepdims=False), "loss", np.float32, ())
    return b.build()


def training_forward(layers: list[Layer], x: np.ndarray, steps: list[int]) -> list[np.ndarray]:
    """The training graph's output of `layers` (after an Input) for `x` at each step."""
    graph = training_graph(layers, x.shape[1:])
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    feeds = [{"input": x, "step": np.array(step, np.int64)} for step in steps]
    return [session.run(None, {k: v for k, v in feed.items() if k in inputs})[0] for feed in feeds]


def images(n: int, shape: tuple[int, ...] = (6, 7, 2), low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.random.default_rng(n).uniform(low, high, size=(n, *shape)).astype(np.float32)


@pytest.mark.parametrize("case_id", sorted(FIXED))
def test_a_layer_with_a_fixed_draw_matches_keras_in_training(case_id):
    # factor=(a, a): Keras' draw is a, and so is this one, whatever the hash.
    case = FIXED[case_id]
    layer = Layer.registry[case["config"]["class_name"]](**case["config"]["config"])
    (y,) = training_forward([layer], case["x"], [7])
    np.testing.assert_allclose(y, case["y"], rtol=1e-5, atol=1e-5)  # measured: at most 2.4e-7


def test_random_flip_flips_the_images_drawn_and_leaves_the_others():
    x = images(300, (4, 5, 1))
    for mode, axes in (("horizontal", (2,)), ("vertical", (1,)), ("horizontal_and_vertical", (1, 2))):
        (y,) = training_forward([RandomFlip(mode, name="flip")], x, [3])
        flipped = draws("flip", None, 3, len(x), 1)[:, 0] <= 0.5  # Keras: uniform <= 0.5
        np.testing.assert_array_equal(y[flipped], np.flip(x[flipped], axis=axes))
        np.testing.assert_array_equal(y[~flipped], x[~flipped])
        assert abs(flipped.mean() - 0.5) < 4 * math.sqrt(0.25 / len(x)), flipped.mean()


def rotation_rows(degrees: np.ndarray, height: int, width: int) -> np.ndarray:
    """Keras' rotation rows (its `_compute_affine_matrix`) for angles in degrees."""
    theta = degrees.astype(np.float64) * np.pi / 180
    cos, sin = np.cos(theta), np.sin(theta)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zero = np.zeros_like(cos)
    return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, zero, zero], 1)


def sampled(x: np.ndarray, rows: np.ndarray, **arguments) -> np.ndarray:
    session = sampler_session(x.shape[1:], **arguments)
    return session.run(["y"], {"x": x, "transform": rows.astype(np.float32)})[0]


def test_random_rotation_turns_each_image_by_its_drawn_angle():
    x = images(5)
    layer = RandomRotation((-0.2, 0.3), fill_mode="constant", fill_value=0.5, seed=4, name="turn")
    (y,) = training_forward([layer], x, [11])
    degrees = between(draws("turn", 4, 11, len(x), 1)[:, 0], -0.2 * 360, 0.3 * 360)
    assert np.all((-72 <= degrees) & (degrees < 108)) and np.ptp(degrees) > 10
    expected = sampled(x, rotation_rows(degrees, 6, 7), fill_mode="constant", fill_value=0.5)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_random_translation_shifts_each_image_by_its_drawn_fractions():
    x = images(5)
    (y,) = training_forward([RandomTranslation(0.3, (-0.1, 0.2), fill_mode="wrap", name="shift")], x, [2])
    u = draws("shift", None, 2, len(x), 2)
    dy, dx = between(u[:, 0], -0.3, 0.3) * np.float32(6), between(u[:, 1], -0.1, 0.2) * np.float32(7)
    one, zero = np.ones(len(x)), np.zeros(len(x))
    rows = np.stack([one, zero, -dx, zero, one, -dy, zero, zero], 1)
    np.testing.assert_allclose(y, sampled(x, rows, fill_mode="wrap"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("width_factor", [None, (0.1, 0.5)])
def test_random_zoom_zooms_each_image_by_its_drawn_factors(width_factor):
    x = images(5)
    (y,) = training_forward([RandomZoom(0.4, width_factor, interpolation="nearest", name="zoom")], x, [5])
    u = draws("zoom", None, 5, len(x), 2)
    zoom_y = between(u[:, 0], 0.6, 1.4)
    zoom_x = zoom_y if width_factor is None else between(u[:, 1], 1.1, 1.5)
    zero = np.zeros(len(x))
    rows = np.stack([zoom_x, zero, 3 * (1 - zoom_x), zero, zoom_y, 2.5 * (1 - zoom_y), zero, zero], 1)
    np.testing.assert_allclose(y, sampled(x, rows, interpolation="nearest", fill_mode="reflect"), atol=1e-5)


def test_random_contrast_matches_its_formula_at_the_drawn_factor():
    x = images(6, low=0, high=255)
    (y,) = training_forward([RandomContrast(0.5, name="contrast")], x, [1])
    factor = between(draws("contrast", None, 1, len(x), 1)[:, 0], 1.0, 1.5)  # Keras 3: a number f is (0, f)
    mean = x.mean(axis=(1, 2), keepdims=True)
    expected = np.clip((x - mean) * factor[:, None, None, None] + mean, 0, 255)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-3)
    (both_ways,) = training_forward([RandomContrast((0.5, 0.5), value_range=(-1e4, 1e4), name="c")], x, [1])
    factor = between(draws("c", None, 1, len(x), 1)[:, 0], 0.5, 1.5)
    np.testing.assert_allclose(both_ways, (x - mean) * factor[:, None, None, None] + mean, rtol=1e-5, atol=1e-3)


def test_random_brightness_matches_its_formula_at_the_drawn_delta():
    x = images(6, low=0, high=1)
    (y,) = training_forward([RandomBrightness(0.2, value_range=(1, 0), name="light")], x, [4])
    delta = between(draws("light", None, 4, len(x), 1)[:, 0], -0.2, 0.2)
    np.testing.assert_allclose(y, np.clip(x + delta[:, None, None, None], 0, 1), rtol=1e-6, atol=1e-6)


def test_random_crop_takes_one_drawn_window_for_the_whole_batch():
    x = images(4, (9, 8, 2))
    steps = list(range(8))
    offsets = set()
    for step, y in zip(steps, training_forward([RandomCrop(4, 6, name="crop")], x, steps), strict=True):
        bits = draws("crop", None, step, 1, 2, per_image=False)[0] * 2**24
        top, left = (int(b) * room // 2**24 for b, room in zip(bits, (6, 3), strict=True))  # Keras: int(u * room)
        np.testing.assert_array_equal(y, x[:, top : top + 4, left : left + 6])
        offsets.add((top, left))
    assert len(offsets) > 2, offsets


def test_the_draws_differ_by_step_image_and_seed_and_repeat_for_the_same_ones():
    x = np.zeros((64, 4, 4, 3), np.float32)
    wide = (-1000, 1000)  # no clipping: y is the draw times 2000
    first, second, again = training_forward([RandomBrightness(0.5, wide, seed=1, name="b")], x, [0, 1, 0])
    (other_seed,) = training_forward([RandomBrightness(0.5, wide, seed=2, name="b")], x, [0])
    (other_name,) = training_forward([RandomBrightness(0.5, wide, seed=1, name="c")], x, [0])
    np.testing.assert_array_equal(first, again)
    deltas = [y[:, 0, 0, 0] for y in (first, second, other_seed, other_name)]
    assert len(np.unique(deltas[0])) == len(x)  # every image its own draw
    for other in deltas[1:]:
        assert not np.any(other == deltas[0])
    assert np.all(first == first[:, :1, :1, :1])  # one draw per image, for all its pixels and channels


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomFlip(),
        lambda: RandomContrast((0.3, 0.5), value_range=(-100, 100)),  # no clipping: linear in the images
        lambda: RandomBrightness(0.2, value_range=(-100, 100)),
        lambda: RandomCrop(4, 3),
        lambda: RandomRotation(0.3, fill_mode="constant"),
        lambda: RandomTranslation(0.3, 0.2, fill_mode="wrap", interpolation="nearest"),
        lambda: RandomZoom(0.3, fill_mode="reflect"),
    ],
)
def test_the_training_gradient_through_an_augmentation_matches_finite_differences(make):
    # Each layer is linear in the images at a given step (its draws do not depend on them), so central differences
    # with a wide step are exact but for float32 rounding.
    x = images(3, (6, 5, 2))
    graph = autodiff.gradients(training_graph([make()], x.shape[1:], with_loss=True), ["input"])
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    output = session.get_outputs()[0].shape
    weights = np.random.default_rng(1).normal(size=(len(x), *output[1:])).astype(np.float32)
    feed = {"step": np.array(5, np.int64), "weights": weights}
    (gradient,) = session.run(["input_grad"], {**feed, "input": x})
    assert np.abs(gradient).max() > 0.1

    def loss(values: np.ndarray) -> float:
        return float(session.run(["loss"], {**feed, "input": values})[0])

    for flat in np.random.default_rng(2).choice(x.size, 16, replace=False):
        index = np.unravel_index(flat, x.shape)
        up, down = x.copy(), x.copy()
        up[index] += 1.0
        down[index] -= 1.0
        np.testing.assert_allclose(gradient[index], (loss(up) - loss(down)) / 2, atol=1e-4, err_msg=str(index))


@pytest.mark.slow
def test_a_resumed_run_draws_the_same_augmentations(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1, size=(40, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 40)

    def compiled() -> Sequential:
        model = Sequential.of(
            Input(6, 6, 1),
            RandomFlip(),
            RandomRotation(0.2),
            RandomZoom(0.2),
            RandomContrast(0.3, value_range=(0, 1)),
            Flatten(),
            Dense(3, activation="linear"),
            seed=4,
        )
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
        return model

    check_resumed_fit(compiled, x, y, tmp_path)


# --- outside training ------------------------------------------------------------------------------------------
def identity(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x


def cropped(layer: Layer, x: np.ndarray) -> np.ndarray:
    top, left = (x.shape[1] - layer.height) // 2, (x.shape[2] - layer.width) // 2  # a crop of the aspect ratio
    return x[:, top : top + layer.height, left : left + layer.width]


def case(case_id, make, shape, output_shape=None, reference=identity) -> LayerCase:
    """A harness row: no weights; trains=False, as a random-label fit through augmentations need not improve in 3
    epochs (test_a_small_cnn_with_augmentations_learns checks learning)."""
    return LayerCase(case_id, make, shape, output_shape or shape, 0, reference, trains=False)


CASES = [
    case("random_flip", lambda: RandomFlip(), (4, 5, 2)),
    case("random_flip_vertical", lambda: RandomFlip("vertical", seed=3), (4, 5, 1)),
    case("random_rotation", lambda: RandomRotation(0.1), (5, 5, 2)),
    case(
        "random_rotation_constant",
        lambda: RandomRotation((-0.2, 0.1), fill_mode="constant", interpolation="nearest", seed=1, fill_value=0.5),
        (5, 6, 1),
    ),
    case("random_translation", lambda: RandomTranslation(0.2, 0.3), (6, 5, 2)),
    case("random_zoom", lambda: RandomZoom(0.3), (5, 6, 2)),
    case("random_zoom_width", lambda: RandomZoom((-0.2, 0.1), 0.4, "wrap"), (5, 6, 1)),
    case("random_contrast", lambda: RandomContrast(0.4), (4, 4, 3)),
    case("random_brightness", lambda: RandomBrightness((-0.1, 0.3), (-2, 2)), (4, 4, 3)),
    case("random_crop", lambda: RandomCrop(4, 2), (7, 5, 2), (4, 2, 2), None),  # Keras' smart_resize: see above
    case("random_crop_same_aspect", lambda: RandomCrop(3, 3), (5, 5, 1), (3, 3, 1), None),
    case("random_crop_no_room", lambda: RandomCrop(4, 3), (6, 3, 1), (4, 3, 1), cropped),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_structure_and_inference_graph(case: LayerCase):
    check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_layer_trains_and_exports(case: LayerCase, engine: str, tmp_path):
    check_training_and_export(case, tmp_path, engine)


@pytest.mark.parametrize("case", [c for c in CASES if c.reference is identity], ids=lambda c: c.id)
def test_outside_training_the_layer_is_the_identity_and_absent_from_the_export(case: LayerCase, tmp_path):
    x = images(8, case.input_shape, 0, 1)
    y = np.random.default_rng(0).integers(0, 2, len(x))
    layer = case.make()
    with Sequential.of(Input(*case.input_shape), layer, Flatten(), Dense(2, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
        weights = model.get_weights()
        logits = x.reshape(len(x), -1) @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        np.testing.assert_allclose(model.predict_softly(x), softmax(logits), rtol=1e-5, atol=1e-6)
        evaluated = model.evaluate(x, y, return_dict=True)["loss"]
        expected = -np.log(softmax(logits)[np.arange(len(x)), y]).mean()
        np.testing.assert_allclose(evaluated, expected, rtol=1e-4)
        model.export(tmp_path / "model.onnx")
    exported = onnx.load(tmp_path / "model.onnx")
    assert not [n.name for n in exported.graph.node if n.name.startswith(f"{layer.name}.")]
    trained = training_graph([case.make()], case.input_shape)  # named as in the model: the first of its class
    assert [n.name for n in trained.graph.node if n.name.startswith(f"{layer.name}.")]
    np.testing.assert_allclose(
        InferenceModel.load(tmp_path / "model.onnx").predict_softly(x), softmax(logits), atol=1e-6
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomFlip(name="a"),
        lambda: RandomContrast((0.2, 0.6), name="a"),
        lambda: RandomBrightness(0.3, value_range=(-2, 2), name="a"),
        lambda: RandomCrop(3, 4, name="a"),
        lambda: RandomRotation(0.3, name="a"),
    ],
)
def test_a_channels_first_input_gets_the_channels_last_augmentation(make):
    x = images(6, (5, 6, 2))
    (plain,) = training_forward([make()], x, [9])
    (moved,) = training_forward([ToChannelsFirst(), make()], x, [9])
    np.testing.assert_allclose(moved, plain, rtol=1e-6, atol=1e-6)


# --- training ----------------------------------------------------------------------------------------------------
def bright_squares(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """8x8 pixels in [0, 255]; class 1 has a bright centered square, which flips and small turns keep."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 60, size=(n, 8, 8, 1)).astype(np.float32)
    x[y == 1, 2:6, 2:6] += 150
    return x, y


def augmented_cnn() -> Sequential:
    return Sequential.of(
        Input(8, 8, 1),
        RandomFlip(),
        RandomRotation(0.1),
        Rescaling(1 / 255),
        Conv2D(4, 3),
        MaxPooling2D(2),
        Flatten(),
        Dense(2, activation="linear"),
        seed=1,
    )


@pytest.mark.slow
def test_a_small_cnn_with_augmentations_learns():
    x, y = bright_squares()
    with augmented_cnn() as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], engine="portable")
        history = model.fit(x, y, epochs=5, batch_size=20, verbose=0).history
        assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
        assert model.evaluate(x, y, return_dict=True)["accuracy"] > 0.9


@pytest.mark.slow
def test_a_trainable_layer_before_the_augmentations_learns_through_them():
    x, y = bright_squares()
    model = Sequential.of(
        Input(8, 8, 1),
        Rescaling(1 / 255),
        Conv2D(2, 3),
        RandomTranslation(0.1, 0.1),
        RandomZoom(0.1),
        RandomCrop(5, 5),
        Flatten(),
        Dense(2, activation="linear"),
        seed=2,
    )
    with model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
        before = model.get_weights()["conv2d_1.kernel"].copy()
        losses = model.fit(x, y, epochs=4, batch_size=20, verbose=0).history["loss"]
        assert losses[-1] < losses[0], losses
        assert not np.array_equal(model.get_weights()["conv2d_1.kernel"], before)


@pytest.mark.training
def test_the_ort_training_engine_refuses_the_random_layers_by_name():
    with (
        augmented_cnn() as model,
        pytest.raises(PortableEngineOnlyError, match=r"ort-training engine cannot train this model: random_flip_1 "),
    ):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="ort-training")


# --- arguments ---------------------------------------------------------------------------------------------------
def test_configs_round_trip_and_keras_configs_load():
    keras_rotation = {
        "name": "random_rotation",
        "trainable": True,
        "factor": [-0.2, 0.2],
        "data_format": "channels_last",
        "fill_mode": "reflect",
        "fill_value": 0.0,
        "interpolation": "bilinear",
        "seed": None,
    }
    layer = Layer.from_config({"class_name": "RandomRotation", "config": keras_rotation})
    assert layer.factor == (-0.2, 0.2) and layer.get_config()["factor"] == [-0.2, 0.2]
    contrast = Layer.from_config({"class_name": "RandomContrast", "config": {"factor": [0, 0.2], "seed": 3}})
    assert contrast.contrast_range() == (1.0, 1.2) == RandomContrast(0.2).contrast_range()
    zoom = RandomZoom(0.2)
    assert Layer.from_config(zoom.serialize()).get_config() == zoom.get_config()
    assert zoom.get_config()["width_factor"] is None


def test_an_assigned_factor_is_checked_and_used():
    layer = RandomRotation(0.1)
    layer.factor = [0.2, 0.3]
    assert layer.factor == (0.2, 0.3)
    with pytest.raises(InvalidArgumentError, match=r"Setting factor of RandomRotation layer: .*Received: factor=2"):
        layer.factor = 2


BAD = [
    (
        lambda: RandomRotation(1.5),
        InvalidArgumentError,
        r"RandomRotation\(factor=...\) expects a number or a pair \(lower, upper\) of numbers in \[-1, 1\]. "
        r"Received: factor=1.5",
    ),
    (lambda: RandomRotation((0.1, 0.2, 0.3)), InvalidArgumentError, r"Received: factor=\(0.1, 0.2, 0.3\)"),
    (lambda: RandomRotation("0.1"), InvalidArgumentError, r"Received: factor='0.1'"),
    (lambda: RandomRotation(0.1, fill_mode="mirror"), InvalidArgumentError, r"fill_mode=...\) expects one of \["),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), InvalidArgumentError, r"\['nearest', 'bilinear'\]"),
    (lambda: RandomRotation(0.1, seed=-1), InvalidArgumentError, r"RandomRotation\(seed=...\) expects None or an int"),
    (lambda: RandomRotation(0.1, fill_value=float("inf")), InvalidArgumentError, r"Received: fill_value=inf"),
    (lambda: RandomTranslation(0.1, (-1.5, 0)), InvalidArgumentError, r"RandomTranslation\(width_factor=...\)"),
    (lambda: RandomTranslation(0.1), TypeError, r"width_factor"),
    (
        lambda: RandomZoom(-1.0),
        InvalidArgumentError,
        r"RandomZoom\(height_factor=...\) expects .* in \(-1, 1\]. Received: height_factor=-1.0",
    ),
    (lambda: RandomZoom(0.2, (0.1, -1)), InvalidArgumentError, r"Received: width_factor=\(0.1, -1\)"),
    (lambda: RandomContrast(-0.1), InvalidArgumentError, r"RandomContrast\(factor=...\) .* in \[0, 1\]"),
    (lambda: RandomContrast(0.1, value_range=(255, 0)), InvalidArgumentError, r"expects low < high"),
    (lambda: RandomContrast(0.1, value_range=3), InvalidArgumentError, r"expects a pair \(low, high\)"),
    (lambda: RandomBrightness(1.2), InvalidArgumentError, r"RandomBrightness\(factor=...\).*Received: factor=1.2"),
    (
        lambda: RandomBrightness(0.1, value_range=(0, "x")),
        InvalidArgumentError,
        r"of finite numbers. Received: value_range=\(0, 'x'\)",
    ),
    (lambda: RandomFlip("diagonal"), InvalidArgumentError, r"RandomFlip\(mode=...\) expects one of \['horizontal'"),
    (lambda: RandomCrop(0, 3), InvalidArgumentError, r"RandomCrop\(height=...\) expects a positive int"),
    (lambda: RandomFlip(data_format="channels_first"), UnsupportedError, r"data_format='channels_first'"),
    (
        lambda: Sequential.of(Input(6, 6), RandomRotation(0.1)),
        ShapeError,
        r"RandomRotation layer '\w+' expects images of shape \[None, height, width, channels\]",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
