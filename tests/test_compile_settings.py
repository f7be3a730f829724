"""compile's settings: the checks that refuse a model that could only train into nothing, and the warnings about a
last activation that does not fit the loss (`onnxtrain._compile_settings`)."""

from __future__ import annotations

import warnings

import pytest

from onnxtrain import Model
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Activation, Add, Dense, Dropout, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.sequential import Sequential


def test_activation_on_logits_warns_and_linear_or_default_logits_do_not():
    with (
        Sequential.of(Input(3), Dense(2, activation="relu")) as model,
        pytest.warns(UserWarning, match=r"expects logits.*'relu'"),
    ):
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
    for last in (Dense(2, activation="linear"), Dense(2)):
        with Sequential.of(Input(3), last) as model, warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)


def test_a_last_relu_activation_layer_warns_to_leave_the_layer_out():
    with (
        Sequential.of(Input(4), Dense(3, activation="linear"), Activation("relu")) as model,
        pytest.warns(UserWarning, match=r"'activation_1' applies activation 'relu'.*For logits leave that layer out"),
    ):
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)


def _two_dense_sum(linear: bool) -> Model:
    a = Input(4)
    kwargs = {"activation": "linear"} if linear else {}
    return Model(inputs=a, outputs=Add()([Dense(3, **kwargs)(a), Dense(3, **kwargs)(a)]))


def test_logits_carried_from_a_dense_at_its_default_relu_warn():
    """Dense defaults to ReLU (KotlinDL's default): only a last Dense is emitted linear for softmax cross-entropy,
    so one behind a Dropout or a merge clamps the logits at 0, which a Keras user (linear default) does not expect."""
    for model, names in [
        (Sequential.of(Input(4), Dense(3), Dropout(0.1)), r"\['dense_1'\]"),
        (_two_dense_sum(linear=False), r"\['dense_1', 'dense_2'\]"),
    ]:
        with model, pytest.warns(UserWarning, match=rf"carries the values of Dense layer\(s\) {names}.*ReLU"):
            model.compile(loss="sparse_categorical_crossentropy")
    for model in (
        Sequential.of(Input(4), Dense(3, activation="linear"), Dropout(0.1)),
        _two_dense_sum(linear=True),
        Sequential.of(Input(4), Dense(8), Dense(3)),  # the hidden ReLU is meant; the last Dense is emitted linear
    ):
        with model, warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(loss="sparse_categorical_crossentropy")
    with Sequential.of(Input(4), Dense(3), Dropout(0.1)) as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(loss="mse")  # not logits


@pytest.mark.parametrize("activation", ["relu", "linear", "softmax"])
def test_binary_cross_entropy_without_a_sigmoid_warns(activation):
    with (
        Sequential.of(Input(3), Dense(1, activation=activation)) as model,
        pytest.warns(UserWarning, match=rf"expects probabilities.*'{activation}'.*activation=\"sigmoid\""),
    ):
        model.compile(loss="binary_crossentropy")
    with Sequential.of(Input(3), Dense(1, activation="sigmoid")) as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(loss="binary_crossentropy")


def test_models_that_could_only_train_into_nothing_are_refused_at_compile():
    with pytest.raises(InvalidArgumentError, match=r"no trainable parameters.*flatten_1 \(Flatten\)"):
        Sequential.of(Input(3), Flatten()).compile(loss="mse")
    with pytest.raises(InvalidArgumentError, match="no trainable parameters"):
        Sequential.of(Input(3), Dense(2, trainable=False)).compile(loss="mse")
    with pytest.raises(InvalidArgumentError, match=r"at least 2 output units.*dense_1 with 1 unit"):
        Sequential.of(Input(3), Dense(1, activation="linear")).compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)


def test_the_activation_warning_points_at_the_line_that_calls_compile():
    with Sequential.of(Input(3), Dense(2, activation="relu")) as model, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
    assert [w.filename for w in caught if "expects logits" in str(w.message)] == [__file__]
