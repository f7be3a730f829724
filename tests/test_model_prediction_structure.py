"""What a model's `output`, its call on arrays (`model(x)`), `predict` and `predict_on_batch` return for each way of
giving `Model(inputs, outputs)` its outputs, against Keras 3.15's.

KERAS below is what Keras 3.15.1 (KERAS_BACKEND=jax) returns for `keras.Model(x, outputs)` with `outputs` built as
`outputs()` builds them from two Dense layers of one Input: its `output` keeps the structure given (a list or tuple
of one too); a call on arrays and predict unpack a list or tuple of one output (`unpack_singleton`), keep a list, a
tuple and a dict of several, and predict sorts a dict by key where the call keeps its order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnxtrain import Model, load_model
from onnxtrain.functional import Functional
from onnxtrain.layers import Dense, Input

KERAS = {  # case -> kind of (model.output, model(x), model.predict(x)), predict_on_batch as predict
    "tensor": ("tensor", "array", "array"),
    "list_of_one": ("list", "array", "array"),
    "tuple_of_one": ("tuple", "array", "array"),
    "list": ("list", "list", "list"),
    "tuple": ("tuple", "tuple", "tuple"),
    "dict_of_one": ("dict['a']", "dict['a']", "dict['a']"),
    "dict": ("dict['b', 'a']", "dict['b', 'a']", "dict['a', 'b']"),
}
X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def outputs(case: str) -> tuple[Input, Any]:
    x = Input(4, name="x")
    ha, hb = Dense(2, name="da")(x), Dense(3, name="db")(x)
    return x, {
        "tensor": ha,
        "list_of_one": [ha],
        "tuple_of_one": (ha,),
        "list": [ha, hb],
        "tuple": (ha, hb),
        "dict_of_one": {"a": ha},
        "dict": {"b": hb, "a": ha},
    }[case]


def kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"dict{list(value)}"
    if isinstance(value, tuple | list):
        return type(value).__name__
    return "array" if isinstance(value, np.ndarray) else "tensor"


def compiled_as(model: Model, loss: str | None) -> None:
    if loss is not None:
        model.compile(optimizer="sgd", loss=loss)


# None: not compiled; "mse"; a loss on logits, under which model(x) runs the graphs as emitted for it (the Dense
# layers at their default activation give their logits: `_model_prediction.call_on_data`).
@pytest.mark.parametrize("loss", [None, "mse", "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("case", list(KERAS))
def test_output_call_and_predict_return_the_structure_keras_returns(case: str, loss: str | None) -> None:
    x, given = outputs(case)
    with Model(x, given, seed=0) as model:
        compiled_as(model, loss)
        got = (kind(model.output), kind(model(X)), kind(model.predict(X, verbose=0)))
        assert kind(model.predict_on_batch(X)) == got[2]
    assert got == KERAS[case]


@pytest.mark.parametrize("case", list(KERAS))
def test_a_functional_called_on_arrays_returns_what_a_model_of_it_returns(case: str) -> None:
    # A Functional (a model's graph, or one called alone) is Keras' Functional model: its call on arrays has the
    # structure of the model's call, with the model's arrays.
    x, given = outputs(case)
    graph = Functional(x, given, seed=0)
    got = graph(X)
    assert kind(got) == KERAS[case][1]
    with Model(x, given, seed=0) as model:
        want = model(X)
    for ours, model_ones in zip(arrays_of(got), arrays_of(want), strict=True):
        np.testing.assert_array_equal(ours, model_ones)


def arrays_of(value: Any) -> list[np.ndarray]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list | tuple) else [value]


def test_the_arrays_of_a_tuple_of_outputs_are_those_of_a_list_of_them() -> None:
    x, given = outputs("tuple")
    with Model(x, given, seed=0) as as_tuple, Model(x, list(given), seed=0) as as_list:
        for method in ("__call__", "predict"):
            for got, want in zip(getattr(as_tuple, method)(X), getattr(as_list, method)(X), strict=True):
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", ["tuple", "list_of_one", "tuple_of_one"])
def test_a_loaded_model_returns_the_structure_it_was_saved_with(case: str, tmp_path: Path) -> None:
    x, given = outputs(case)
    with Model(x, given, seed=0) as model:
        compiled_as(model, "mse")
        model.save(tmp_path / "saved")
        expected = [kind(model.output), kind(model(X)), kind(model.predict(X, verbose=0))]
    with load_model(tmp_path / "saved") as loaded:
        assert [kind(loaded.output), kind(loaded(X)), kind(loaded.predict(X, verbose=0))] == expected
    assert tuple(expected) == KERAS[case]
