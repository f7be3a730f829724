"""compile's settings: the checks that refuse a model that could only train into nothing, and the warnings about a
last activation that does not fit the loss (`onnxtrain._compile_settings`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxtrain import Model
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import Activation, Add, Dense, Dropout, Flatten, Input, Softmax
from onnxtrain.losses import BinaryCrossentropy, Losses
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


def test_a_default_relu_behind_a_softmax_layer_the_loss_applies_warns_where_the_rule_does_not_reach_it():
    """The loss applies a last Softmax() or Activation("softmax") layer (or one whose probabilities a Dropout
    carries), so the values it reads are the logits: a Dense at its default ReLU behind a Dropout keeps it and is
    warned about, as `Dense(3)` then `Dropout` is; one right before the softmax layer is emitted linear by the rule,
    and a hidden ReLU is meant."""
    for model in (
        Sequential.of(Input(4), Dense(3), Dropout(0.1), Softmax()),
        Sequential.of(Input(4), Dense(3), Dropout(0.1), Activation("softmax")),
        Sequential.of(Input(4), Dense(3), Dropout(0.1), Softmax(), Dropout(0.1)),
    ):
        with (
            model,
            pytest.warns(UserWarning, match=r"carries the values of Dense layer\(s\) \['dense_1'\] left at .*ReLU"),
        ):
            model.compile(loss="sparse_categorical_crossentropy")
    for model, loss in (
        (
            Sequential.of(Input(4), Dense(3, activation="linear"), Dropout(0.1), Softmax()),
            "sparse_categorical_crossentropy",
        ),
        (Sequential.of(Input(4), Dense(3), Softmax()), "sparse_categorical_crossentropy"),
        (Sequential.of(Input(4), Dense(3), Softmax(), Dropout(0.1)), "sparse_categorical_crossentropy"),
        (Sequential.of(Input(4), Dense(8), Dropout(0.1), Dense(3), Softmax()), "sparse_categorical_crossentropy"),
        (Sequential.of(Input(4), Dense(3), Dropout(0.1), Softmax()), "mse"),  # not logits
    ):
        with model, warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(loss=loss)


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


def test_binary_cross_entropy_from_logits_wants_a_linear_last_layer():
    from_logits = BinaryCrossentropy(from_logits=True)
    with Sequential.of(Input(3), Dense(1, activation="linear")) as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(loss=from_logits)  # logits: as meant
    with (
        Sequential.of(Input(3), Dense(1, activation="sigmoid")) as model,
        pytest.warns(UserWarning, match=r"from_logits=True expects logits.*'sigmoid'.*applied twice"),
    ):
        model.compile(loss=from_logits)


def test_a_model_without_trainable_parameters_compiles_predicts_and_warns_when_fit():
    """A frozen feature extractor, or a model of weightless layers: Keras compiles it, and predict needs compile
    here, so compile must not refuse it; fit warns (its weights cannot change) and leaves them as they were."""
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    with Sequential.of(Input(3), Dense(2, trainable=False, activation="linear"), seed=0) as model:
        model.compile(optimizer="adam", loss="mse")
        weights = model.get_weights()
        expected = x @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
        assert model.evaluate(x, np.zeros((8, 2), np.float32)).loss == pytest.approx(float(np.mean(expected**2)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, np.zeros((8, 2), np.float32), epochs=2, verbose=0)
        assert [(w.filename, "no trainable parameters" in str(w.message)) for w in caught] == [(__file__, True)]
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, weights[name], err_msg=name)
    with Sequential.of(Input(3), Flatten()) as model:
        model.compile(loss="mse")
        np.testing.assert_array_equal(model.predict(x), x)


@pytest.mark.training
def test_the_ort_training_engine_refuses_a_model_without_trainable_parameters():
    with (
        Sequential.of(Input(3), Dense(2, trainable=False)) as model,
        pytest.raises(UnsupportedError, match=r"ort-training engine needs at least one trainable.*engine='portable'"),
    ):
        model.compile(loss="mse", engine="ort-training")


def test_models_that_could_only_train_into_nothing_are_refused_at_compile():
    with pytest.raises(InvalidArgumentError, match=r"at least 2 output units.*dense_1 with 1 unit"):
        Sequential.of(Input(3), Dense(1, activation="linear")).compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)


def test_the_activation_warning_points_at_the_line_that_calls_compile():
    with Sequential.of(Input(3), Dense(2, activation="relu")) as model, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
    assert [w.filename for w in caught if "expects logits" in str(w.message)] == [__file__]
