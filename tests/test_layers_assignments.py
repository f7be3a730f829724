"""Assigning a layer's constructor arguments after construction (onnxtrain/layers/_assignments.py): checked as the
constructor checks them, so no model trains on, or saves, a value `load_model` cannot rebuild."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.activations import Tanh
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError
from onnxtrain.layers import Conv2D, Dense, Dropout, Input, Layer

RNG = np.random.default_rng(0)
X = RNG.random((20, 6)).astype(np.float32)
Y = RNG.integers(0, 3, 20)


def small_model() -> Sequential:
    return Sequential.of(Input(6), Dense(8), Dropout(0.5), Dense(3), seed=0)


@pytest.mark.parametrize(
    ("layer_name", "attribute", "value", "error", "match"),
    [
        (
            "dense_1",
            "trainable",
            "no",
            InvalidTypeError,
            r"Setting trainable of Dense layer 'dense_1': Dense\(trainable=\.\.\.\) expects a bool\. Received: 'no'",
        ),
        ("dense_1", "trainable", 1, InvalidTypeError, r"expects a bool\. Received: 1"),
        (
            "dropout_1",
            "rate",
            5,
            InvalidArgumentError,
            r"Setting rate of Dropout layer 'dropout_1': Dropout\(rate=\.\.\.\) expects a number in \[0, 1\)\. "
            r"Received: rate=5",
        ),
        ("dropout_1", "rate", -1.0, InvalidArgumentError, r"Received: rate=-1\.0"),
        (
            "dense_1",
            "units",
            -5,
            InvalidArgumentError,
            r"Setting units of Dense layer 'dense_1': Dense\(units=\.\.\.\) expects a positive int\. "
            r"Received: units=-5",
        ),
        (
            "dense_1",
            "use_bias",
            "x",
            InvalidArgumentError,
            r"Dense\(use_bias=\.\.\.\) expects a bool\. Received: use_bias='x'",
        ),
        (
            "dense_1",
            "name",
            "a b",
            InvalidArgumentError,
            r"Setting name of Dense layer 'dense_1': .* Received: name='a b'",
        ),
        (
            "dense_1",
            "activation",
            "nope",
            InvalidArgumentError,
            r"Setting activation of Dense layer 'dense_1': .*'nope'",
        ),
    ],
)
def test_assigning_a_value_the_constructor_refuses_raises_and_keeps_the_old_one(
    layer_name: str, attribute: str, value: Any, error: type[Exception], match: str
) -> None:
    model = small_model()
    layer = model.get_layer(layer_name)
    before = getattr(layer, attribute)
    with pytest.raises(error, match=match):
        setattr(layer, attribute, value)
    assert getattr(layer, attribute) == before
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
    model.fit(X, Y, epochs=1, verbose=0)  # the model trains as it was


def test_the_checks_are_the_constructors_for_any_layer_a_custom_one_included() -> None:
    class Scale(Layer):
        def __init__(self, factor: float = 2.0, **kwargs: Any):
            super().__init__(**kwargs)
            if not isinstance(factor, float) or factor <= 0:
                raise InvalidArgumentError(f"Scale(factor=...) expects a positive float. Received: factor={factor!r}")
            self.factor = factor

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "factor": self.factor}

    scale = Scale(3.0)
    scale.factor = 0.5
    with pytest.raises(InvalidArgumentError, match=r"Setting factor of Scale layer: Scale\(factor=\.\.\.\) expects"):
        scale.factor = -1.0
    assert scale.factor == 0.5
    scale.note = "anything"  # not a constructor argument: not checked
    assert scale.note == "anything"


def test_a_valid_assignment_stores_what_the_constructor_stores() -> None:
    dense = Dense(4)
    dense.activation = "tanh"
    assert (
        isinstance(dense.activation, Tanh)
        and dense.get_config()["activation"] == Dense(4, "tanh").get_config()["activation"]
    )
    conv = Conv2D(2, kernel_size=3)
    conv.kernel_size = 5
    assert conv.kernel_size == Conv2D(2, kernel_size=5).kernel_size == (5, 5)


def test_an_unbuilt_layer_takes_new_shapes_a_built_one_refuses_them() -> None:
    dense = Dense(8)
    dense.units = 4  # not built yet: the model builds it with 4 units
    model = Sequential.of(Input(6), dense, seed=0)
    assert model.get_weights()["dense_1.kernel"].shape == (6, 4)
    with pytest.raises(
        ShapeError,
        match=r"Setting units of Dense layer 'dense_1' to 5: the layer is built .* "
        r"output shape would be \[None, 5\] instead of \[None, 4\]",
    ):
        dense.units = 5
    with pytest.raises(
        ShapeError,
        match=r"weights would have shapes \{'kernel': \(6, 4\)\} instead of \{'kernel': \(6, 4\), 'bias': \(4,\)\}",
    ):
        dense.use_bias = False
    assert dense.units == 4 and dense.use_bias
    x = Input(8, 8, 1)
    conv = Conv2D(2, kernel_size=3, padding="same")
    conv(x)  # called: its shapes are fixed
    with pytest.raises(ShapeError, match=r"output shape would be \[None, 6, 6, 2\] instead of \[None, 8, 8, 2\]"):
        conv.padding = "valid"


def test_a_layer_can_be_renamed_until_it_belongs_to_a_model() -> None:
    dense = Dense(3)
    dense.name = "early"
    x = Input(4)
    y = dense(x)
    dense.name = "called"  # called, in no model yet: its weights are keyed by nothing yet
    model = Model(x, y, seed=0)
    assert list(model.get_weights()) == ["called.kernel", "called.bias"]
    dense.name = "called"  # the same name: nothing changes
    with pytest.raises(
        ModelStateError, match=r"Dense layer 'called' belongs to model 'functional(_\d+)?', .* cannot be renamed"
    ):
        dense.name = "later"
    assert list(model.get_weights()) == ["called.kernel", "called.bias"]


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        (lambda m: setattr(m.get_layer("dense_1"), "trainable", False), lambda m: not m.get_layer("dense_1").trainable),
        (lambda m: setattr(m.get_layer("dropout_1"), "rate", 0.25), lambda m: m.get_layer("dropout_1").rate == 0.25),
        (
            lambda m: setattr(m.get_layer("dense_2"), "activation", "tanh"),
            lambda m: isinstance(m.get_layer("dense_2").activation, Tanh),
        ),
    ],
)
def test_a_valid_assignment_trains_saves_and_loads(
    tmp_path: Any, mutate: Callable[[Sequential], None], check: Callable[[Sequential], bool]
) -> None:
    model = small_model()
    mutate(model)
    frozen_before = model.get_weights()["dense_1.kernel"].copy()
    with model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
        model.fit(X, Y, epochs=1, verbose=0)
        frozen = not model.get_layer("dense_1").trainable
        assert np.array_equal(model.get_weights()["dense_1.kernel"], frozen_before) == frozen
        model.save(tmp_path / "m")
        weights = model.get_weights()
    json.loads((tmp_path / "m" / "config.json").read_text())
    with load_model(tmp_path / "m") as loaded:
        assert check(loaded)
        for name, value in loaded.get_weights().items():
            np.testing.assert_array_equal(value, weights[name], err_msg=name)


def test_a_setting_assigned_after_compile_is_refused_until_compile_applies_it() -> None:
    """The compiled engine and the predictions' session compute the settings compile saw: a Dropout rate, a Dense
    activation or a nested model's layer assigned later would be silently ignored by fit, evaluate and predict while
    save and export wrote the new one."""
    x = np.random.default_rng(0).random((12, 3), np.float32)
    y = np.arange(12) % 2
    inner_input = Input(4)
    inner = Model(inner_input, Dense(4, name="inner_dense")(inner_input), name="inner")
    outer_input = Input(3)
    hidden = Dropout(0.5, name="drop")(Dense(4)(outer_input))
    model = Model(outer_input, Dense(2, activation="linear")(inner(hidden)), seed=0)
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.get_layer("drop").rate = 0.0
        inner.get_layer("inner_dense").activation = "tanh"
        for action, call in (
            ("fit", lambda: model.fit(x, y, epochs=1, verbose=0)),
            ("evaluate", lambda: model.evaluate(x, y)),
            ("predict", lambda: model.predict(x)),
        ):
            with pytest.raises(ModelStateError, match=rf"^{action}: the settings of layer\(s\) drop \(rate\), "):
                call()
        with pytest.raises(ModelStateError, match=r"inner_dense \(activation\) were assigned after compile\(\)"):
            model.predict(x)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")  # applies them
        model.fit(x, y, epochs=1, verbose=0)
        model.predict(x)
