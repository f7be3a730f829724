"""What Keras 3.15 takes in `Model(inputs, outputs)` that onnxtrain refused before: an Input no output reads, a
nested model of several outputs called as a layer (and its `layer.output`, a list), and one tensor among the outputs
twice.

Keras' behaviour was checked in /work/venv-jax (keras 3.15.1, KERAS_BACKEND=jax); what it showed is quoted beside
each test (the values are the facts a test compares: names, refs, which arrays predict takes); the training numbers
of one tensor twice are Keras' own, from a fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxtrain import Model, load_model
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import Functional
from onnxtrain.layers import Add, Dense, Input
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 4)).astype(np.float32)
U = RNG.normal(size=(12, 2)).astype(np.float32)
Y = RNG.normal(size=(12, 3)).astype(np.float32)


def dense(weights: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ weights[f"{name}.kernel"] + weights[f"{name}.bias"]


# --- an Input that no output reads ------------------------------------------------------------------------------
# Keras: Model([x, u], Dense(3)(x)) is made; model.inputs is [x, u], model.layers [x, u, dense]; predict and fit
# take both arrays ([np.ones((2, 4)), np.ones((2, 2))] -> shape (2, 3)).
@pytest.mark.slow
def test_an_input_no_output_reads_is_taken_trained_saved_and_exported(tmp_path):
    x, u = Input(4, name="x"), Input(2, name="u")
    model = Model([x, u], Dense(3, activation="linear")(x), seed=0)
    assert [layer.name for layer in model.layers] == ["x", "u", "dense_1"] and model.inputs == [x, u]
    np.testing.assert_allclose(model.predict([X, U]), dense(model.get_weights(), "dense_1", X), rtol=1e-5, atol=1e-6)
    with model:
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit([X, U], Y, epochs=2, batch_size=4, verbose=0)
        assert history.history["loss"][1] < history.history["loss"][0]
        predicted = model.predict([X, U])
        model.save(tmp_path / "m")
        model.export(tmp_path / "m.onnx")
    with load_model(tmp_path / "m") as loaded:
        np.testing.assert_allclose(loaded.predict([X, U]), predicted, rtol=1e-6)
    assert [i.name for i in onnx.load(str(tmp_path / "m.onnx")).graph.input] == ["x", "u"]


# --- a nested model of several outputs, called as a layer -------------------------------------------------------
# Keras: `o1, o2 = sub(c)` (sub = Model(a, [Dense(3, name="o1")(a), Dense(2, name="o2")(a)], name="two")) gives two
# tensors; a layer reading o2 is connected to ["two", 0, 1]; model.layers lists `sub` itself; its summary row's
# shape is [(None, 3), (None, 2)], and "Connected to" names two[0][0] and two[0][1].
def two_outputs() -> Model:
    a = Input(4)
    return Model(a, [Dense(3, name="o1", activation="linear")(a), Dense(2, name="o2", activation="linear")(a)],
                 name="two", seed=0)  # fmt: skip


@pytest.mark.slow
def test_a_nested_model_of_two_outputs_is_a_layer_of_another_as_in_keras(tmp_path):
    sub = two_outputs()
    c = Input(4, name="c")
    o1, o2 = sub(c)
    added = Add(name="add")([o1, Dense(3, name="lift", activation="linear")(o2)])
    model = Model(c, Dense(1, name="head", activation="linear")(added), name="outer", seed=1)
    assert model.layers[1] is sub
    lift = next(entry for entry in model.get_config()["layers"] if entry["config"]["name"] == "lift")
    assert lift["inbound_nodes"] == [[["two", 0, 1]]]
    first, second = sub.predict(X)
    w = model.get_weights()
    reference = dense(w, "head", first + dense(w, "lift", second))
    np.testing.assert_allclose(model.predict(X), reference, rtol=1e-5, atol=1e-5)
    table = model.summary(print_fn=None)
    assert "two(Functional)                        [[None, 3], [None, 2]]    25           c[0]" in table
    assert "two[0][0]" in table and "two[0][1]" in table
    with model:
        model.compile(optimizer="sgd", loss="mse")
        model.fit(X, Y[:, :1], epochs=1, batch_size=4, verbose=0)
        predicted = model.predict(X)
        model.save(tmp_path / "m")
    with load_model(tmp_path / "m") as loaded:
        np.testing.assert_allclose(loaded.predict(X), predicted, rtol=1e-6)
        assert json.loads(json.dumps(loaded.get_config())) == loaded.get_config()


# Keras: `sub.output` of a model of several outputs is a list, one tensor per output (`sub.input` its Input), before
# and after `sub(c)`: its own tensors (the node that made it). onnxtrain's `layer.output` of a layer called in a
# graph is its call's tensor there (tests/test_layer_output.py), so once called, the graph's is the list of its
# call's tensors, which a feature extractor of the outer model reads.
def test_the_output_of_a_nested_model_of_two_outputs_is_a_list_as_in_keras():
    sub = two_outputs()
    graph = sub.graph  # the layer `model.layers` lists as `sub`
    assert isinstance(graph.output, list) and all(y is own for y, own in zip(graph.output, sub.outputs, strict=True))
    assert graph.input is sub.inputs[0]
    c = Input(4, name="c")
    o1, o2 = sub(c)
    assert len(graph.output) == 2 and graph.output[0] is o1 and graph.output[1] is o2 and graph.input is c
    with Model(c, graph.output, name="again", seed=1) as model:
        assert model.output_names == ["two", "two_1"]  # Keras: ['two', 'two']
        for got, want in zip(model.predict(X), sub.predict(X), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)


# --- one tensor twice among the outputs -------------------------------------------------------------------------
# Keras: Model(x, [h, h]) is made, output_names ['h', 'h'], and fit takes a target per output, each position with its
# own loss, weight and metrics; its logs hold one "h_loss" (the last position's: the two names are one). An ONNX
# graph needs an output name each: onnxtrain names them `Functional.output_names`, 'h' and 'h_1', and logs both.
# The numbers are Keras 3.15's (tests/data/keras/one_tensor_twice.npz, tools/keras_output_twice_fixtures.py).
TWICE = np.load(Path(__file__).parent / "data" / "keras" / "one_tensor_twice.npz")
TWICE_CASES = {  # case -> (activation, loss, loss_weights, metrics), as the generator compiles them
    "regression": ("linear", ["mse", "mae"], [1.0, 0.5], [["mae"], ["mse"]]),
    "softmax": ("softmax", ["sparse_categorical_crossentropy", "mse"], [1.0, 2.0], [["accuracy"], ["mae"]]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TWICE_CASES))
def test_one_tensor_twice_among_the_outputs_trains_as_in_keras(case, tmp_path):
    k = {name.split("/", 1)[1]: TWICE[name] for name in TWICE.files if name.startswith(case + "/")}
    activation, loss, loss_weights, metrics = TWICE_CASES[case]
    x = Input(4)
    h = Dense(3, name="h", activation=activation)(x)
    targets = [k["first_targets"], k["second_targets"]]
    with Model(x, [h, h], seed=0) as model:
        assert model.output_names == ["h", "h_1"]  # Keras: ['h', 'h'], which an ONNX graph cannot name
        model.compile(optimizer=SGD(learning_rate=0.1), loss=loss, loss_weights=loss_weights, metrics=metrics)
        model.set_weights([k["start_kernel"], k["start_bias"]])
        history = model.fit(k["x"], targets, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        first_metric, second_metric = f"h_{metrics[0][0]}", f"h_1_{metrics[1][0]}"  # Keras: h_<metric> both
        assert (
            list(history)
            == {  # sorted, as Keras 3's
                "regression": ["h_1_loss", "h_1_mse", "h_loss", "h_mae", "loss"],
                "softmax": ["h_1_loss", "h_1_mae", "h_accuracy", "h_loss", "loss"],
            }[case]
        )
        np.testing.assert_allclose(history["loss"], k["loss"], rtol=1e-5)
        np.testing.assert_allclose(history["h_1_loss"], k["second_loss"], rtol=1e-5)  # Keras' one h_loss
        first_loss = k["loss"] - loss_weights[1] * k["second_loss"]  # the first position's, which Keras' logs lose
        np.testing.assert_allclose(history["h_loss"], first_loss, rtol=1e-5)
        np.testing.assert_allclose(history[first_metric], k["first_metric"], rtol=1e-5)
        np.testing.assert_allclose(history[second_metric], k["second_metric"], rtol=1e-5)
        kernel, bias = model.get_weights().values()
        np.testing.assert_allclose(kernel, k["kernel"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bias, k["bias"], rtol=1e-5, atol=1e-6)
        assert model.evaluate(k["x"], targets, batch_size=4).loss == pytest.approx(k["evaluate_loss"], rel=1e-5)
        first, second = model.predict(k["x"])  # one array per position, each as its loss decides
        np.testing.assert_allclose(second, k["second_predicted"], rtol=1e-5, atol=1e-6)
        if activation == "softmax":  # class indices from the logits; the softmax's probabilities where mse reads them
            np.testing.assert_array_equal(first, k["first_predicted"].argmax(axis=1))
            np.testing.assert_allclose(model.predict_softly(k["x"])[0], k["first_predicted"], rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_allclose(first, k["first_predicted"], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(first, second)
        model.save(tmp_path / "m")
        model.export(tmp_path / "m.onnx")
    with load_model(tmp_path / "m") as loaded:
        assert loaded.output_names == ["h", "h_1"]
        for got, want in zip(loaded.predict(k["x"]), [first, second], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    exported = onnx.load(str(tmp_path / "m.onnx"))
    names = [o.name for o in exported.graph.output]
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = dict(zip(names, session.run(None, {"input": k["x"]}), strict=True))
    np.testing.assert_allclose(outputs["h_1"], k["second_predicted"], rtol=1e-5, atol=1e-6)
    if activation == "softmax":  # the first position's logits and their softmax; the second's, the layer's softmax
        assert names == ["h", "h_probabilities", "h_1"]
        np.testing.assert_allclose(outputs["h_probabilities"], k["first_predicted"], rtol=1e-5, atol=1e-6)
    else:
        assert names == ["h", "h_1"]
        np.testing.assert_allclose(outputs["h"], k["first_predicted"], rtol=1e-5, atol=1e-6)


# Keras: Model(x, {"a": h, "b": h}) is made (output_names ['h', 'h'], the layer's); loss, targets and logs are keyed
# by the dict's keys (a_loss, b_loss). onnxtrain names the outputs by the keys. Numbers: the fixture's "dict" case.
def test_one_tensor_under_two_keys_trains_as_in_keras(tmp_path):
    k = {name.split("/", 1)[1]: TWICE[name] for name in TWICE.files if name.startswith("dict/")}
    x = Input(4)
    h = Dense(3, name="h", activation="linear")(x)  # Keras' default activation; onnxtrain's is KotlinDL's relu
    targets = {"a": k["first_targets"], "b": k["second_targets"]}
    with Model(x, {"a": h, "b": h}, seed=0) as model:
        assert model.output_names == ["a", "b"]
        assert [layer.name for layer in model.layers] == ["input_1", "h"]  # a named layer keeps its name
        model.compile(
            optimizer=SGD(learning_rate=0.1),
            loss={"a": "mse", "b": "mae"},
            loss_weights={"a": 1.0, "b": 0.5},
            metrics={"a": ["mae"], "b": ["mse"]},
        )
        model.set_weights([k["start_kernel"], k["start_bias"]])
        history = model.fit(k["x"], targets, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        assert list(history) == ["a_loss", "a_mae", "b_loss", "b_mse", "loss"]  # sorted, as Keras 3's
        for key, values in history.items():
            np.testing.assert_allclose(values, k[key], rtol=1e-5)
        kernel, bias = model.get_weights().values()
        np.testing.assert_allclose(kernel, k["kernel"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bias, k["bias"], rtol=1e-5, atol=1e-6)
        assert model.evaluate(k["x"], targets, batch_size=4).loss == pytest.approx(k["evaluate_loss"], rel=1e-5)
        config = model.get_config()
        assert config["output_layers"] == {"a": ["h", 0], "b": ["h", 0]}  # Keras' layout for a dict of outputs
        model.export(tmp_path / "m.onnx")
    assert Functional.from_layer_config(config).output_names() == ["a", "b"]
    exported = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.name for o in exported.graph.output] == ["a", "b"]
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    a, b = session.run(None, {"input": k["x"]})
    np.testing.assert_allclose(a, k["x"] @ k["kernel"] + k["bias"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a, b)


def test_a_dict_key_may_differ_from_its_layers_name():
    # Keras takes Model(x, {"kind": Dense(3, name="other")(h)}): the key names the output, the layer keeps its name
    x = Input(4)
    h = Dense(6)(x)
    with Model(x, {"kind": Dense(3)(h), "size": Dense(2, name="other")(h)}, seed=0) as model:
        assert model.output_names == ["kind", "size"]
        assert [layer.name for layer in model.layers] == ["input_1", "dense_1", "kind", "other"]
        model.compile(optimizer="sgd", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
        result = model.evaluate(X, {"kind": np.arange(12) % 3, "size": U})
    assert list(result.metrics) == ["kind_loss", "size_loss"]


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        (("labels", "b"), r"\['labels'\] is the name of a graph input or of an output onnxtrain reserves.*key the"),
        ((1, "b"), "expects non-empty string keys. Received: 1"),
        (("", "b"), "expects non-empty string keys. Received: ''"),
    ],
)
def test_bad_dict_keys_are_refused(keys, match):
    x = Input(4)
    h = Dense(3, name="h")(x)
    with pytest.raises(InvalidArgumentError, match=match):
        Model(x, dict(zip(keys, [h, h], strict=True)))


# Keras: Model([a, b], [d(a), d(b)]) (one Dense called twice) names its outputs ['dense', 'dense'] and logs one
# "dense_loss"; onnxtrain names them 'dense_1' and 'dense_1_1', each computed by its own call.
def test_two_calls_of_one_layer_among_the_outputs_are_two_outputs_as_in_keras():
    a, b = Input(4, name="a"), Input(4, name="b")
    shared = Dense(2, activation="linear")
    other = X[::-1].copy()
    targets = [Y[:, :2], Y[:, 1:]]
    with Model([a, b], [shared(a), shared(b)], seed=0) as model:
        assert model.output_names == ["dense_1", "dense_1_1"]
        w = model.get_weights()
        first, second = model.predict([X, other])
        np.testing.assert_allclose(first, dense(w, "dense_1", X), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(second, dense(w, "dense_1", other), rtol=1e-5, atol=1e-6)
        model.compile(optimizer="sgd", loss="mse")
        result = model.evaluate([X, other], targets)
    for key, output, target in zip(["dense_1_loss", "dense_1_1_loss"], [first, second], targets, strict=True):
        assert result.metrics[key] == pytest.approx(float(((output - target) ** 2).mean()), rel=1e-5)


# --- a dict of outputs: its loss dict, its logs' order, what predict and a call return ---------------------------
# Keras 3.15 (/tmp/s20/W/k_order.py, k_order2.py, k_order3.py and /tmp/s20/acc2/k4_dict.py, KERAS_BACKEND=jax):
# - Model(i, {"only": Dense(2)(i)}) compiles with loss={"only": "mse"}, metrics={"only": ["mae"]} and logs
#   ['loss', 'mae'] (no prefix: one output); a model of one output named by its layer takes loss={"dense_1": "mse"}
#   and refuses another key ("Expected keys ['dense_1'] in loss dict, but found loss.keys()=['wrong']").
# - A dict {q, r, p} of outputs with loss {r, p, q} and metrics {"r": "mae", "q": ["mse", "mae"]}: evaluate's list
#   is loss, r_loss, p_loss, q_loss (the loss dict's order), then q_mae, q_mse, r_mae (sorted); with loss="mse" the
#   losses come sorted: p_loss, q_loss, r_loss.
# - predict returns a dict sorted by key (['p', 'q', 'r']); model(x) a dict in the outputs' order (['q', 'r', 'p']);
#   a one-key dict's predict is a dict too.
QRP = {"q": RNG.normal(size=(12, 2)).astype(np.float32), "r": 3 * U, "p": U + 1}


def qrp_model() -> Model:
    x = Input(4)
    return Model(x, {key: Dense(2, activation="linear", name=f"L{key}")(x) for key in "qrp"}, seed=0)


def test_one_output_takes_a_loss_dict_keyed_by_its_name_as_in_keras():
    x = Input(4)
    with Model(x, {"only": Dense(2, activation="linear", name="d")(x)}, seed=0) as model:
        model.compile(optimizer="sgd", loss={"only": "mse"}, metrics={"only": ["mae"]})
        result = model.evaluate(X, U, return_dict=True)
        error = dense(model.get_weights(), "d", X) - U
    assert list(result) == ["loss", "mae"]
    np.testing.assert_allclose([result["loss"], result["mae"]], [np.mean(error**2), np.mean(np.abs(error))], rtol=1e-5)
    x = Input(4)
    with Model(x, Dense(2, activation="linear", name="dense_1")(x)) as model:
        model.compile(optimizer="sgd", loss={"dense_1": "mse"})
        np.testing.assert_allclose(float(model.evaluate(X, U)), np.mean((model.predict(X) - U) ** 2), rtol=1e-5)
        with pytest.raises(InvalidArgumentError, match=r"keyed by this model's output name \['dense_1'\].*\['wrong'\]"):
            model.compile(optimizer="sgd", loss={"wrong": "mse"})


@pytest.mark.parametrize(
    ("loss", "logged"),
    [
        ({"r": "mse", "p": "mse", "q": "mse"}, ["r_loss", "p_loss", "q_loss", "q_mae", "q_mse", "r_mae"]),
        ("mse", ["p_loss", "q_loss", "r_loss", "q_mae", "q_mse", "r_mae"]),
    ],
)
def test_a_dict_of_outputs_lists_its_figures_in_keras_order(loss, logged, tmp_path):
    with qrp_model() as model:
        model.compile(optimizer="sgd", loss=loss, metrics={"r": "mae", "q": ["mse", "mae"]})
        result = model.evaluate(X, QRP)
        predicted = model.predict(X)
        model.save(tmp_path / "m")
    assert list(result.metrics) == logged
    assert list(result)[1:] == [result.metrics[key] for key in logged]
    for key in "pqr":
        np.testing.assert_allclose(result.metrics[f"{key}_loss"], np.mean((predicted[key] - QRP[key]) ** 2), rtol=1e-5)
    assert result.loss == pytest.approx(sum(result.metrics[f"{key}_loss"] for key in "pqr"), rel=1e-5)
    with load_model(tmp_path / "m") as loaded:
        assert list(loaded.evaluate(X, QRP).metrics) == logged


def test_a_dict_of_outputs_predicts_and_calls_a_dict_as_in_keras():
    with qrp_model() as model:
        weights = model.get_weights()
        expected = {key: dense(weights, f"L{key}", X) for key in "qrp"}
        uncompiled = model.predict(X)
        called = model(X)
        model.compile(optimizer="sgd", loss="mse")
        compiled = model.predict(X)
    assert list(uncompiled) == list(compiled) == ["p", "q", "r"]
    assert list(called) == ["q", "r", "p"]
    for got in (uncompiled, called, compiled):
        for key in "pqr":
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6)
    x = Input(4)
    with Model(x, {"only": Dense(2, activation="linear")(x)}) as model:
        assert list(model.predict(X)) == list(model(X)) == ["only"]


def test_a_dict_of_outputs_predicts_softly_a_dict():
    x = Input(4)
    with Model(x, {"size": Dense(2, activation="linear")(x), "kind": Dense(3, activation="linear")(x)}) as model:
        model.compile(optimizer="sgd", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
        soft, raw = model.predict_softly(X), model.predict_outputs(X)
    assert list(soft) == ["kind", "size"]
    np.testing.assert_allclose(soft["kind"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(soft["size"], raw["size"], rtol=1e-6)


def test_a_one_output_model_takes_y_and_weights_keyed_by_its_output_name_as_keras():
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y, w = np.ones((8, 2), np.float32), np.linspace(0.5, 1.5, 8).astype(np.float32)
    results = []
    for keyed in (False, True):
        i = Input(3)
        with Model(i, {"only": Dense(2, activation="linear")(i)}, seed=0) as model:
            model.compile(optimizer="sgd", loss={"only": "mse"})
            given_y, given_w = ({"only": y}, {"only": w}) if keyed else (y, w)
            history = model.fit(x, given_y, sample_weight=given_w, epochs=2, batch_size=4, shuffle=False, verbose=0)
            results.append((history.history["loss"], model.evaluate(x, given_y, verbose=0), model.get_weights()))
            if keyed:
                with pytest.raises(InvalidArgumentError, match=r"a dict \{'only': array\} keyed by its output's name"):
                    model.fit(x, {"other": y}, epochs=1, verbose=0)
    (loss, evaluated, weights), (keyed_loss, keyed_evaluated, keyed_weights) = results
    assert loss == keyed_loss and evaluated == keyed_evaluated
    assert all(np.array_equal(weights[k], keyed_weights[k]) for k in weights)
