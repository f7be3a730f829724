"""`_functional_outputs`: a model called as a layer of another returns its outputs in the structure it was given
them, as Keras 3.15 does (tests/data/keras/keras_key_order.json, written by tools/keras_key_order_fixtures.py with
KERAS_BACKEND=jax): one tensor, a list (also of one), a tuple, or a dict keyed as its outputs. A model of a dict of
outputs nested in another is checked end to end against numpy: fit, save and load, export, summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, load_model
from onnxtrain._functional_outputs import STRUCTURE_KEY, flattened
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import Functional
from onnxtrain.layers import Add, Dense, Input, SymbolicTensor
from onnxtrain.optimizers import SGD

KERAS = json.loads((Path(__file__).parent / "data" / "keras" / "keras_key_order.json").read_text())["nested_calls"]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4)).astype(np.float32)


def kind(value: Any) -> str:
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, tuple):
        return "tuple"
    return "list" if isinstance(value, list) else "tensor"


def outputs_of(case: str) -> tuple[Input, Any]:
    """The generator's `outputs` of `case`: Dense(2) "da" and Dense(3) "db" of one Input, in that structure."""
    x = Input(4, name="x")
    ha = Dense(2, name="da", activation="linear")(x)
    hb = Dense(3, name="db", activation="linear")(x)
    cases = {
        "tensor": ha,
        "list_of_one": [ha],
        "list": [ha, hb],
        "tuple": (ha, hb),
        "dict_of_one": {"a": ha},
        "dict": {"b": hb, "a": ha},
    }
    return x, cases[case]


@pytest.mark.parametrize("case", sorted(KERAS))
def test_a_graph_called_as_a_layer_returns_its_outputs_structure_as_keras(case: str) -> None:
    keras = KERAS[case]
    x, outputs = outputs_of(case)
    graph = Functional(x, outputs, name="inner", seed=0)
    assert kind(graph.output) == keras["output"]
    called = graph(Input(4))
    assert kind(called) == keras["call"]
    assert (list(called) if isinstance(called, dict) else None) == keras["keys"]
    tensors = flattened(called)
    assert all(isinstance(t, SymbolicTensor) and t.layer is graph for t in tensors)
    # each tensor is its output's (a dict's outputs are in sorted key order, its call in the dict's own)
    assert [t.output_index for t in tensors] == [graph.outputs.index(y) for y in flattened(graph.given_outputs)]
    assert [t.shape for t in tensors] == [y.shape for y in flattened(graph.given_outputs)]
    assert kind(graph.output) == keras["output"]  # now the call's tensors, in the same structure
    assert [id(t) for t in flattened(graph.output)] == [id(t) for t in tensors]
    # The structure survives a config as JSON. (Keras' JSON makes a tuple a list; onnxtrain's config records it.)
    rebuilt = Functional.from_config(json.loads(json.dumps(graph.get_config())))
    again = rebuilt(Input(4))
    assert kind(again) == keras["call"] and (list(again) if isinstance(again, dict) else None) == keras["keys"]
    assert rebuilt.get_config() == graph.get_config()


def test_a_config_saved_without_the_structure_key_calls_as_before() -> None:
    # A config written before `output_structure` was: [ref] of one tensor calls as that tensor, several as a list.
    x, outputs = outputs_of("list_of_one")
    config = Functional(x, outputs, seed=0).get_config()
    assert config.pop(STRUCTURE_KEY) == "list"
    assert isinstance(Functional.from_config(config)(Input(4)), SymbolicTensor)


@pytest.mark.parametrize(
    ("case", "written", "match"),
    [
        ("list", "set", r"'output_structure' is 'list' or 'tuple'.*Received: output_structure='set' beside a list"),
        ("dict", "list", r"Received: output_structure='list' beside a dict of output_layers"),
    ],
)
def test_a_config_with_a_structure_it_cannot_have_is_refused(case: str, written: str, match: str) -> None:
    x, outputs = outputs_of(case)
    config = {**Functional(x, outputs, seed=0).get_config(), STRUCTURE_KEY: written}
    with pytest.raises(InvalidArgumentError, match=match):
        Functional.from_config(config)


def dense(weights: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ weights[f"{name}.kernel"] + weights[f"{name}.bias"]


def outer_of_a_dict_model() -> Model:
    """outer(z) = inner(z)["a"] + lift(inner(z)["b"]), inner = Model(x, {"b": db(x), "a": da(x)})."""
    x, outputs = outputs_of("dict")
    inner = Model(x, outputs, name="inner", seed=0)
    z = Input(4, name="z")
    y = inner(z)
    assert list(y) == ["b", "a"] and [y["a"].shape, y["b"].shape] == [(2,), (3,)]
    head = Add(name="head")([y["a"], Dense(2, name="lift", activation="linear")(y["b"])])
    return Model(z, head, name="outer", seed=1)


def expected(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return dense(weights, "inner.da", x) + dense(weights, "lift", dense(weights, "inner.db", x))


@pytest.mark.slow
def test_a_nested_model_of_a_dict_of_outputs_trains_saves_and_exports(tmp_path: Path) -> None:
    outer = outer_of_a_dict_model()
    np.testing.assert_allclose(outer.predict(X), expected(outer.get_weights(), X), rtol=1e-5, atol=1e-5)
    table = outer.summary(print_fn=None)
    assert "inner(Functional)" in table and "inner[0][0]" in table and "inner[0][1]" in table
    target = RNG.normal(size=(6, 2)).astype(np.float32)
    with outer:
        outer.compile(optimizer=SGD(learning_rate=0.01), loss="mse")
        history = outer.fit(X, target, epochs=2, batch_size=3, verbose=0)
        assert history.history["loss"][1] < history.history["loss"][0]
        trained = outer.get_weights()
        predicted = outer.predict(X)
        outer.save(tmp_path / "m")
        outer.export(tmp_path / "m.onnx")
    np.testing.assert_allclose(predicted, expected(trained, X), rtol=1e-5, atol=1e-5)
    with load_model(tmp_path / "m") as loaded:
        np.testing.assert_allclose(loaded.predict(X), predicted, rtol=1e-6)
        nested = loaded.get_layer("inner")
        again = nested(Input(4))
        assert list(again) == ["b", "a"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(exported, predicted, rtol=1e-5, atol=1e-5)


def test_the_dict_a_nested_model_returns_makes_a_model_of_a_dict_of_outputs() -> None:
    # Keras: Model(z, inner(z)) of a dict-output inner model has a dict of outputs keyed alike, its outputs and
    # output names sorted by key; its predict is a dict sorted by key, its model(x) one in the dict's own order.
    x, outputs = outputs_of("dict")
    inner = Model(x, outputs, name="inner", seed=0)
    z = Input(4)
    with Model(z, inner(z), seed=1) as model:
        assert model.output_names == ["a", "b"] and kind(model.output) == "dict" and list(model.output) == ["b", "a"]
        weights = model.get_weights()
        predicted = model.predict(X)
        assert list(predicted) == ["a", "b"] and list(model(X)) == ["b", "a"]
    np.testing.assert_allclose(predicted["a"], dense(weights, "inner.da", X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predicted["b"], dense(weights, "inner.db", X), rtol=1e-5, atol=1e-5)
