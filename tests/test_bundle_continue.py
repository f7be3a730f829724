"""onnxtrain.bundle.load_state: a run onnxtrain-js trained (Node.js) continued in Python gives what the same steps
in Python alone give (Adam's moments, the step, a schedule's position, Dropout's masks and BatchNormalization's
statistics), and bundles or models that do not match are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.bundle import load_state, read_state
from onnxtrain.errors import InvalidArgumentError, ModelFileError, ModelStateError
from onnxtrain.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from onnxtrain.optimizers import SGD, Adam, schedules
from tests.js_harness import ORT_NODE, missing_js_dependencies, node_script

RNG = np.random.default_rng(21)
X = RNG.normal(size=(48, 8, 8, 1)).astype(np.float32)
Y = RNG.integers(0, 4, 48)
BATCH = 8


def _model(learning_rate: object = 0.01) -> Sequential:
    model = Sequential.of(
        Input(8, 8, 1),
        Conv2D(3, 3),
        BatchNormalization(),
        MaxPooling2D(2),
        Dropout(0.3, seed=7),
        Flatten(),
        Dense(4, activation="linear"),
        seed=3,
    )
    model.compile(optimizer=Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _steps(model: Sequential, first: int, last: int) -> list[float]:
    """Batches first..last-1 by train_on_batch: their losses (the model logs accuracy too)."""
    return [
        float(model.train_on_batch(X[k * BATCH : (k + 1) * BATCH], Y[k * BATCH : (k + 1) * BATCH])[0])
        for k in range(first, last)
    ]


NODE = """
const trainer = await Trainer.load(ort, BUNDLE);
const x = Float32Array.from(X), y = Int32Array.from(Y);
const losses = [];
for (let k = 0; k < 3; k++) {
  if (k === 2 && RATE !== null) trainer.learningRate = RATE;
  losses.push((await trainer.step(x.subarray(k * 512, (k + 1) * 512), y.subarray(k * 8, (k + 1) * 8))).loss);
}
result = { losses, state: Array.from(trainer.stateBytes()) };
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("learning_rate", "js_rate"),
    [(0.01, None), (0.01, 0.003), (schedules.ExponentialDecay(0.02, decay_steps=2, decay_rate=0.5), None)],
    ids=["fixed", "rate set in JS", "schedule"],
)
def test_a_run_trained_in_node_continues_in_python_as_if_uninterrupted(tmp_path, learning_rate, js_rate):
    """Python 1 step, bundle; Node.js 3 steps; Python 2 more: against Python's 6 in a row."""
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    with _model(learning_rate) as model:
        reference = _steps(model, 0, 3)
        if js_rate is not None:
            model.learning_rate = js_rate
        reference += _steps(model, 3, 4)
        rate = model.learning_rate  # of the 5th update, the first Python makes again
        reference += _steps(model, 4, 6)
        weights = model.get_weights()
        iterations = int(model.optimizer.iterations)
    with _model(learning_rate) as model:
        first = _steps(model, 0, 1)
        model.export_training_bundle(tmp_path / "b")
        body = (
            f"const BUNDLE = {json.dumps(str(tmp_path / 'b'))}, RATE = {json.dumps(js_rate)};\n"
            f"const X = {json.dumps(X[BATCH : 4 * BATCH].ravel().tolist())}, Y = {json.dumps(Y[BATCH:].tolist())};\n"
            + NODE
        )
        node = node_script(body, tmp_path)
        (tmp_path / "js-state.bin").write_bytes(bytes(node["state"]))
        load_state(model, tmp_path / "b", tmp_path / "js-state.bin")
        assert int(model.optimizer.iterations) == 4
        assert model.learning_rate == pytest.approx(rate, rel=1e-7)  # the trailer holds float64, Python's float
        rest = _steps(model, 4, 6)
        np.testing.assert_allclose(first + node["losses"] + rest, reference, rtol=2e-5)
        assert int(model.optimizer.iterations) == iterations
        for name, value in model.get_weights().items():
            np.testing.assert_allclose(value, weights[name], rtol=1e-4, atol=2e-5, err_msg=name)


def test_the_bundles_own_state_is_restored_without_js(tmp_path):
    with _model() as model:
        _steps(model, 0, 2)
        model.export_training_bundle(tmp_path / "b")
        expected = _steps(model, 2, 4)
        load_state(model, tmp_path / "b")
        assert int(model.optimizer.iterations) == 2
        np.testing.assert_allclose(_steps(model, 2, 4), expected, rtol=1e-6)
        state = read_state(tmp_path / "b")
        load_state(model, tmp_path / "b", (tmp_path / "b" / "state.bin").read_bytes())
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, state[name], err_msg=name)


@pytest.mark.training
def test_load_state_refuses_a_model_compiled_for_ort_training(tmp_path):
    with _model() as model:
        model.export_training_bundle(tmp_path / "b")
    with Sequential.of(Input(8, 8, 1), Flatten(), Dense(4, activation="linear"), seed=1) as other:
        other.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="ort-training")
        with pytest.raises(ModelStateError, match=r"portable engine .*Compile with engine='portable'"):
            load_state(other, tmp_path / "b")


def test_load_state_refuses_what_does_not_match(tmp_path):
    with _model() as model:
        model.export_training_bundle(tmp_path / "b")
    other = Sequential.of(Input(8, 8, 1), Flatten(), Dense(4, activation="linear"), seed=1)
    with other:
        with pytest.raises(ModelStateError, match=r"load_state\(\) needs a compiled model"):
            load_state(other, tmp_path / "b")
        other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        with pytest.raises(
            ModelFileError,
            match=r"expects the bundle of this model.*Received: '.*b' \(model "
            r"'sequential(_\d+)?'\), which holds tensors the model does not have: batch_normalization_1"
            r".beta, .* and 10 more; shapes differ: dense_1.kernel, optimizer.m.dense_1.kernel",
        ):
            load_state(other, tmp_path / "b")
    with _model() as model:
        model.compile(optimizer=SGD(0.01), loss="sparse_categorical_crossentropy")
        with pytest.raises(ModelFileError, match=r"which holds tensors the model does not have: optimizer.m"):
            load_state(model, tmp_path / "b")
        model.compile(optimizer=Adam(0.01, beta1=0.8), loss="sparse_categorical_crossentropy")
        with pytest.raises(InvalidArgumentError, match=r"compiled as the bundle's.*\(differing: \['beta1'\]\)"):
            load_state(model, tmp_path / "b")
        model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy")
        with pytest.raises(ModelFileError, match=r"Received: 3 bytes"):
            load_state(model, tmp_path / "b", b"abc")
