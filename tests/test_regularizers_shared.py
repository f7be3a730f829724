"""A layer emitted more than once in a graph (a shared layer called twice, a tensor listed twice among the outputs
whose layer the logits rule emits again without its softmax) adds each weight penalty to the loss once, as Keras
does: the loss of evaluate and of a training step, and one SGD step's weights, on both engines, against Keras 3
(tests/data/keras/keras_shared_regularizers.npz, from tools/keras_shared_regularizer_fixtures.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, emit
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Add, Dense, Input
from onnxtrain.optimizers import SGD
from onnxtrain.regularizers import L1, L1L2, L2, Regularizer

FIXTURE = np.load(Path(__file__).parent / "data" / "keras" / "keras_shared_regularizers.npz")
LEARNING_RATE = 0.1


def _two_inputs() -> tuple[Model, dict[str, Regularizer]]:
    a, b = Input(3), Input(3)
    shared = Dense(
        4, activation="tanh", kernel_regularizer=L1L2(l1=0.05, l2=0.1), bias_regularizer=L2(0.3), name="shared"
    )
    head = Dense(
        2, activation="linear", kernel_regularizer=L1(0.02), bias_regularizer=L1L2(l1=0.01, l2=0.02), name="head"
    )
    penalties = {
        "shared.kernel": L1L2(l1=0.05, l2=0.1),
        "shared.bias": L2(0.3),
        "head.kernel": L1(0.02),
        "head.bias": L1L2(l1=0.01, l2=0.02),
    }
    return Model([a, b], head(Add()([shared(a), shared(b)]))), penalties


def _chain() -> tuple[Model, dict[str, Regularizer]]:
    x = Input(3)
    shared = Dense(3, activation="tanh", kernel_regularizer=L2(0.2), bias_regularizer=L1(0.1), name="shared")
    return Model(x, shared(shared(shared(x)))), {"shared.kernel": L2(0.2), "shared.bias": L1(0.1)}


def _output_twice() -> tuple[Model, dict[str, Regularizer]]:
    x = Input(3)
    h = Dense(3, activation="softmax", kernel_regularizer=L2(0.1), bias_regularizer=L1(0.2), name="h")
    probabilities = h(x)
    return Model(x, [probabilities, probabilities]), {"h.kernel": L2(0.1), "h.bias": L1(0.2)}


CASES: dict[str, tuple[Callable[[], tuple[Model, dict[str, Regularizer]]], Any]] = {
    "two_inputs": (_two_inputs, "mse"),
    "chain": (_chain, "mse"),
    "output_twice": (_output_twice, ["categorical_crossentropy", "mse"]),
}


def _stored(case: str, key: str) -> np.ndarray:
    return FIXTURE[f"{case}.{key}"]


def _data(case: str) -> tuple[Any, Any]:
    x = [_stored(case, "x_a"), _stored(case, "x_b")] if f"{case}.x_a" in FIXTURE else _stored(case, "x")
    y = _stored(case, "y")
    return x, [y, y] if case == "output_twice" else y


def _model(case: str, engine: str) -> tuple[Model, dict[str, Regularizer]]:
    make, loss = CASES[case]
    model, penalties = make()
    model.compile(optimizer=SGD(learning_rate=LEARNING_RATE), loss=loss, engine=engine)
    model.set_weights({name: _stored(case, name) for name in penalties})
    return model, penalties


@pytest.mark.parametrize("case", list(CASES))
def test_keras_counts_each_weight_penalty_once(case):
    # The fixture's premise, in numpy: Keras' penalty is the sum over the weights, whatever the number of calls.
    penalties = CASES[case][0]()[1]
    once = sum(regularizer(_stored(case, name).astype(np.float64)) for name, regularizer in penalties.items())
    assert float(_stored(case, "penalty")) == pytest.approx(once, rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_shared_layer_penalty_counts_once_in_loss_and_step(case, engine):
    x, y = _data(case)
    model, penalties = _model(case, engine)
    with model:
        evaluated = model.evaluate(x, y, batch_size=8, verbose=0).loss
        assert evaluated == pytest.approx(float(_stored(case, "evaluate_loss")), rel=1e-5)
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        assert history.history["loss"][0] == pytest.approx(float(_stored(case, "step_loss")), rel=1e-5)
        after = model.get_weights()
    for name in penalties:
        np.testing.assert_allclose(after[name], _stored(case, f"step.{name}"), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_loss_graph_emits_each_weight_penalty_once(case):
    make, loss = CASES[case]
    model, penalties = make()
    model.compile(optimizer="sgd", loss=loss)
    assert model.loss is not None
    nodes = emit.loss_model(model.graph, model.loss).graph.node
    sums = [
        n.output[0] for n in nodes if n.op_type == "ReduceSum" and re.fullmatch(r".*\.l[12]_sum(_\d+)?", n.output[0])
    ]
    # One sum per weight and factor (L1L2 with both factors: two), however many times the layer is emitted.
    assert len(sums) == sum((getattr(r, "l1", 0.0) > 0) + (getattr(r, "l2", 0.0) > 0) for r in penalties.values())


def test_keyed_loss_term_counts_once_and_unkeyed_each_time():
    builder = GraphBuilder()
    one = builder.constant(np.float32(1.0), "one")
    for _ in range(3):
        builder.add_loss(lambda: builder.node("Identity", [one]), key="penalty:w")
    for _ in range(2):
        builder.add_loss(lambda: builder.node("Identity", [one]))
    total = builder.with_added_losses(builder.constant(np.float32(10.0), "loss"))
    builder.add_output(total, "total", np.float32, ())
    session = ort.InferenceSession(builder.build().SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {})[0] == pytest.approx(13.0)  # 10 + the keyed term once + the unkeyed one twice
