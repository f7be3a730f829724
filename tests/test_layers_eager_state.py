"""An eager training call (`model(x, training=True)`, `layer(x, training=True)`) moves BatchNormalization's moving
statistics as Keras 3's does (tests/data/keras/batch_norm_eager_calls.npz, tools/keras_batch_norm_eager_calls.py),
into the layer and, for a compiled model, its engine; inference calls, `predict` and a frozen layer leave them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import Model, Sequential
from onnxtrain.layers import BatchNormalization, Dense, Input, LayerNormalization, OnnxLayer
from onnxtrain.optimizers import SGD

KERAS = np.load(Path(__file__).parent / "data" / "keras" / "batch_norm_eager_calls.npz")
X1, X2 = KERAS["x1"], KERAS["x2"]
BN = "batch_normalization_1"


def statistics(layer: BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    weights = dict(zip(("gamma", "beta", "moving_mean", "moving_variance"), layer.get_weights(), strict=True))
    return weights["moving_mean"], weights["moving_variance"]


def call_model(layer: BatchNormalization) -> Callable[[np.ndarray], np.ndarray]:
    model = Sequential.of(Input(3), layer, seed=0)
    return lambda x: model(x, training=True)


def call_layer(layer: BatchNormalization) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: layer(x, training=True)


def call_nested(layer: BatchNormalization) -> Callable[[np.ndarray], np.ndarray]:
    inner = Sequential.of(Input(3), layer, name="inner")
    inputs = Input(3)
    outer = Model(inputs, inner(inputs), seed=0)
    return lambda x: outer(x, training=True)


@pytest.mark.parametrize("momentum", ["0.99", "0.9"])
@pytest.mark.parametrize("route", [call_model, call_layer, call_nested], ids=["model", "layer", "nested_model"])
def test_two_training_calls_move_the_moving_statistics_as_keras(momentum: str, route):
    layer = BatchNormalization(momentum=float(momentum))
    call = route(layer)
    for i, x in enumerate((X1, X2), start=1):
        np.testing.assert_allclose(call(x), KERAS[f"{momentum}/output{i}"], rtol=1e-4, atol=1e-5)
        mean, variance = statistics(layer)
        np.testing.assert_allclose(mean, KERAS[f"{momentum}/mean{i}"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, KERAS[f"{momentum}/variance{i}"], rtol=1e-5, atol=1e-6)


def test_inference_calls_and_predict_leave_the_statistics():
    layer = BatchNormalization(momentum=0.9)
    model = Sequential.of(Input(3), layer, Dense(2, activation="linear"), seed=0)
    model(X1)
    model(X1, training=False)
    layer(X1)
    np.testing.assert_array_equal(np.concatenate(statistics(layer)), [0, 0, 0, 1, 1, 1])
    with model:
        model.compile(optimizer="sgd", loss="mse")
        model.predict(X1, verbose=0)
        np.testing.assert_array_equal(np.concatenate(statistics(layer)), [0, 0, 0, 1, 1, 1])


def inference_form(x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    return (x - mean) / np.sqrt(variance + 1e-3)  # gamma 1, beta 0


@pytest.mark.parametrize("freeze", ["layer", "model"])
def test_a_frozen_batch_normalization_runs_in_inference_mode_and_keeps_its_statistics(freeze: str):
    # Keras 3: a BatchNormalization with trainable=False runs in inference mode, training=True or not
    layer = BatchNormalization(momentum=0.9, trainable=freeze != "layer")
    model = Sequential.of(Input(3), layer, seed=0)
    if freeze == "model":
        model.trainable = False
    np.testing.assert_allclose(model(X1, training=True), inference_form(X1, 0.0, 1.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(X1, training=True), inference_form(X1, 0.0, 1.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate(statistics(layer)), [0, 0, 0, 1, 1, 1])


def test_a_base_called_with_training_false_keeps_its_statistics_in_a_training_call():
    # onnxtrain's rule for `base(inputs, training=False)` (docs/layers.md; Keras 3's Functional differs, #20285)
    layer = BatchNormalization(momentum=0.9)
    base = Sequential.of(Input(3), layer, name="base")
    inputs = Input(3)
    model = Model(inputs, Dense(2, activation="linear")(base(inputs, training=False)), seed=0)
    model(X1, training=True)
    np.testing.assert_array_equal(np.concatenate(statistics(layer)), [0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("call", ["model", "layer", "nested_model"])
def test_a_compiled_model_s_engine_takes_the_new_statistics_for_predict_and_fit(call: str):
    layer = BatchNormalization(momentum=0.9)
    inner = Sequential.of(Input(3), layer, name="inner")
    inputs = Input(3)
    model = Model(inputs, Dense(2, activation="linear", name="head")(inner(inputs)), seed=0)
    with model:
        model.compile(optimizer=SGD(1e-3), loss="mse", engine="portable")
        {"model": model, "layer": layer, "nested_model": inner}[call](X1, training=True)
        weights = model.get_weights()  # the engine's
        mean, variance = weights[f"inner.{BN}.moving_mean"], weights[f"inner.{BN}.moving_variance"]
        np.testing.assert_allclose(mean, KERAS["0.9/mean1"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, KERAS["0.9/variance1"], rtol=1e-5, atol=1e-6)
        head = inference_form(X1, mean, variance) @ weights["head.kernel"] + weights["head.bias"]
        np.testing.assert_allclose(model.predict(X1, verbose=0), head, rtol=1e-4, atol=1e-5)
        model.fit(X2, np.zeros((6, 2), np.float32), epochs=1, batch_size=6, verbose=0)  # one step, from them
        mean_after = model.get_weights()[f"inner.{BN}.moving_mean"]
    np.testing.assert_allclose(mean_after, KERAS["0.9/mean2"], rtol=1e-5, atol=1e-6)


def test_a_compiled_classifier_s_call_on_its_logits_moves_the_statistics_too():
    # `model(x)` of a model compiled for a loss on logits runs its graph with the last Dense linear
    layer = BatchNormalization(momentum=0.9)
    model = Sequential.of(Input(3), layer, Dense(2), seed=0)
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model(X1, training=True)
        mean = model.get_weights()[f"{BN}.moving_mean"]
    np.testing.assert_allclose(mean, KERAS["0.9/mean1"], rtol=1e-5, atol=1e-6)


def onnx_batch_norm(momentum: float) -> onnx.ModelProto:
    """x [N, 3] -> a BatchNormalization node of running mean 0 and variance 1."""
    arrays = {"scale": np.ones(3), "bias": np.zeros(3), "mean": np.zeros(3), "var": np.ones(3)}
    node = helper.make_node("BatchNormalization", ["x", *arrays], ["y"], epsilon=1e-3, momentum=momentum)
    graph = helper.make_graph(
        [node],
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(value.astype(np.float32), name) for name, value in arrays.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_an_imported_batch_normalization_in_train_mode_moves_its_statistics_too():
    # OnnxLayer(batch_norm="train"): the node's momentum, the batch's population variance (docs/foreign.md)
    layer = OnnxLayer(onnx_batch_norm(0.9), batch_norm="train", name="imported")
    model = Sequential.of(Input(3), layer)
    model(X1, training=True)
    weights = model.get_weights()
    np.testing.assert_allclose(weights["imported.mean"], KERAS["0.9/mean1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights["imported.var"], KERAS["0.9/variance1"], rtol=1e-5, atol=1e-6)


def test_layer_normalization_has_no_state_a_training_call_could_move():
    layer = LayerNormalization()
    Sequential.of(Input(3), layer, seed=0)
    before = layer.get_weights()
    np.testing.assert_allclose(layer(X1, training=True), layer(X1), rtol=1e-6)
    for old, new in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
