"""`onnxtrain.summary`: Keras' `summary(expand_nested=True)`, whose rows for a nested model's layers Keras 3.15
labels (/work/venv-jax, keras 3.15.1, KERAS_BACKEND=jax) as below: "└ " indented three spaces per depth."""

from __future__ import annotations

import pytest

from onnxtrain import Model, Sequential
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input

# Keras: outer.summary(expand_nested=True) of the models of `three_deep`, its "Layer (type)" column
KERAS_EXPANDED = [
    "b (InputLayer)",
    "deeper (Functional)",
    "   └ z (InputLayer)",
    "   └ d1 (Dense)",
    "   └ sub (Functional)",
    "      └ a (InputLayer)",
    "      └ inner (Dense)",
    "   └ d2 (Dense)",
    "head (Dense)",
]


def three_deep() -> Model:
    a = Input(4, name="a")
    sub = Model(a, Dense(3, name="inner")(a), name="sub", seed=0)
    z = Input(3, name="z")
    deeper = Model(z, Dense(2, name="d2")(sub(Dense(4, name="d1")(z))), name="deeper", seed=0)
    b = Input(3, name="b")
    return Model(b, Dense(1, name="head")(deeper(b)), name="outer", seed=0)


def first_column(table: str) -> list[str]:
    """The "Layer (type)" cells of a summary's rows, as Keras writes them (`name (Type)`, Input as InputLayer)."""
    lines = table.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"="}]
    cells = [line[:39].rstrip() for line in lines[rules[1] + 1 : rules[2]] if not line.startswith("_")]
    return [cell.replace("(Input)", "(InputLayer)").replace("(", " (") for cell in cells if cell]


def test_expand_nested_lists_each_nested_models_layers_under_it_as_keras_does():
    table = three_deep().summary(print_fn=None, expand_nested=True)
    assert first_column(table) == KERAS_EXPANDED
    assert "   └ d1(Dense)                         [None, 4]                 16\n" in table + "\n"  # no connection


def test_without_expand_nested_a_nested_model_is_one_row():
    table = three_deep().summary(print_fn=None)
    assert first_column(table) == [label for label in KERAS_EXPANDED if "└" not in label]


def test_expand_nested_keeps_the_trainable_column_and_a_sequential_takes_it():
    table = three_deep().summary(print_fn=None, expand_nested=True, show_trainable=True)
    assert "      └ inner(Dense)" in table and table.count(" Y\n") >= 4
    stack = Sequential([Input(4), Dense(2)], seed=0)
    assert stack.summary(print_fn=None, expand_nested=True) == stack.summary(print_fn=None)


def test_expand_nested_takes_a_bool_only():
    with pytest.raises(InvalidArgumentError, match=r"summary\(expand_nested=...\) expects a bool"):
        three_deep().summary(print_fn=None, expand_nested="yes")
