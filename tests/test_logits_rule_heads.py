"""The "Logits" rule (README) for convolution heads and for values the last layers move or pool: a convolution left at
its default activation (KotlinDL's ReLU) is emitted linear under a loss on logits, as a Dense is, and so is such a
Dense or convolution whose values only Reshape, Flatten, Permute or a pooling carry to the output (`Conv2D(n, 1)` then
`GlobalAveragePooling2D()`); the reference is the same model with `activation="linear"`. An explicit ReLU stays. A
softmax that such layers carry keeps the rule's log-probabilities where its classes stay the last axis (Keras'
categorical cross-entropy of probabilities, in numpy, is the reference) and is refused where they do not."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential, emit, load_model, losses
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import (
    AveragePooling2D,
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    Dense,
    DepthwiseConv2D,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    Input,
    Layer,
    MaxPooling1D,
    Permute,
    Reshape,
    SeparableConv2D,
    TimeDistributed,
)
from onnxtrain.losses import BinaryCrossentropy, CategoricalCrossentropy, Loss, SparseCategoricalCrossentropy
from onnxtrain.optimizers import SGD

MARK = "[linear (logits)]"
Activation = str | None  # a head's activation argument: None leaves it out (KotlinDL's default, ReLU)


def given(activation: Activation) -> dict[str, str]:
    return {} if activation is None else {"activation": activation}


def exported(model: Model | Sequential, x: np.ndarray, tmp_path: Path, name: str) -> dict[str, np.ndarray]:
    path = model.export(tmp_path / f"{name}.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x}), strict=True))


def labels(loss: Loss | str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Labels for an output of per-example `shape` (batch first) under `loss`."""
    if isinstance(loss, BinaryCrossentropy):
        return (rng.random(shape) > 0.5).astype(np.float32)
    classes = rng.integers(0, shape[-1], size=shape[:-1])
    if isinstance(loss, SparseCategoricalCrossentropy) or loss == "sparse_categorical_crossentropy":
        return classes
    return np.eye(shape[-1], dtype=np.float32)[classes]


def assert_trains_as_linear(
    make: Callable[[Activation], Model | Sequential], input_shape: tuple[int, ...], loss: Loss | str, tmp_path: Path
) -> str:
    """`make(None)` (its head's activation not given) evaluates, takes an SGD step, predicts and exports as
    `make("linear")` does, from the same weights, with no warning, where `make("relu")` gives other logits; returns
    its summary."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, *input_shape)).astype(np.float32)
    with make(None) as model, make("linear") as linear, make("relu") as relu:
        linear.compile(optimizer=SGD(0.1), loss=loss)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # linear as meant: nothing to warn about
            model.compile(optimizer=SGD(0.1), loss=loss)
        start = {name: rng.normal(0, 0.5, w.shape).astype(np.float32) for name, w in linear.get_weights().items()}
        for each in (model, linear, relu):
            each.set_weights(start)
        reference = exported(linear, x, tmp_path, "linear")
        clamped = exported(relu, x, tmp_path, "relu")["logits"]  # the ReLU the rule leaves out
        assert not np.allclose(clamped, reference["logits"], atol=1e-3)
        outputs = exported(model, x, tmp_path, "model")
        assert set(outputs) == set(reference)
        for name, values in outputs.items():
            np.testing.assert_allclose(values, reference[name], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(model.predict_softly(x), linear.predict_softly(x), rtol=1e-5, atol=1e-6)
        # model(x) computes what the graphs do (`_model_prediction.call_on_data`): the logits, moved or pooled too
        np.testing.assert_allclose(np.asarray(model(x)), reference["logits"], rtol=1e-5, atol=1e-6)
        y = labels(loss, (len(x), *model.output_shape), rng)
        assert float(model.evaluate(x, y, batch_size=6)) == pytest.approx(float(linear.evaluate(x, y, batch_size=6)))
        assert float(model.train_on_batch(x, y)) == pytest.approx(float(linear.train_on_batch(x, y)), abs=1e-6)
        after = model.get_weights()
        for name, expected in linear.get_weights().items():
            np.testing.assert_allclose(after[name], expected, rtol=0, atol=1e-6, err_msg=name)
        return model.summary(print_fn=None)


def assert_marked(lines: list[str], labels: list[str]) -> None:
    """The summary `lines` mark the rows of `labels` alone, beside the label or on the next line."""
    assert sum(MARK in line for line in lines) == len(labels)
    for label in labels:
        (row,) = [i for i, line in enumerate(lines) if label in line]
        assert MARK in lines[row] or lines[row + 1].startswith(MARK), lines[row : row + 2]


# --- a last convolution left at its default activation ---------------------------------------------------------
# every convolution layer, KotlinDL's ReLU by default: name -> (layer of an activation argument, input shape)
CONVOLUTIONS: dict[str, tuple[Callable[[Activation], Layer], tuple[int, ...]]] = {
    "conv1d": (lambda a: Conv1D(3, 3, name="head", **given(a)), (6, 2)),
    "conv2d": (lambda a: Conv2D(3, 2, name="head", **given(a)), (4, 5, 2)),
    "conv3d": (lambda a: Conv3D(3, 2, name="head", **given(a)), (3, 4, 4, 2)),
    "conv1d_transpose": (lambda a: Conv1DTranspose(3, 3, strides=2, name="head", **given(a)), (5, 2)),
    "conv2d_transpose": (lambda a: Conv2DTranspose(3, 2, strides=2, name="head", **given(a)), (3, 4, 2)),
    "conv3d_transpose": (lambda a: Conv3DTranspose(3, 2, name="head", **given(a)), (2, 3, 3, 2)),
    "separable_conv2d": (lambda a: SeparableConv2D(3, 3, name="head", **given(a)), (4, 5, 2)),
    "depthwise_conv2d": (lambda a: DepthwiseConv2D(3, depth_multiplier=2, name="head", **given(a)), (4, 5, 2)),
}


@pytest.mark.parametrize("kind", list(CONVOLUTIONS))
def test_a_last_convolution_at_its_default_trains_as_a_linear_one(tmp_path, kind):
    layer, shape = CONVOLUTIONS[kind]
    summary = assert_trains_as_linear(
        lambda a: Sequential([Input(*shape), layer(a)]), shape, CategoricalCrossentropy(from_logits=True), tmp_path
    )
    assert_marked(summary.splitlines(), [f"head({type(layer(None)).__name__})"])


def test_model_call_of_a_compiled_per_position_head_gives_its_logits():
    x = np.random.default_rng(1).normal(size=(3, 6, 2)).astype(np.float32)
    with (
        Sequential([Input(6, 2), Conv1D(3, 1, name="head")], seed=0) as model,
        Sequential([Input(6, 2), Conv1D(3, 1, activation="linear", name="head")]) as linear,
    ):
        model.compile(loss="categorical_crossentropy")
        linear.set_weights(model.get_weights())
        logits = np.asarray(linear(x))
        assert (logits < 0).any()
        np.testing.assert_allclose(np.asarray(model(x)), logits, rtol=1e-5, atol=1e-6)


# --- a default head whose values the last layers move or pool ---------------------------------------------------
def nested_pooled_head(activation: Activation) -> Model:
    pixels = Input(4, 5, 2)
    inner = Input(4, 5, 3)
    head = Model(inner, GlobalAveragePooling2D()(Conv2D(3, 1, name="scores", **given(activation))(inner)), name="head")
    return Model(pixels, head(Conv2D(3, 3, activation="tanh", name="features")(pixels)))


# name -> (model of the head's activation argument, input shape, loss)
CARRIED: dict[str, tuple[Callable[[Activation], Model | Sequential], tuple[int, ...], Loss | str]] = {
    "conv2d_then_global_average": (  # the all-convolutional classifier's head
        lambda a: Sequential(
            [
                Input(4, 5, 2),
                Conv2D(4, 3, activation="tanh"),
                Conv2D(3, 1, name="head", **given(a)),
                GlobalAveragePooling2D(),
            ]
        ),
        (4, 5, 2),
        "sparse_categorical_crossentropy",
    ),
    "conv1d_then_max_pool": (
        lambda a: Sequential([Input(6, 2), Conv1D(3, 2, name="head", **given(a)), MaxPooling1D(3)]),
        (6, 2),
        CategoricalCrossentropy(from_logits=True),
    ),
    "conv1d_then_flatten": (  # one logit per position
        lambda a: Sequential([Input(6, 2), Conv1D(1, 1, name="head", **given(a)), Flatten()]),
        (6, 2),
        BinaryCrossentropy(from_logits=True),
    ),
    "conv2d_then_pool_and_reshape": (
        lambda a: Sequential(
            [Input(4, 4, 2), Conv2D(3, 1, name="head", **given(a)), AveragePooling2D(2), Reshape((-1, 3))]
        ),
        (4, 4, 2),
        "categorical_crossentropy",
    ),
    "separable_then_permute": (
        lambda a: Sequential([Input(4, 5, 2), SeparableConv2D(3, 3, name="head", **given(a)), Permute((2, 1, 3))]),
        (4, 5, 2),
        CategoricalCrossentropy(from_logits=True),
    ),
    "dense_then_flatten": (  # Keras' Dense(n) per step then Flatten(): no warning, as the graphs are linear
        lambda a: Sequential([Input(6, 4), Dense(2, name="head", **given(a)), Flatten()]),
        (6, 4),
        CategoricalCrossentropy(from_logits=True),
    ),
    "dense_then_reshape": (
        lambda a: Sequential([Input(6, 4), Dense(3, name="head", **given(a)), Reshape((3, 6))]),
        (6, 4),
        BinaryCrossentropy(from_logits=True),
    ),
    "dense_then_global_average": (  # a Dense's values, pooled over the steps, as well
        lambda a: Sequential([Input(6, 4), Dense(3, name="head", **given(a)), GlobalAveragePooling1D()]),
        (6, 4),
        "sparse_categorical_crossentropy",
    ),
    "time_distributed_dense_then_global_average": (  # the rule reaches into the TimeDistributed as ever
        lambda a: Sequential(
            [Input(6, 4), TimeDistributed(Dense(3, **given(a)), name="head"), GlobalAveragePooling1D()]
        ),
        (6, 4),
        SparseCategoricalCrossentropy(from_logits=True),
    ),
    "nested_conv2d_then_global_average": (nested_pooled_head, (4, 5, 2), "categorical_crossentropy"),
}


@pytest.mark.parametrize("case", list(CARRIED))
def test_a_default_head_carried_to_the_output_trains_as_a_linear_one(tmp_path, case):
    make, shape, loss = CARRIED[case]
    assert_trains_as_linear(make, shape, loss, tmp_path)


def test_a_nested_model_carrying_a_default_head_is_marked_and_called_as_its_graphs_compute_it():
    x = np.random.default_rng(8).normal(size=(3, 4, 5, 2)).astype(np.float32)
    with nested_pooled_head(None) as model, nested_pooled_head("linear") as linear, nested_pooled_head("relu") as relu:
        model.compile(loss="categorical_crossentropy")
        lines = model.summary(print_fn=None, expand_nested=True).splitlines()
        linear.set_weights(model.get_weights())
        relu.set_weights(model.get_weights())
        logits = np.asarray(linear(x))
        assert not np.allclose(np.asarray(relu(x)), logits, atol=1e-3)
        np.testing.assert_allclose(np.asarray(model(x)), logits, rtol=1e-5, atol=1e-6)
    assert_marked(lines, ["head(Functional)", "└ scores(Conv2D)"])  # the nested model, and the head it carries


def test_another_reader_of_the_head_keeps_its_default_relu(tmp_path):
    # the pooled output is trained on logits; the head's values that a second output reads are its ReLU, as built
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 4, 5, 2)).astype(np.float32)
    pixels = Input(4, 5, 2)
    scores = Conv2D(3, 1, name="head")(pixels)
    with (
        Model(pixels, [GlobalAveragePooling2D(name="classes")(scores), Flatten(name="maps")(scores)]) as model,
        Sequential([Input(4, 5, 2), Conv2D(3, 1, activation="linear", name="head")]) as linear,
    ):
        model.compile(loss={"classes": "sparse_categorical_crossentropy", "maps": "mse"})
        linear.set_weights(model.get_weights())
        z = np.asarray(linear(x))
        outputs = exported(model, x, tmp_path, "model")
        called = model(x)  # as the export computes them, a list as the outputs were given
        predicted = model.predict_outputs(x)
    np.testing.assert_allclose(outputs["classes"], z.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["maps"], np.maximum(z, 0).reshape(len(x), -1), rtol=1e-5, atol=1e-6)
    assert isinstance(called, list)
    for name, values in zip(["classes", "maps"], called, strict=True):
        np.testing.assert_allclose(values, outputs[name], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(predicted[name], outputs[name], rtol=1e-5, atol=1e-6, err_msg=name)


# --- an explicit ReLU stays -------------------------------------------------------------------------------------
def test_an_explicit_relu_on_a_last_convolution_stays_and_warns(tmp_path):
    x = np.random.default_rng(3).normal(size=(4, 6, 2)).astype(np.float32)
    with (
        Sequential([Input(6, 2), Conv1D(3, 1, activation="relu", name="head")], seed=0) as model,
        Sequential([Input(6, 2), Conv1D(3, 1, activation="linear", name="head")]) as linear,
    ):
        with pytest.warns(UserWarning, match=r"the last layer 'head' applies activation 'relu'.*Conv1D\(\.\.\."):
            model.compile(loss=CategoricalCrossentropy(from_logits=True))
        assert MARK not in model.summary(print_fn=None)
        linear.set_weights(model.get_weights())
        z = np.asarray(linear(x))
        assert (z < 0).any()
        np.testing.assert_allclose(exported(model, x, tmp_path, "relu")["logits"], np.maximum(z, 0), atol=1e-6)


def test_an_explicit_relu_pooled_to_the_output_stays_and_warns(tmp_path):
    x = np.random.default_rng(4).normal(size=(4, 4, 5, 2)).astype(np.float32)
    with (
        Sequential([Input(4, 5, 2), Conv2D(3, 1, activation="relu", name="head"), GlobalAveragePooling2D()]) as model,
        Sequential([Input(4, 5, 2), Conv2D(3, 1, activation="linear", name="head")]) as linear,
    ):
        with pytest.warns(
            UserWarning,
            match=r"the last layer 'global_average_pooling2d(_\d+)?' \(the values, moved or pooled, of Conv2D 'head'\) "
            r"applies activation 'relu' to them: relu logits are clamped.*Conv2D\(\.\.\., activation=\"linear\"\)",
        ):
            model.compile(loss="sparse_categorical_crossentropy")
        linear.set_weights(model.get_weights())
        z = np.asarray(linear(x))
        expected = np.maximum(z, 0).mean(axis=(1, 2))
        assert not np.allclose(expected, z.mean(axis=(1, 2)))
        np.testing.assert_allclose(exported(model, x, tmp_path, "relu")["logits"], expected, rtol=1e-5, atol=1e-6)


# --- save and load ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", [None, "relu"])
def test_a_saved_convolution_head_loads_with_its_activation_given_or_not(tmp_path, activation):
    x = np.random.default_rng(5).normal(size=(4, 4, 5, 2)).astype(np.float32)
    y = np.random.default_rng(5).integers(0, 3, size=4)
    layers = [Input(4, 5, 2), Conv2D(3, 1, name="head", **given(activation)), GlobalAveragePooling2D()]
    with Sequential(layers, seed=0) as model, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the explicit ReLU's own warning is not what is tested here
        model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
        model.train_on_batch(x, y)
        saved = exported(model, x, tmp_path, "before")
        softly = model.predict_softly(x)
        model.save(tmp_path / "saved")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the explicit ReLU's own warning, again at the load's compile
        loaded = load_model(tmp_path / "saved")
    with loaded:
        head = loaded.get_layer("head")
        assert head.activation.name == "relu" and head.activation_given is (activation is not None)
        assert ("activation" in head.get_config()) is (activation is not None)
        np.testing.assert_allclose(loaded.predict_softly(x), softly, rtol=1e-5, atol=1e-6)
        for name, values in exported(loaded, x, tmp_path, "after").items():
            np.testing.assert_allclose(values, saved[name], rtol=1e-5, atol=1e-6)


# --- a softmax the last layers move -----------------------------------------------------------------------------
def softmax_then(*carriers: Layer, features: tuple[int, ...] = (4, 5)) -> Model:
    x = Input(*features)
    y = Dense(3, activation="softmax", name="dense")(x)
    for carrier in carriers:
        y = carrier(y)
    return Model(x, y)


def keras_categorical_crossentropy(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Keras' categorical cross-entropy of probabilities: normalised, clipped to [1e-7, 1 - 1e-7], averaged."""
    p = np.clip(probabilities / probabilities.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    return float(np.mean(-(y * np.log(p)).sum(axis=-1)))


# name -> (the features the softmax's Dense reads, the layers that carry its probabilities on, the classes last)
KEPT_LAST: dict[str, tuple[tuple[int, ...], Callable[[], list[Layer]]]] = {
    "permuted_back": ((4, 5), lambda: [Permute((2, 1)), Permute((2, 1))]),
    "averaged": ((4, 5), lambda: [GlobalAveragePooling1D()]),
    "reshaped_then_permuted": ((4, 5, 2), lambda: [Reshape((5, 4, 3)), Permute((2, 1, 3))]),
}


@pytest.mark.parametrize("case", list(KEPT_LAST))
def test_a_softmax_whose_classes_stay_last_is_applied_once(tmp_path, case):
    features, carriers = KEPT_LAST[case]
    x = np.random.default_rng(6).normal(size=(6, *features)).astype(np.float32)
    with softmax_then(*carriers(), features=features) as model:
        probabilities = np.asarray(model(x))
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=1e-5)
        y = np.eye(3, dtype=np.float32)[np.argsort(probabilities, axis=-1)[..., 0]]  # mostly unlikely classes
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(optimizer=SGD(0.1), loss="categorical_crossentropy")
        expected = keras_categorical_crossentropy(probabilities, y)
        assert float(model.evaluate(x, y, batch_size=len(x))) == pytest.approx(expected, abs=1e-5)
        outputs = exported(model, x, tmp_path, "model")
    # the export's `logits` are the log-probabilities, whose softmax, `probabilities`, gives the model's values back
    np.testing.assert_allclose(outputs["logits"], np.log(np.clip(probabilities, 1e-7, 1 - 1e-7)), atol=1e-5)
    np.testing.assert_allclose(outputs["probabilities"], probabilities, rtol=1e-5, atol=1e-6)


# (carriers, loss, what the refusal says): the classes moved off the last axis, merged, or pooled over
MOVED_OFF = [
    (
        (Permute((2, 1)),),
        "categorical_crossentropy",
        r"^Loss 'categorical_crossentropy' reads the classes on the last axis of output 'permute(_\d+)?' "
        r"\[None, 3, 4\], but the softmax of Dense layer 'dense' ran over the last axis of its values \[None, 4, 3\], "
        r"and the layers after it \(Permute 'permute(_\d+)?'\) move that axis to axis 1 \(the batch axis being 0\): "
        r".*Keep the classes on the last axis",
    ),
    (
        (Flatten(),),
        CategoricalCrossentropy(from_logits=True),
        r"output 'flatten(_\d+)?' \[None, 12\].*\(Flatten 'flatten(_\d+)?'\) merge that axis with others or pool "
        r"over it",
    ),
    (
        (Permute((2, 1)), GlobalAveragePooling1D()),
        "categorical_crossentropy",
        r"\(Permute 'permute(_\d+)?', GlobalAveragePooling1D '.*'\) merge that axis with others or pool over it",
    ),
]


@pytest.mark.parametrize(("carriers", "loss", "match"), MOVED_OFF, ids=["permuted", "flattened", "pooled_over"])
def test_a_softmax_whose_classes_are_moved_off_the_last_axis_is_refused(carriers, loss, match):
    with softmax_then(*carriers) as model, pytest.raises(InvalidArgumentError, match=match):
        model.compile(loss=loss)


def test_a_softmax_moved_off_the_last_axis_trains_as_built_under_a_loss_of_values():
    x = np.random.default_rng(7).normal(size=(4, 4, 5)).astype(np.float32)
    with softmax_then(Permute((2, 1))) as model:
        probabilities = np.asarray(model(x))
        model.compile(loss="mse")  # not a softmax cross-entropy: nothing is left out, nothing to refuse
        np.testing.assert_allclose(model.predict(x), probabilities, rtol=1e-5, atol=1e-6)


def test_graph_layers_emits_a_carried_default_head_linear_and_refuses_moved_classes():
    # the layer-list form of the rule, as the autodiff tests and compile's checks read it
    with Sequential([Input(4, 5, 2), Conv2D(3, 1), GlobalAveragePooling2D()]) as model:
        layers = model.layers
        emitted = emit.graph_layers(layers, losses.get("sparse_categorical_crossentropy"))
        assert emitted[0] is layers[0] and emitted[2] is layers[2]
        assert emitted[1].name == layers[1].name and emitted[1].activation.name == "linear"
        assert layers[1].activation.name == "relu" and not layers[1].activation_given  # the model's own layer
        assert emit.graph_layers(layers, losses.get("mse")) == layers
    with Sequential([Input(4, 5), Dense(3, activation="softmax"), Permute((2, 1))]) as model:
        with pytest.raises(InvalidArgumentError, match=r"move that axis to axis 1"):
            emit.graph_layers(model.layers, losses.get("categorical_crossentropy"))
