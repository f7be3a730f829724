"""The portable engine's train step, differentiated by `onnxtrain.autodiff`: every layer, activation and loss
against central finite differences.

The analytic gradient is read from one SGD(learning_rate=1) train step (w_new = w - g), so the check covers the
graph the engine really runs. The custom-layer tests at the end are the guide: a layer emits only its forward,
and an op without a gradient rule gets one with `@onnxtrain.autodiff.rule`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from onnxtrain import Sequential
from onnxtrain import activations as act
from onnxtrain import losses as loss_module
from onnxtrain.autodiff import RULES, GradientContext, rule
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Flatten, Input, Layer, Shape
from onnxtrain.optimizers import SGD
from onnxtrain.portable import PortableEngine

EPS = 3e-3
RNG = np.random.default_rng(11)
X = RNG.normal(size=(8, 2, 3)).astype(np.float32)


def analytic_gradients(engine: PortableEngine, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    before = engine.get_weights()
    engine.train_step(x, y)
    after = engine.get_weights()
    engine.set_weights(before)
    return {name: before[name].astype(np.float64) - after[name] for name in before}


def numeric_gradients(engine: PortableEngine, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    weights = engine.get_weights()
    grads = {}
    for name, w in weights.items():
        g = np.zeros(w.shape)
        for index in np.ndindex(w.shape):
            values = []
            for sign in (1, -1):
                shifted = w.copy()
                shifted[index] += sign * EPS
                engine.set_weights({name: shifted})
                values.append(engine.eval_step(x, y)[0])
            engine.set_weights({name: w})
            g[index] = (values[0] - values[1]) / (2 * EPS)
        grads[name] = g
    return grads


def check_gradients(model: Sequential, loss: Any, y: np.ndarray, x: np.ndarray = X) -> None:
    engine = PortableEngine(model.layers, loss_module.get(loss), SGD(learning_rate=1.0))
    try:
        analytic, numeric = analytic_gradients(engine, x, y), numeric_gradients(engine, x, y)
    finally:
        engine.close()
    for name in analytic:
        np.testing.assert_allclose(analytic[name], numeric[name], rtol=2e-2, atol=2e-4, err_msg=name)


ACTIVATIONS = [
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "selu",
    "softmax",
    "elu",
    "swish",
    "gelu",
    act.Gelu(approximate=True),
    act.LeakyRelu(alpha=0.2),
    act.Elu(alpha=0.5),
    "softplus",
    "softsign",
    "relu6",
    "hard_sigmoid",
    "hard_silu",
    # "exponential" is Exp, checked in float64 by tests/test_autodiff_rules.py: here its large outputs leave float32
    # finite differences too coarse
    "mish",
    "log_softmax",
]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_activation_gradient_matches_finite_differences(activation):
    # Flatten -> Dense(activation) -> Dense(linear): the activation's rule sits between two Dense backward
    # passes.
    model = Sequential.of(
        Input(2, 3), Flatten(), Dense(4, activation=activation), Dense(3, activation="linear"), seed=5
    )
    check_gradients(model, "mse", RNG.normal(size=(8, 3)).astype(np.float32))


LOSSES = [
    ("softmax_cross_entropy_with_logits", "linear", RNG.integers(0, 3, 8)),
    ("mse", "linear", RNG.normal(size=(8, 3)).astype(np.float32)),
    ("mae", "linear", RNG.normal(size=(8, 3)).astype(np.float32)),
    (loss_module.Huber(delta=0.5), "linear", 2 * RNG.normal(size=(8, 3)).astype(np.float32)),
    ("binary_crossentropy", "sigmoid", RNG.integers(0, 2, (8, 3)).astype(np.float32)),
]


@pytest.mark.parametrize(("loss", "activation", "y"), LOSSES, ids=[str(c[0]) for c in LOSSES])
def test_loss_gradient_matches_finite_differences(loss, activation, y):
    model = Sequential.of(Input(2, 3), Flatten(), Dense(3, activation=activation), seed=2)
    check_gradients(model, loss, y)


def test_dense_without_bias_and_frozen_layer_gradients():
    frozen = Dense(5, activation="tanh", trainable=False)
    model = Sequential.of(Input(2, 3), Flatten(), frozen, Dense(3, activation="linear", use_bias=False), seed=4)
    engine = PortableEngine(model.layers, loss_module.get("mse"), SGD(learning_rate=1.0))
    y = RNG.normal(size=(8, 3)).astype(np.float32)
    before = engine.get_weights()
    analytic = analytic_gradients(engine, X, y)
    assert not np.any(analytic["dense_1.kernel"]) and not np.any(analytic["dense_1.bias"])
    assert set(engine.graph.trainable) == {"dense_2.kernel"}
    numeric = numeric_gradients(engine, X, y)
    np.testing.assert_allclose(analytic["dense_2.kernel"], numeric["dense_2.kernel"], rtol=2e-2, atol=2e-4)
    assert all(np.array_equal(before[n], w) for n, w in engine.get_weights().items())


# --- extension guide: custom layers emit their forward; autodiff differentiates it ---------------------------


class Scale(Layer):
    """y = x * alpha, one learned factor per feature."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        self.add_weight("alpha", rng.uniform(0.5, 1.5, size=input_shape))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Mul", [x, self.emit_params(builder)["alpha"]], hint="scale")


def test_a_custom_layer_trains_without_a_gradient_rule_of_its_own():
    model = Sequential.of(Input(2, 3), Flatten(), Scale(), Dense(2, activation="linear"), seed=8)
    check_gradients(model, "mse", RNG.normal(size=(8, 2)).astype(np.float32))


class Shrinking(Layer):
    """y = Shrink(x): ONNX's Shrink (0 inside [-0.5, 0.5], x outside), an op autodiff has no rule for."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Shrink", [x], hint="shrink", lambd=0.5)


def _shrink_rule(ctx: GradientContext) -> list[str | None]:
    """dy where |x| > lambd, else 0."""
    outside = ctx.emit("Greater", [ctx.emit("Abs", [ctx.input(0)]), ctx.scalar(0.5, ctx.input(0))])
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Cast", [outside], to=onnx.TensorProto.FLOAT)])]


@pytest.fixture
def shrink_rule_removed_after():
    yield
    RULES.pop(("", "Shrink"), None)


def test_an_op_without_a_rule_is_named_then_trains_with_one(shrink_rule_removed_after):
    model = Sequential.of(Input(2, 3), Flatten(), Dense(4, activation="linear"), Shrinking(), Dense(2), seed=8)
    with pytest.raises(UnsupportedError, match=r"No gradient rule for op 'Shrink'.*node 'shrinking_1.shrink_Shrink'"):
        PortableEngine(model.layers, loss_module.get("mse"), SGD())
    rule("Shrink")(_shrink_rule)
    check_gradients(model, "mse", RNG.normal(size=(8, 2)).astype(np.float32))


def test_a_subclass_that_changes_the_forward_gets_the_gradient_of_its_own_forward():
    class Doubled(Dense):
        def emit(self, builder: GraphBuilder, x: str) -> str:
            return builder.node("Add", [super().emit(builder, x)] * 2)

    model = Sequential.of(Input(3), Doubled(2, activation="tanh"), Dense(2, activation="linear"), seed=1)
    check_gradients(
        model, "mse", RNG.normal(size=(8, 2)).astype(np.float32), RNG.normal(size=(8, 3)).astype(np.float32)
    )


def test_a_custom_activation_trains_without_a_rule_of_its_own():
    class Cube(act.Activation):
        def emit(self, builder: GraphBuilder, x: str) -> str:
            return builder.node("Mul", [builder.node("Mul", [x, x]), x])

    model = Sequential.of(Input(3), Dense(2, activation=Cube()), Dense(2, activation="linear"), seed=1)
    check_gradients(
        model, "mse", RNG.normal(size=(8, 2)).astype(np.float32), RNG.normal(size=(8, 3)).astype(np.float32)
    )
