"""compile's warnings about the logits of a loss that reads them (`_compile_settings`), against what the graphs
compute: no warning where the logits rule emits the layer linear (a Dense or convolution at its default whose values
the last layers only move or pool, also inside a nested model); a warning where a default ReLU stays (carried
through a Dropout or a merge, which the rule does not reach: the export's logits are then those of the same model
with an explicit ReLU); and an explicit activation reached through a move or a pooling warns as a last one does."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.layers import Activation as ActivationLayer
from onnxtrain.layers import (
    Add,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    Input,
    RepeatVector,
    Softmax,
)
from onnxtrain.losses import BinaryCrossentropy, CategoricalCrossentropy, Loss

Activation = str | None  # a head's activation argument: None leaves it out (KotlinDL's default, ReLU)
Make = Callable[[Activation], Model | Sequential]


def given(activation: Activation) -> dict[str, str]:
    return {} if activation is None else {"activation": activation}


def exported_logits(model: Model | Sequential, x: np.ndarray, path: Path) -> np.ndarray:
    session = ort.InferenceSession(model.export(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def compiled_quietly(model: Model | Sequential, loss: Loss | str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an explicit activation's own warning is not what is compared
        model.compile(loss=loss)


def dense_then_flatten_nested(activation: Activation) -> Model:
    inner = Input(6, 4)
    head = Model(inner, Flatten()(Dense(2, name="scores", **given(activation))(inner)), name="head")
    x = Input(6, 4)
    return Model(x, head(Dense(4, activation="tanh", name="features")(x)))


# --- no warning where the graphs are linear ---------------------------------------------------------------------
# name -> (model of the head's activation argument, input shape, loss)
LINEAR: dict[str, tuple[Make, tuple[int, ...], Loss | str]] = {
    "dense_then_flatten": (
        lambda a: Sequential([Input(6, 4), Dense(2, name="head", **given(a)), Flatten()]),
        (6, 4),
        "categorical_crossentropy",
    ),
    "nested_dense_then_flatten": (dense_then_flatten_nested, (6, 4), BinaryCrossentropy(from_logits=True)),
}


@pytest.mark.parametrize("case", list(LINEAR))
def test_a_default_dense_whose_values_are_only_moved_is_linear_and_not_warned_about(tmp_path, case):
    make, shape, loss = LINEAR[case]
    x = np.random.default_rng(0).normal(size=(5, *shape)).astype(np.float32)
    with make(None) as model, make("linear") as linear:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(loss=loss)
        linear.set_weights(model.get_weights())
        reference = np.asarray(linear(x))
        assert (reference < 0).any()  # a ReLU would show
        np.testing.assert_allclose(exported_logits(model, x, tmp_path / "model.onnx"), reference, atol=1e-6)
        np.testing.assert_allclose(np.asarray(model(x)), reference, rtol=1e-5, atol=1e-6)


# --- a default ReLU the rule does not reach: warned about, and it stays -------------------------------------------
def added_heads(activation: Activation) -> Model:
    x = Input(6, 2)
    scores = Conv1D(3, 1, name="head", **given(activation))(x)
    return Model(x, Add(name="sum")([scores, Conv1D(3, 1, activation="linear", name="skip")(x)]))


def dense_and_convolution_added(activation: Activation) -> Model:
    x = Input(6, 2)
    return Model(
        x, Add(name="sum")([Conv1D(3, 1, name="c", **given(activation))(x), Dense(3, name="d", **given(activation))(x)])
    )


# name -> (model of the default layers' activation argument, input shape, loss, what the warning says)
CLAMPED: dict[str, tuple[Make, tuple[int, ...], Loss | str, str]] = {
    "conv2d_dropout_then_pooled": (
        lambda a: Sequential(
            [Input(4, 5, 2), Conv2D(3, 1, name="head", **given(a)), Dropout(0.2), GlobalAveragePooling2D()]
        ),
        (4, 5, 2),
        "sparse_categorical_crossentropy",
        r"^Loss 'sparse_categorical_crossentropy' expects logits, but output 'global_average_pooling2d(_\d+)?' "
        r"carries the values of Conv2D layer\(s\) \['head'\] left at Conv2D's default activation, ReLU \(KotlinDL's "
        r"default; Keras' is linear\): the logits are clamped at 0, and classes can become unlearnable\. Give them "
        r"activation=\"linear\"\.$",
    ),
    "conv1d_added": (
        added_heads,
        (6, 2),
        CategoricalCrossentropy(from_logits=True),
        r"output 'sum' carries the values of Conv1D layer\(s\) \['head'\] left at Conv1D's default activation",
    ),
    "dense_and_conv1d_added": (
        dense_and_convolution_added,
        (6, 2),
        "categorical_crossentropy",
        r"output 'sum' carries the values of Conv1D and Dense layer\(s\) \['c', 'd'\] left at their default activation",
    ),
    "dense_dropout_then_pooled": (
        lambda a: Sequential([Input(6, 4), Dense(3, name="head", **given(a)), Dropout(0.2), GlobalAveragePooling1D()]),
        (6, 4),
        BinaryCrossentropy(from_logits=True),
        r"output 'global_average_pooling1d(_\d+)?' carries the values of Dense layer\(s\) \['head'\].*never falls "
        r"below 0\.5",
    ),
}


@pytest.mark.parametrize("case", list(CLAMPED))
def test_a_default_relu_the_rule_does_not_reach_is_warned_about_and_stays(tmp_path, case):
    make, shape, loss, match = CLAMPED[case]
    x = np.random.default_rng(1).normal(size=(5, *shape)).astype(np.float32)
    with make(None) as model, make("relu") as relu, make("linear") as linear:
        with pytest.warns(UserWarning, match=match):
            model.compile(loss=loss)
        compiled_quietly(relu, loss)
        compiled_quietly(linear, loss)
        relu.set_weights(model.get_weights())
        linear.set_weights(model.get_weights())
        logits = exported_logits(model, x, tmp_path / "model.onnx")
        np.testing.assert_allclose(logits, exported_logits(relu, x, tmp_path / "relu.onnx"), atol=1e-6)
        assert not np.allclose(logits, exported_logits(linear, x, tmp_path / "linear.onnx"), atol=1e-3)
        np.testing.assert_allclose(np.asarray(model(x)), logits, rtol=1e-5, atol=1e-6)


# --- a default ReLU before a Dropout then a softmax layer that the loss applies: warned about, and it stays --------
def nested_dense_dropout_softmax(activation: Activation) -> Model:
    inner = Input(4)
    head = Model(inner, Softmax(name="probabilities")(Dropout(0.2)(Dense(3, name="head", **given(activation))(inner))))
    x = Input(4)
    return Model(x, head(x))


SOFTMAX_CLAMPED: dict[str, tuple[Make, tuple[int, ...], str]] = {
    "softmax_layer": (
        lambda a: Sequential([Input(4), Dense(3, name="head", **given(a)), Dropout(0.2), Softmax(name="p")]),
        (4,),
        r"^Loss 'sparse_categorical_crossentropy' expects logits, but output 'p' carries the values of Dense "
        r"layer\(s\) \['head'\] left at Dense's default activation, ReLU",
    ),
    "softmax_activation_layer": (
        lambda a: Sequential(
            [Input(4), Dense(3, name="head", **given(a)), Dropout(0.2), ActivationLayer("softmax", name="p")]
        ),
        (4,),
        r"output 'p' carries the values of Dense layer\(s\) \['head'\] left at Dense's default activation",
    ),
    "softmax_layer_repeated": (
        lambda a: Sequential(
            [Input(4), Dense(3, name="head", **given(a)), Dropout(0.2), Softmax(), RepeatVector(2, name="p")]
        ),
        (4,),
        r"output 'p' carries the values of Dense layer\(s\) \['head'\] left at Dense's default activation",
    ),
    "nested_softmax_layer": (
        nested_dense_dropout_softmax,
        (4,),
        r"carries the values of Dense layer\(s\) \['head'\] left at Dense's default activation",
    ),
}


@pytest.mark.parametrize("case", list(SOFTMAX_CLAMPED))
def test_a_default_relu_before_a_dropout_then_a_softmax_layer_is_warned_about_and_stays(tmp_path, case):
    """The loss applies the softmax layer (its input, or the probabilities it carries, are the logits: README's
    "Logits"), but the rule does not reach the Dense through the Dropout: its ReLU stays, as compile says."""
    make, shape, match = SOFTMAX_CLAMPED[case]
    x = np.random.default_rng(2).normal(size=(6, *shape)).astype(np.float32)
    with make(None) as model, make("relu") as relu, make("linear") as linear:
        with pytest.warns(UserWarning, match=match):
            model.compile(loss="sparse_categorical_crossentropy")
        compiled_quietly(relu, "sparse_categorical_crossentropy")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a linear head before the softmax layer is what the loss wants
            linear.compile(loss="sparse_categorical_crossentropy")
        relu.set_weights(model.get_weights())
        linear.set_weights(model.get_weights())
        logits = exported_logits(model, x, tmp_path / "model.onnx")
        np.testing.assert_allclose(logits, exported_logits(relu, x, tmp_path / "relu.onnx"), atol=1e-6)
        assert not np.allclose(logits, exported_logits(linear, x, tmp_path / "linear.onnx"), atol=1e-3)
        np.testing.assert_allclose(np.asarray(model(x)), softmax(logits), rtol=1e-5, atol=1e-6)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- an explicit activation the last layers move or pool ----------------------------------------------------------
MOVED: list[tuple[Make, Loss | str, str]] = [
    (
        lambda a: Sequential([Input(6, 4), Dense(1, name="head", **given(a)), Flatten(name="flat")]),
        BinaryCrossentropy(from_logits=True),
        r"^Loss 'binary_crossentropy' with from_logits=True expects logits, but the last layer 'flat' \(the values, "
        r"moved or pooled, of Dense 'head'\) applies activation 'relu' to them: relu logits are clamped",
    ),
    (
        lambda a: Sequential([Input(6, 4), Dense(3, name="head", **given(a)), GlobalAveragePooling1D(name="pool")]),
        "binary_crossentropy",
        r"^Loss 'binary_crossentropy' expects probabilities, but the last layer 'pool' \(the values, moved or pooled, "
        r"of Dense 'head'\) ends in activation 'relu'",
    ),
]


@pytest.mark.parametrize(("make", "loss", "match"), MOVED, ids=["relu_flattened", "relu_bce"])
def test_an_explicit_activation_moved_or_pooled_to_the_output_warns_as_a_last_one(make, loss, match):
    activation = "softmax" if "softmax" in match else "relu"
    with make(activation) as model, pytest.warns(UserWarning, match=match):
        model.compile(loss=loss)


def test_a_softmax_moved_to_the_output_that_the_loss_applies_is_not_warned_about():
    with Sequential([Input(6, 4), Dense(3, activation="softmax"), GlobalAveragePooling1D()]) as model:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # averaged probabilities: the rule's log-probabilities, applied once
            model.compile(loss="categorical_crossentropy")
