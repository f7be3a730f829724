"""A model of a dict of outputs whose keys are not sorted, `Model(x, {"score": ..., "box": ...})`: Keras 3 flattens
the dict in sorted key order, so its layers, weights, outputs, output names, predict's dict and every list-form
argument (loss, loss_weights, metrics, y) follow the sorted keys, while `model.output`, a call and the config keep
the dict's own order. Compared with Keras 3.15's structure and numbers (tests/data/keras/dict_outputs.json and .npz,
written by tools/keras_dict_outputs_fixtures.py with KERAS_BACKEND=jax); saves written before onnxtrain sorted the
outputs (tests/data/saved_before_sorted_outputs/, its README) load with their weights and settings on the same
heads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxtrain import Model, load_model
from onnxtrain._functional_outputs import ORDER_KEY, WRITTEN_POSITIONS, written_positions
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import Functional
from onnxtrain.layers import Dense, Input
from onnxtrain.multi_output import OutputLosses
from onnxtrain.optimizers import SGD

DATA = Path(__file__).parent / "data"
KERAS = json.loads((DATA / "keras" / "dict_outputs.json").read_text())
K = np.load(DATA / "keras" / "dict_outputs.npz")
STRUCTURE = KERAS["structure"]
SAVED = DATA / "saved_before_sorted_outputs"
BEFORE = json.loads((SAVED / "expected.json").read_text())
B = np.load(SAVED / "expected.npz")


def keras_model() -> Model:
    """tools/keras_dict_outputs_fixtures.py's model: Dense(5, tanh) "h", then {"score": Dense(2), "box": Dense(3)}."""
    x = Input(4, name="x")
    h = Dense(5, activation="tanh", name="h")(x)
    score = Dense(2, name="score", activation="linear")(h)
    box = Dense(3, name="box", activation="linear")(h)
    return Model(x, {"score": score, "box": box}, seed=0)


def keras_list(prefix: str) -> list[np.ndarray]:
    return [K[f"{prefix}_{k}"] for k in range(6)]


def close(actual: dict[str, Any], expected: dict[str, Any], rtol: float = 1e-5) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(actual[key], value, rtol=rtol, atol=1e-6, err_msg=key)


def test_a_dict_of_outputs_is_ordered_as_keras_orders_it() -> None:
    model = keras_model()
    assert [layer.name for layer in model.layers] == STRUCTURE["layers"]
    assert model.output_names == STRUCTURE["output_names"]
    assert [list(y.shape) for y in model.outputs] == STRUCTURE["output_shapes"]
    assert list(model.output) == STRUCTURE["output_keys"]
    assert model.output["box"] is model.outputs[0] and model.output["score"] is model.outputs[1]
    assert list(model.predict(K["x"])) == STRUCTURE["predict_keys"]
    assert list(model(K["x"])) == STRUCTURE["call_keys"]
    assert list(model.get_config()["output_layers"]) == STRUCTURE["config_output_layers"]
    assert [name.replace(".", "/") for name in model.get_weights()] == STRUCTURE["weight_paths"]
    table = model.summary(print_fn=None)
    assert sorted(STRUCTURE["summary_layers"], key=lambda name: table.index(f"{name}(")) == STRUCTURE["layers"]


def test_keras_weights_list_sets_each_head() -> None:
    # Keras' idiom: model.set_weights(keras_model.get_weights()); the list follows the sorted keys
    model = keras_model()
    model.set_weights(keras_list("w0"))
    predicted = model.predict(K["x"])
    close(predicted, {"score": K["predict0_score"], "box": K["predict0_box"]})
    assert [w.shape for w in model.get_weights().values()] == [w.shape for w in keras_list("w0")]


@pytest.mark.parametrize("form", ["list", "dict"])
def test_per_output_arguments_train_as_keras(form: str) -> None:
    # list: loss, loss_weights, metrics and y in sorted key order (box, then score); dict: the same by name
    model = keras_model()
    model.set_weights(keras_list("w0"))
    x, y_box, y_score = K["x"], K["y_box"], K["y_score"]
    if form == "list":
        settings: dict[str, Any] = {"loss": ["mse", "mae"], "loss_weights": [0.5, 2.0], "metrics": [["mae"], ["mse"]]}
        y: Any = [y_box, y_score]
        weights = None
    else:
        settings = {
            "loss": {"score": "mae", "box": "mse"},
            "loss_weights": {"score": 2.0, "box": 0.5},
            "metrics": {"score": ["mse"], "box": ["mae"]},
        }
        y = {"score": y_score, "box": y_box}
        weights = {"score": np.ones(len(x), np.float32), "box": K["sw"]}
    with model:
        model.compile(optimizer=SGD(learning_rate=0.05), **settings)
        history = model.fit(x, y, sample_weight=weights, batch_size=8, epochs=2, shuffle=False, verbose=0)
        close(history.history, KERAS[form]["history"])
        close(model.evaluate(x, y, sample_weight=weights, batch_size=8, return_dict=True), KERAS[form]["evaluate"])
        for ours, theirs in zip(model.get_weights().values(), keras_list(f"{form}_w1"), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        close(model.predict(x), {key: K[f"{form}_predict_{key}"] for key in ("box", "score")})


@pytest.mark.slow
def test_saved_loaded_and_exported_in_the_same_order(tmp_path: Path) -> None:
    model = keras_model()
    model.set_weights(keras_list("w0"))
    with model:
        model.compile(optimizer=SGD(learning_rate=0.05), loss=["mse", "mae"], loss_weights=[0.5, 2.0])
        model.fit(K["x"], [K["y_box"], K["y_score"]], batch_size=8, epochs=1, shuffle=False, verbose=0)
        predicted = model.predict(K["x"])
        model.save(tmp_path / "m")
        model.export(tmp_path / "m.onnx")
    with load_model(tmp_path / "m") as loaded:
        assert [layer.name for layer in loaded.layers] == STRUCTURE["layers"]
        assert loaded.output_names == STRUCTURE["output_names"] and list(loaded.output) == STRUCTURE["output_keys"]
        assert [spec.name for spec in loaded.loss.outputs] == ["box", "score"]
        assert [spec.weight for spec in loaded.loss.outputs] == [0.5, 2.0]
        close(loaded.predict(K["x"]), predicted, rtol=1e-6)
    exported = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.name for o in exported.graph.output] == STRUCTURE["output_names"]
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    box, score = session.run(None, {session.get_inputs()[0].name: K["x"]})
    close({"box": box, "score": score}, predicted)


def test_a_config_keeps_the_dict_order_and_says_its_refs_count_sorted() -> None:
    graph = keras_model().graph
    config = graph.get_config()
    assert list(config["output_layers"]) == ["score", "box"] and config[ORDER_KEY] == "sorted"
    rebuilt = Functional.from_config(json.loads(json.dumps(config)))
    assert rebuilt.output_keys == ["box", "score"] and rebuilt.given_keys == ["score", "box"]
    assert WRITTEN_POSITIONS not in rebuilt.__dict__ and rebuilt.get_config() == config
    x = Input(4)
    in_order = Functional(x, {"a": Dense(2)(x), "b": Dense(2)(x)}, seed=0).get_config()
    assert ORDER_KEY not in in_order  # sorted already: its refs count the same either way


@pytest.mark.parametrize(
    ("keys", "marker", "expected"),
    [
        (["score", "box"], None, [1, 0]),  # before: the refs counted score 0, box 1; now box is output 0
        (["score", "box"], "sorted", None),
        (["box", "score"], None, None),
        (["c", "a", "b"], None, [1, 2, 0]),
    ],
)
def test_written_positions_of_a_config(keys: list[str], marker: str | None, expected: list[int] | None) -> None:
    config: dict[str, Any] = {"output_layers": {key: [key, 0] for key in keys}}
    if marker is not None:
        config[ORDER_KEY] = marker
    assert written_positions(config, sorted(keys)) == expected


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({ORDER_KEY: "given"}, r"'output_order' is 'sorted'.*Received: output_order='given' beside a dict"),
        (
            {ORDER_KEY: "sorted", "output_layers": [["score", 0], ["box", 0]]},
            r"Received: output_order='sorted' beside a list of output_layers",
        ),
    ],
)
def test_a_config_with_an_order_it_cannot_have_is_refused(change: dict[str, Any], match: str) -> None:
    config = {**keras_model().graph.get_config(), **change}
    with pytest.raises(InvalidArgumentError, match=match):
        Functional.from_config(config)


def test_keys_of_one_name_as_text_are_refused() -> None:
    x = Input(4)
    with pytest.raises(InvalidArgumentError, match=r"keys of distinct names. Received keys: \[1, '1'\]"):
        Functional(x, {1: Dense(2)(x), "1": Dense(2)(x)})  # type: ignore[dict-item]


# --- saves from before the outputs were sorted --------------------------------------------------------------------
def test_a_save_from_before_loads_with_its_heads_and_settings() -> None:
    # saved as layers [x, h, score, box] with the loss dict's settings listed score first
    before = BEFORE["dict_model"]
    assert before["layers"] == ["x", "h", "score", "box"]
    targets = {"score": B["y_score"], "box": B["y_box"]}
    with load_model(SAVED / "dict_model") as loaded:
        assert [layer.name for layer in loaded.layers] == ["x", "h", "box", "score"]
        assert loaded.output_names == ["box", "score"]
        close(loaded.predict(B["x"]), {key: B[f"dict_model_{key}"] for key in ("score", "box")}, rtol=1e-6)
        specs = {spec.name: (spec.loss.name, spec.weight) for spec in loaded.loss.outputs}
        assert [spec.name for spec in loaded.loss.outputs] == ["box", "score"]
        assert specs == {"box": ("mse", 0.5), "score": ("mae", 2.0)}
        close(loaded.evaluate(B["x"], targets, return_dict=True), before["evaluate"])
        # the saved momentum resumes on the same weights: the next epoch as the saving model ran it
        history = loaded.fit(B["x"], targets, batch_size=4, epochs=1, shuffle=False, verbose=0)
        close(history.history, before["fit_again"])


def test_a_nested_model_saved_before_reads_the_outputs_it_read() -> None:
    # outer = Model(z, {"y": a + lift(b), "raw": b}) with `b, a = inner(z)`, inner's dict {"b", "a"} read by position
    with load_model(SAVED / "nested_model") as loaded:
        assert loaded.output_names == ["raw", "y"]
        close(loaded.predict(B["x"]), {key: B[f"nested_model_{key}"] for key in ("y", "raw")}, rtol=1e-6)
        inner = loaded.get_layer("inner")
        assert inner.output_names == ["a", "b"]
        config = loaded.get_config()
    head = next(entry for entry in config["layers"] if entry["config"]["name"] == "head")
    lift = next(entry for entry in config["layers"] if entry["config"]["name"] == "lift")
    assert lift["inbound_nodes"] == [[["inner", 0, 1]]] and head["inbound_nodes"][0][0] == ["inner", 0, 0]
    assert config["output_layers"] == {"y": ["head", 0], "raw": ["inner", 0, 1]}
    rebuilt = Model.from_config(json.loads(json.dumps(config)))
    rebuilt.set_weights(loaded.get_weights())
    close(rebuilt.predict(B["x"]), {key: B[f"nested_model_{key}"] for key in ("y", "raw")}, rtol=1e-6)


def unsorted_save(tmp_path: Path) -> Path:
    """`dict_model` with its losses in the dict's key order and no `log_order`: as a save whose per-output
    settings were listed unsorted, which `OutputLosses.from_config` reads in the order written."""
    folder = tmp_path / "dict_model"
    folder.mkdir()
    for path in (SAVED / "dict_model").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    del config["compile"]["loss"]["log_order"]
    assert [spec["name"] for spec in config["compile"]["loss"]["outputs"]] == ["score", "box"]  # unsorted
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("compile", [True, False])
def test_a_save_listing_its_losses_unsorted_loads_them_on_their_outputs(tmp_path: Path, compile: bool) -> None:
    targets = {"score": B["y_score"], "box": B["y_box"]}
    with load_model(unsorted_save(tmp_path), compile=compile) as loaded:
        assert loaded.output_names == ["box", "score"]
        assert isinstance(loaded.trained_loss, OutputLosses)
        assert loaded.trained_loss.names == ["box", "score"]  # the model's order, each with its own settings
        specs = {spec.name: (spec.loss.name, spec.weight) for spec in loaded.trained_loss.outputs}
        assert specs == {"box": ("mse", 0.5), "score": ("mae", 2.0)}
        close(loaded.predict(B["x"]), {key: B[f"dict_model_{key}"] for key in ("score", "box")}, rtol=1e-6)
        if compile:  # compile(loss=<the save's OutputLosses>) takes them in the model's order
            assert [spec.name for spec in loaded.loss.outputs] == ["box", "score"]
            close(loaded.evaluate(B["x"], targets, return_dict=True), BEFORE["dict_model"]["evaluate"])


@pytest.mark.parametrize(
    ("log_order", "expected"),
    [
        (["score", "box"], ["box", "score"]),  # a dict of outputs' (it has a log order): its outputs sorted
        ([], ["score", "box"]),  # a list of outputs': in its order
    ],
)
def test_saved_output_losses_read_in_the_models_order(log_order: list[str], expected: list[str]) -> None:
    config = {
        "name": "output_losses",
        "outputs": [
            {"name": "score", "shape": [2], "loss": {"name": "mae"}, "weight": 2.0, "metrics": ["mse"]},
            {"name": "box", "shape": [3], "loss": {"name": "mse"}, "weight": 0.5, "metrics": []},
        ],
        "log_order": log_order,
    }
    losses = OutputLosses.from_config(config)
    assert losses.names == expected and list(losses.log_order) == log_order
    by_name = {spec.name: (spec.loss.name, spec.weight, [m.value for m in spec.metrics]) for spec in losses.outputs}
    assert by_name == {"score": ("mae", 2.0, ["mse"]), "box": ("mse", 0.5, [])}
    assert losses.ordered_as(["score", "box"]).names == ["score", "box"]
    assert losses.ordered_as(["other", "box"]) is losses  # other names: left as they are
