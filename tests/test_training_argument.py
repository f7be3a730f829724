"""Keras' `training=` call argument on symbolic tensors: `base(inputs, training=False)`, Keras' transfer learning.

A call given training=False runs in inference mode in every graph (train step, evaluation, export): its
BatchNormalization normalizes by its moving statistics and keeps them, its Dropout is the identity, and gradients
still flow through it to the weights that train. Checked against numpy (the forward with moving statistics), finite
differences (the gradients), and Keras 3's weights after three SGD steps (tools/keras_training_false_steps.py); then
the config, save/load and summary keep the argument, and training=True is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Model, autodiff, emit, load_model
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.layers import BatchNormalization, Dense, Dropout, Input, Layer, MultiHeadAttention
from onnxtrain.optimizers import SGD

MOMENTUM, EPSILON = 0.8, 1e-3


def base_model(trainable: bool = True) -> Model:
    """Keras' base: Input(4) -> Dense(6, tanh) -> BatchNormalization -> Dropout(0.5)."""
    x = Input(4)
    h = BatchNormalization(momentum=MOMENTUM)(Dense(6, activation="tanh")(x))
    base = Model(x, Dropout(0.5)(h), name="base")
    base.trainable = trainable
    return base


def transfer_model(case: str = "fine_tune") -> Model:
    """The fixture's model (the tool's `make_model`): the base called with training=False under a Dense(2) head;
    "layer_call": BatchNormalization and Dropout called with training=False themselves."""
    inputs = Input(4)
    if case == "layer_call":
        h = BatchNormalization(momentum=MOMENTUM)(Dense(6, activation="tanh")(inputs), training=False)
        return Model(inputs, Dense(2, activation="linear")(Dropout(0.5)(h, training=False)), seed=0)
    base = base_model(trainable=case != "frozen")
    return Model(inputs, Dense(2, activation="linear")(base(inputs, training=False)), seed=0)


def weights_in_order(model: Model, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Keras' `get_weights()` list as onnxtrain's weights by name: the same order (kernels [in, out] in both)."""
    names = list(model.get_weights())
    assert [model.get_weights()[n].shape for n in names] == [a.shape for a in arrays]
    return dict(zip(names, arrays, strict=True))


def data(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)


def numpy_forward(w: dict[str, np.ndarray], x: np.ndarray, prefix: str = "base.") -> np.ndarray:
    """The model in inference mode: the BatchNormalization by its moving statistics, no dropout."""
    h = np.tanh(x @ w[f"{prefix}dense_1.kernel"] + w[f"{prefix}dense_1.bias"])
    bn = f"{prefix}batch_normalization_1."
    h = (h - w[bn + "moving_mean"]) / np.sqrt(w[bn + "moving_variance"] + EPSILON) * w[bn + "gamma"] + w[bn + "beta"]
    head = "dense_2." if prefix == "" else "dense_1."
    return h @ w[f"{head}kernel"] + w[f"{head}bias"]


def with_random_statistics(model: Model) -> dict[str, np.ndarray]:
    """Set every weight to a seeded draw (a positive moving variance), so the moving statistics matter."""
    rng = np.random.default_rng(7)
    weights = {name: rng.normal(0.0, 0.5, size=v.shape).astype(np.float32) for name, v in model.get_weights().items()}
    for name in weights:
        if name.endswith("moving_variance"):
            weights[name] = rng.uniform(0.5, 2.0, size=weights[name].shape).astype(np.float32)
    model.set_weights(weights)
    return weights


# --- the train step: inference mode, gradients through it --------------------------------------------------------
@pytest.mark.parametrize("case", ["fine_tune", "layer_call"])
def test_sgd_steps_keep_the_moving_statistics_and_train_with_them(case: str) -> None:
    """Each train step's logits are numpy's inference-mode forward of the weights before it (moving statistics, no
    dropout); after three steps the moving statistics are unchanged and gamma, beta and the kernels moved."""
    x, y = data()
    with transfer_model(case) as model:
        prefix = "" if case == "layer_call" else "base."
        first = with_random_statistics(model)
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        for start in range(0, len(x), 8):
            before = model.get_weights()
            _, logits = model._trainer.engine.train_step(x[start : start + 8], y[start : start + 8])
            np.testing.assert_allclose(
                logits, numpy_forward(before, x[start : start + 8], prefix), rtol=1e-5, atol=1e-5
            )
        after = model.get_weights()
    for name, value in first.items():
        if "moving_" in name:
            np.testing.assert_array_equal(after[name], value, err_msg=name)
        else:
            assert not np.allclose(after[name], value), f"{name} did not train"


def test_a_call_without_training_updates_the_moving_statistics() -> None:
    """The contrast: the same base called as Keras' default (training=None) takes its batch statistics in fit."""
    inputs = Input(4)
    with Model(inputs, Dense(2, activation="linear")(base_model()(inputs)), seed=0) as model:
        first = with_random_statistics(model)
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        model.fit(*data(), batch_size=8, epochs=1, shuffle=False, verbose=0)
        assert not np.allclose(
            model.get_weights()["base.batch_normalization_1.moving_mean"],
            first["base.batch_normalization_1.moving_mean"],
        )


@pytest.mark.slow
def test_gradients_through_the_inference_mode_call_match_finite_differences() -> None:
    """d loss / d (input, gamma, beta, kernel) of the training graph, through the BatchNormalization's moving
    statistics (constants for the gradient), against central differences of the same float32 graph."""
    model = transfer_model()
    weights = with_random_statistics(model)
    wrt = ["base.batch_normalization_1.gamma", "base.batch_normalization_1.beta", "base.dense_1.kernel"]
    proto = emit.loss_model(model.graph, "mse", training=True)  # refuses state updates: there are none
    proto = autodiff.gradients(proto, [emit.INPUT_NAME, *wrt])
    initializers = {init.name: i for i, init in enumerate(proto.graph.initializer)}
    x, y = data(6, seed=3)

    def run(values: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        changed = proto.__class__.FromString(proto.SerializeToString())
        for name in wrt:
            changed.graph.initializer[initializers[name]].CopyFrom(
                __import__("onnx").numpy_helper.from_array(values[name], name)
            )
        session = ort.InferenceSession(changed.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(outputs, {emit.INPUT_NAME: values[emit.INPUT_NAME], emit.LABELS_NAME: y})

    values = {emit.INPUT_NAME: x, **{name: weights[name] for name in wrt}}
    grads = run(values, [f"{name}_grad" for name in [emit.INPUT_NAME, *wrt]])
    rng = np.random.default_rng(11)
    for name, gradient in zip([emit.INPUT_NAME, *wrt], grads, strict=True):
        for flat in rng.choice(values[name].size, size=min(6, values[name].size), replace=False):
            index = np.unravel_index(flat, values[name].shape)
            up = {**values, name: values[name].copy()}
            down = {**values, name: values[name].copy()}
            up[name][index] += 1e-2
            down[name][index] -= 1e-2
            numeric = (float(run(up, [emit.LOSS_NAME])[0]) - float(run(down, [emit.LOSS_NAME])[0])) / 2e-2
            np.testing.assert_allclose(gradient[index], numeric, rtol=2e-2, atol=2e-4, err_msg=f"{name}{index}")


# --- Keras 3's steps (tools/keras_training_false_steps.py) --------------------------------------------------------
@pytest.mark.parametrize("case", ["fine_tune", "frozen", "layer_call"])
def test_three_sgd_steps_match_keras(case: str) -> None:
    with np.load(KERAS_FIXTURES / f"training_false_sgd_steps_{case}.npz") as fixture:
        x, y, losses = fixture["x"], fixture["y"], fixture["losses"]
        count = int(fixture["weights"])
        before = [fixture[f"before{i}"] for i in range(count)]
        after = [fixture[f"after{i}"] for i in range(count)]
    with transfer_model(case) as model:
        model.set_weights(weights_in_order(model, before))
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        stepped = model.get_weights()
    assert history.history["loss"][0] == pytest.approx(float(np.mean(losses)), rel=1e-5)
    for name, expected in weights_in_order(model, after).items():
        np.testing.assert_allclose(stepped[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)


# --- every graph: evaluation, prediction, the export, an eager call, ort-training ---------------------------------
def test_evaluation_prediction_and_eager_calls_read_the_moving_statistics() -> None:
    x, y = data(8)
    with transfer_model() as model:
        weights = with_random_statistics(model)
        expected = numpy_forward(weights, x)
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model(x, training=True), expected, rtol=1e-5, atol=1e-5)  # inner call: False
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        mse = float(np.mean((expected - y) ** 2))
        assert model.evaluate(x, y, verbose=0) == pytest.approx(mse, rel=1e-5)


@pytest.mark.training
def test_the_ort_training_engine_trains_a_base_called_in_inference_mode() -> None:
    """No layer state and no dropout draws in the step: the ort-training engine takes what it refuses otherwise."""
    x, y = data()
    with transfer_model() as model:
        first = with_random_statistics(model)
        model.compile(optimizer=SGD(0.1), loss="mse", engine="ort-training")
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        after = model.get_weights()
    np.testing.assert_array_equal(
        after["base.batch_normalization_1.moving_mean"], first["base.batch_normalization_1.moving_mean"]
    )
    assert not np.allclose(after["base.batch_normalization_1.gamma"], first["base.batch_normalization_1.gamma"])


# --- config, save/load, summary -----------------------------------------------------------------------------------
def test_the_config_keeps_the_argument_as_keras_keeps_a_calls_kwargs() -> None:
    model = transfer_model()
    config = model.graph.get_config()
    entry = next(layer for layer in config["layers"] if layer["config"]["name"] == "base")
    assert entry["inbound_nodes"] == [{"args": [["input_1", 0]], "kwargs": {"training": False}}]
    rebuilt = Functional.from_config(config)
    assert [node.training for node in rebuilt._nodes] == [None, False, None]
    assert rebuilt.get_config()["layers"] == config["layers"]


def test_a_malformed_call_entry_is_refused_naming_it() -> None:
    config = transfer_model().graph.get_config()
    entry = next(layer for layer in config["layers"] if layer["config"]["name"] == "base")
    entry["inbound_nodes"] = [{"args": [["input_1", 0]], "kwargs": {"mask": None}}]
    with pytest.raises(InvalidArgumentError, match=r"call of 'base' is a list of \[layer name, call index\] refs"):
        Functional.from_config(config)


def test_save_and_load_keep_inference_mode(tmp_path: Path) -> None:
    x, y = data()
    with transfer_model() as model:
        first = with_random_statistics(model)
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        model.save(tmp_path / "model")
        expected = model.predict(x, verbose=0)
    with load_model(tmp_path / "model") as loaded:
        assert [node.training for node in loaded.graph._nodes] == [None, False, None]
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6)
        loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        statistics = loaded.get_weights()["base.batch_normalization_1.moving_variance"]
    np.testing.assert_array_equal(statistics, first["base.batch_normalization_1.moving_variance"])


def test_the_summary_shows_the_argument() -> None:
    lines: list[str] = []
    transfer_model().summary(print_fn=lines.append)
    assert "input_1[0] (training=False)" in "\n".join(lines)


# --- what a call takes --------------------------------------------------------------------------------------------
CALLS: dict[str, Any] = {
    "dropout": lambda x, **kw: Dropout(0.5)(x, **kw),
    "batch_normalization": lambda x, **kw: BatchNormalization()(x, **kw),
    "attention": lambda x, **kw: MultiHeadAttention(2, 4, dropout=0.5)(x, x, **kw),
    "model": lambda x, **kw: Model(y := Input(6, 4), Dropout(0.5)(y))(x, **kw),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_training_false_is_recorded_and_true_refused(call: Any) -> None:
    x = Input(6, 4)
    assert call(x, training=False).training is False
    assert call(x, training=np.False_).training is False
    assert call(x).training is None
    with pytest.raises(UnsupportedError, match=r"training=True is not supported on symbolic tensors.*Monte-Carlo"):
        call(x, training=True)
    with pytest.raises(InvalidTypeError, match=r"training expects True, False or None. Received: 'no'"):
        call(x, training="no")


def test_a_dropout_called_in_inference_mode_is_the_identity_in_the_train_step() -> None:
    """The train step's logits with the head's Dropout called with training=False equal the eval graph's."""
    inputs = Input(4)
    layers: list[Layer] = [Dense(8), Dropout(0.9)]
    h = layers[1](layers[0](inputs), training=False)
    x, y = data(8)
    with Model(inputs, Dense(2, activation="linear")(h), seed=0) as model:
        model.compile(optimizer=SGD(0.01), loss="mse", engine="portable")
        expected = model.predict(x, verbose=0)  # before the step updates the weights
        _, logits = model._trainer.engine.train_step(x, y)
        np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)
