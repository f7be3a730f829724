"""`_functional_calls`: a Functional of several outputs called as a layer of another (one tensor per output, its
call emitted once, its refs in the config and the summary), and an input no output reads, both as Keras 3.15 takes
them (/work/venv-jax, keras 3.15.1, KERAS_BACKEND=jax); forwards in ONNX Runtime against numpy."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.functional import Functional
from onnxtrain.layers import Add, Concatenate, Dense, Input
from tests.test_functional import data, dense, run


def two_outputs() -> Functional:
    x = Input(4)
    return Functional(x, [Dense(3, activation="linear")(x), Dense(2, activation="linear")(x)], name="two", seed=0)


def test_a_graph_of_several_outputs_called_as_a_layer_returns_one_tensor_per_output() -> None:
    # Keras 3.15 (KERAS_BACKEND=jax): `outs = sub(x)` of a model of two outputs is a list of two KerasTensors, and a
    # layer reading the second is connected to ["two", 0, 1] in the config (layer, call, tensor index).
    sub = two_outputs()
    x = Input(4, name="x")
    outs = sub(x)
    assert isinstance(outs, list) and [o.shape for o in outs] == [(3,), (2,)]
    assert [(o.layer, o.call_index, o.output_index) for o in outs] == [(sub, 0, 0), (sub, 0, 1)]
    graph = Functional(x, Add()([outs[0], Dense(3, activation="linear", name="lift")(outs[1])]), seed=1)
    config = graph.get_config()
    lift = next(entry for entry in config["layers"] if entry["config"]["name"] == "lift")
    assert lift["inbound_nodes"] == [[["two", 0, 1]]]
    xs = data(5, 4)
    (y,), builder = run(graph, xs)
    p = graph.params_by_name()
    reference = dense(p, "two.dense_1", xs) + dense(p, "lift", dense(p, "two.dense_2", xs))
    np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5)
    model = builder.build()
    assert sum(node.op_type in ("Gemm", "MatMul") for node in model.graph.node) == 3  # the nested call: once
    rebuilt = Functional.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    np.testing.assert_allclose(run(rebuilt, xs)[0][0], y, rtol=1e-6)
    assert graph.summary_rows()[1][1:] == ("[[None, 3], [None, 2]]", "25", "x[0]")
    assert graph.summary_rows()[2][3] == "two[0][1]"  # Keras: two[0][1]


def test_a_graph_of_several_outputs_called_twice_shares_its_weights() -> None:
    sub = two_outputs()
    a, b = Input(4, name="a"), Input(4, name="b")
    first, second = sub(a), sub(b)
    graph = Functional([a, b], Concatenate()([first[1], second[0]]), seed=0)
    xa, xb = data(3, 4), data(3, 4, seed=1)
    (y,), _ = run(graph, xa, xb)
    p = graph.params_by_name()
    assert list(p) == ["two.dense_1.kernel", "two.dense_1.bias", "two.dense_2.kernel", "two.dense_2.bias"]
    reference = np.concatenate([dense(p, "two.dense_2", xa), dense(p, "two.dense_1", xb)], axis=1)
    np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5)


def test_a_graph_of_several_outputs_refuses_inputs_of_another_shape() -> None:
    with pytest.raises(ShapeError, match=r"Functional layer 'two' was built for inputs of shape \[None, 4\]"):
        two_outputs()(Input(5))


def test_an_input_no_output_reads_is_taken_as_keras_takes_it() -> None:
    # Keras 3.15: Model([x, u], Dense(3)(x)) is made, lists u among its inputs and layers, and predicts from both.
    a, b = Input(3, name="a"), Input(2, name="b")
    graph = Functional([a, b], Dense(2, activation="linear")(a), seed=0)
    assert [layer.name for layer in graph.layers] == ["a", "b", "dense_1"]
    xa, xb = data(4, 3), data(4, 2, seed=1)
    (y,), _ = run(graph, xa, xb)
    np.testing.assert_allclose(y, dense(graph.params_by_name(), "dense_1", xa), rtol=1e-5, atol=1e-6)
    assert graph.get_config()["input_layers"] == [["a", 0], ["b", 0]]


def _nested_models_own_input() -> None:
    # /tmp/s21/T1/nest/nest4.py: a layer inside a nested model reads that model's own Input, another Input than the
    # outer model's though of the same name (Keras 3.15: "Output with path `` is not connected to `inputs`")
    own = Input(4, name="input_1")
    inner = Functional(own, Dense(3, name="sm")(Dense(8)(own)), name="inner", seed=0)
    outer_input = Input(4, name="input_1")
    Functional(outer_input, inner(outer_input))  # the nested model's call reads the outer Input
    Functional(outer_input, inner.layers[-1].output)  # its layer's own call does not


def _an_input_outside() -> None:
    a, b = Input(3, name="a"), Input(3, name="b")
    Functional(a, Add()([a, b]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            _nested_models_own_input,
            r"^Graph disconnected: outputs\[0\] \(Dense layer 'sm' output\) depends on Input 'input_1', a different "
            r"Input from the Input 'input_1' in inputs \(Input 'input_1'\): two Inputs of one name, typically a "
            r"nested model's own Input and the outer model's\..*e\.g\. Model\(inner\.inputs, "
            r"inner\.get_layer\('sm'\)\.output\)",
        ),
        (
            _an_input_outside,
            r"^Graph disconnected: outputs\[0\] \(Add layer output\) depends on Input 'b', which is not in inputs "
            r"\(Input 'a'\)\. Add it to inputs\.$",
        ),
    ],
)
def test_an_output_on_an_input_outside_inputs_is_refused_naming_both(make: Callable[[], None], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        make()
