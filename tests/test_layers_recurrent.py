"""SimpleRNN, GRU and LSTM through the layer harness (a numpy reference of ONNX's equations, Keras 3 fixtures with
Keras' weights mapped onto ours, training on the portable engine and the ort-training engine's refusal), a fresh
layer drawn as Keras draws one, a sequence task learned end to end and exported, and bad arguments."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from layer_harness import LayerCase, check_training_and_export, table_tests

from onnxtrain import Sequential, autodiff, emit
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.layers import GRU, LSTM, Dense, Input, Layer, Masking, SimpleRNN
from onnxtrain.optimizers import SGD

# ONNX's gate blocks as indices of Keras' (LSTM: Keras i, f, c, o; ONNX i, o, f, c)
GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (0, 1, 2), "SimpleRNN": (0,)}


# --- Keras' weights as ours: the recipe of docs/layers.md ------------------------------------------------------
def onnx_matrix(keras: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Keras' kernel [inputs, gates * units] (or recurrent kernel) as ONNX's [1, gates * units, inputs]."""
    blocks = np.split(keras, len(order), axis=1)
    return np.concatenate([blocks[k] for k in order], axis=1).T[None]


def from_keras(layer_class: str) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    """Keras' `layer.get_weights()` (kernel, recurrent_kernel[, bias]) -> our parameters by local name."""
    order = GATE_ORDER[layer_class]

    def mapping(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
        kernel, recurrent, *bias = weights
        ours = {"kernel": onnx_matrix(kernel, order), "recurrent_kernel": onnx_matrix(recurrent, order)}
        if bias:  # [gates * units], or GRU(reset_after=True)'s [2, gates * units]: input and recurrent bias rows
            rows = bias[0].reshape(-1, kernel.shape[1])
            ours["bias"] = np.concatenate([onnx_matrix(row[None], order)[0, :, 0] for row in rows])[None]
        return ours

    return mapping


# --- ONNX's equations in numpy, on our weights ---------------------------------------------------------------
ACTIVATIONS = {"tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "relu": lambda v: np.maximum(v, 0)}


def recurrent_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    assert isinstance(layer, SimpleRNN | GRU | LSTM)
    w, r = layer.params["kernel"][0], layer.params["recurrent_kernel"][0]
    units, width = layer.units, w.shape[0]
    bias = layer.params["bias"][0] if layer.use_bias else np.zeros(width)
    w_bias, r_bias = bias[:width], bias[width:] if len(bias) == 2 * width else np.zeros(width)  # ONNX's Wb, Rb
    g = ACTIVATIONS[layer.activation.name]
    f = ACTIVATIONS[layer.recurrent_activation.name] if layer.recurrent_activation else g
    h = c = np.zeros((len(x), units))
    states = []
    for t in range(x.shape[1])[:: -1 if layer.go_backwards else 1]:
        x_w = x[:, t] @ w.T + w_bias
        if isinstance(layer, LSTM):
            i, o, forget, cell = np.split(x_w + h @ r.T + r_bias, 4, axis=1)
            c = f(forget) * c + f(i) * g(cell)
            h = f(o) * g(c)
        elif isinstance(layer, GRU):
            h_r = h @ r[: 2 * units].T + r_bias[: 2 * units]
            z = f(x_w[:, :units] + h_r[:, :units])
            reset = f(x_w[:, units : 2 * units] + h_r[:, units:])
            r_h, b_h = r[2 * units :], r_bias[2 * units :]
            recurrent = reset * (h @ r_h.T + b_h) if layer.reset_after else (reset * h) @ r_h.T + b_h
            h = (1 - z) * g(x_w[:, 2 * units :] + recurrent) + z * h
        else:
            h = g(x_w + h @ r.T + r_bias)
        states.append(h)
    return np.stack(states, axis=1) if layer.return_sequences else h  # Keras' order: as computed


def case(case_id: str, make: Callable[[], Layer], input_shape, output_shape, params: int) -> LayerCase:
    layer_class = type(make()).__name__
    return LayerCase(case_id, make, input_shape, output_shape, params, recurrent_reference, from_keras(layer_class))


CASES = [
    case("lstm", lambda: LSTM(3), (5, 2), (3,), 72),
    case("lstm_sequences", lambda: LSTM(4, return_sequences=True), (4, 3), (4, 4), 128),
    case("lstm_backwards", lambda: LSTM(3, go_backwards=True), (5, 2), (3,), 72),
    case("lstm_backwards_sequences", lambda: LSTM(3, go_backwards=True, return_sequences=True), (5, 2), (5, 3), 72),
    case("lstm_no_bias", lambda: LSTM(3, use_bias=False), (4, 2), (3,), 60),
    case("gru", lambda: GRU(3), (5, 2), (3,), 63),
    case("gru_sequences", lambda: GRU(4, return_sequences=True), (4, 3), (4, 4), 108),
    case("gru_backwards_sequences", lambda: GRU(3, go_backwards=True, return_sequences=True), (5, 2), (5, 3), 63),
    case("gru_reset_before", lambda: GRU(3, reset_after=False), (5, 2), (3,), 54),
    case("gru_reset_before_sequences", lambda: GRU(3, reset_after=False, return_sequences=True), (4, 2), (4, 3), 54),
    case("gru_no_bias", lambda: GRU(3, use_bias=False), (4, 2), (3,), 45),
    case("simple_rnn", lambda: SimpleRNN(3), (5, 2), (3,), 18),
    case("simple_rnn_sequences", lambda: SimpleRNN(4, return_sequences=True), (4, 3), (4, 4), 32),
    case("simple_rnn_relu", lambda: SimpleRNN(3, activation="relu"), (5, 2), (3,), 18),
    case(
        "simple_rnn_backwards_sequences",
        lambda: SimpleRNN(3, go_backwards=True, return_sequences=True),
        (4, 2),
        (4, 3),
        18,
    ),
    case("simple_rnn_no_bias", lambda: SimpleRNN(3, use_bias=False), (4, 2), (3,), 15),
]

test_recurrent_forward_matches_numpy_and_keras, _ = table_tests(CASES)
# Training each row takes a quarter of a second: one row per layer class in the fast loop, the rest marked slow.
FAST_TRAINING = {"lstm", "gru_backwards_sequences", "simple_rnn_sequences"}


@pytest.mark.parametrize(
    "case",
    [c if c.id in FAST_TRAINING else pytest.param(c, marks=pytest.mark.slow) for c in CASES],
    ids=[c.id for c in CASES],
)
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_recurrent_trains_and_exports(case: LayerCase, engine: str, tmp_path):
    # ORT 1.19 trains no recurrent op: the ort-training engine refuses them with an UnsupportedError (which the
    # harness accepts); test_ort_training_refuses_recurrent_layers_by_name checks its message.
    check_training_and_export(case, tmp_path, engine)


@pytest.mark.training
def test_ort_training_refuses_recurrent_layers_by_name():
    with Sequential.of(Input(4, 2), GRU(3), Dense(2), seed=1) as model:
        with pytest.raises(UnsupportedError, match=r"cannot differentiate the GRU node 'gru_1\..*engine='portable'"):
            model.compile(optimizer="adam", loss="mse", engine="ort-training")


def test_a_fresh_lstm_is_drawn_as_keras_draws_one():
    """glorot_uniform over Keras' kernel [features, 4 * units], orthogonal over its recurrent kernel [units,
    4 * units], zeros and the forget gate's ones in the bias, each laid out in ONNX's gate order."""
    layer = Sequential.of(Input(7, 40), LSTM(16), seed=0).layers[1]
    assert isinstance(layer, LSTM)
    kernel, recurrent, bias = (layer.params[k][0] for k in ("kernel", "recurrent_kernel", "bias"))
    keras_order = [int(k) for k in np.argsort(GATE_ORDER["LSTM"])]  # ONNX's blocks back into Keras' order
    keras_recurrent = np.concatenate([np.split(recurrent.T, 4, axis=1)[k] for k in keras_order], axis=1)
    np.testing.assert_allclose(keras_recurrent @ keras_recurrent.T, np.eye(16), atol=1e-5)  # orthonormal rows
    limit = np.sqrt(6 / (40 + 64))
    assert np.abs(kernel).max() <= limit and kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.1)
    expected_bias = np.zeros(64, np.float32)  # Keras' one bias, as ONNX's input bias
    expected_bias[32:48] = 1.0  # ONNX's blocks i, o, f, c: f is the third
    np.testing.assert_array_equal(bias, expected_bias)
    assert not LSTM(4, unit_forget_bias=False).unit_forget_bias


def test_gru_reset_after_keeps_keras_two_bias_rows_and_reset_before_its_one():
    after = Sequential.of(Input(3, 2), GRU(2, bias_initializer="ones"), seed=0).layers[1]
    before = Sequential.of(Input(3, 2), GRU(2, reset_after=False, bias_initializer="ones"), seed=0).layers[1]
    np.testing.assert_array_equal(after.params["bias"], np.ones((1, 12), np.float32))
    np.testing.assert_array_equal(before.params["bias"], np.ones((1, 6), np.float32))


@pytest.mark.parametrize(
    ("make", "keras_params"),
    [(lambda: LSTM(3), 72), (lambda: SimpleRNN(3), 18), (lambda: GRU(3, reset_after=False), 54), (lambda: GRU(3), 63)],
)
def test_the_layer_trains_keras_biases_and_counts_keras_parameters(make, keras_params):
    """Keras trains one bias (GRU with reset_after: two rows, both in its equations), and so does the layer: the
    export's B holds zeros for ONNX's recurrent bias. A trained recurrent bias of its own would add to the input
    one and double the bias's step (3 epochs of a SimpleRNN with Adam then ended 10% off Keras' accuracy).
    Counts: Keras 3.15's count_params() for 2 features and 3 units. A step moves the bias by lr times its
    gradient (autodiff's, through the unrolled op)."""
    x = np.random.default_rng(0).normal(size=(6, 4, 2)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 6)
    model = Sequential.of(Input(4, 2), make(), Dense(3, activation="linear"), seed=3)
    layer = model.layers[1]
    assert sum(value.size for value in layer.params.values()) == keras_params
    bias = f"{layer.name}.bias"
    before = model.get_weights()[bias]
    graph = autodiff.gradients(emit.loss_model(model.layers, "softmax_cross_entropy_with_logits"), [bias])
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    gradient = session.run([f"{bias}_grad"], {"input": x, "labels": y.astype(np.int64)})[0]
    with model:
        model.compile(optimizer=SGD(0.5), loss="softmax_cross_entropy_with_logits")
        model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
        after = model.get_weights()[bias]
    np.testing.assert_allclose(after - before, -0.5 * gradient, rtol=1e-4, atol=1e-7)


def sign_of_sum(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, 12, 1)).astype(np.float32)
    return x, (x.sum(axis=(1, 2)) > 0).astype(np.int64)


@pytest.mark.slow
def test_lstm_learns_the_sign_of_a_sum_and_its_export_predicts_the_same(tmp_path):
    x, y = sign_of_sum(512, 0)
    x_test, y_test = sign_of_sum(256, 1)
    with Sequential.of(Input(12, 1), LSTM(8), Dense(2, activation="linear"), seed=4) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metrics=["accuracy"])
        losses = model.fit(x, y, epochs=12, batch_size=32, verbose=0).history["loss"]
        accuracy = float((model.predict(x_test) == y_test).mean())
        expected = model.predict_softly(x_test)
        model.export(tmp_path / "lstm.onnx")
    assert losses[-1] < 0.5 * losses[0], losses
    assert accuracy > 0.85, accuracy
    assert "LSTM" in {node.op_type for node in onnx.load(tmp_path / "lstm.onnx").graph.node}  # not unrolled
    session = ort.InferenceSession(str(tmp_path / "lstm.onnx"), providers=["CPUExecutionProvider"])
    (exported,) = session.run(["probabilities"], {"input": x_test})
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: LSTM(0), InvalidArgumentError, r"LSTM\(units=...\) expects a positive int. Received: units=0"),
        (lambda: GRU(3, return_state=True), UnsupportedError, r"GRU\(return_state=...\) supports only .*=True"),
        (lambda: LSTM(3, stateful=True), UnsupportedError, r"stateful=False .*Received: stateful=True"),
        (lambda: SimpleRNN(3, dropout=0.2), UnsupportedError, r"dropout=0.0 .*Dropout layer.*Received: dropout=0.2"),
        (lambda: LSTM(3, recurrent_dropout=0.1), UnsupportedError, r"Received: recurrent_dropout=0.1"),
        (lambda: GRU(3, time_major=True), UnsupportedError, r"time_major=False .*Received: time_major=True"),
        (lambda: LSTM(3, activity_regularizer="l2"), UnsupportedError, r"Received: activity_regularizer='l2'"),
        (
            lambda: LSTM(3, recurrent_activation="hard_silu"),
            UnsupportedError,
            r"LSTM\(recurrent_activation=...\) expects one of \['hard_sigmoid', 'relu', 'sigmoid', 'tanh'\].*"
            r"Received: recurrent_activation='hard_silu'",
        ),
        (lambda: SimpleRNN(3, activation="gelu"), UnsupportedError, r"Received: activation='gelu'"),
        (lambda: SimpleRNN(3, activation=None), UnsupportedError, r"Received: activation=None"),
        (lambda: GRU(3, reset_after="yes"), InvalidArgumentError, r"reset_after.*Received: reset_after='yes'"),
        (lambda: LSTM(3, kernel_constraint="non_neg"), UnsupportedError, r"kernel_constraint"),
        (lambda: LSTM(3, return_sequence=True), TypeError, r"LSTM.*return_sequence"),
    ],
)
def test_bad_recurrent_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_recurrent_layers_take_keras_defaults_of_what_they_refuse_otherwise():
    layer = LSTM(3, dropout=0, recurrent_dropout=0.0, return_state=False, stateful=False, unroll=True, seed=3)
    assert layer.get_config() == LSTM(3).get_config()


def test_recurrent_layer_refuses_input_without_a_time_axis():
    with pytest.raises(ShapeError, match=r"LSTM layer 'lstm_1' expects input of shape \[None, timesteps, features\]"):
        Sequential.of(Input(6), LSTM(3))


def test_recurrent_regularizers_add_their_weights_penalties_to_the_loss():
    x, y = sign_of_sum(16, 2)

    def evaluated(**penalties: object) -> tuple[float, dict[str, np.ndarray]]:
        with Sequential.of(Input(12, 1), GRU(3, **penalties), Dense(2, activation="linear"), seed=0) as model:
            model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
            return model.evaluate(x, y, batch_size=16, verbose=0).loss, model.get_weights()

    plain, weights = evaluated()
    penalized, _ = evaluated(kernel_regularizer="l2", recurrent_regularizer="l1", bias_regularizer="l2")
    expected = 0.01 * (
        np.sum(weights["gru_1.kernel"].astype(np.float64) ** 2)
        + np.abs(weights["gru_1.recurrent_kernel"]).sum()
        + np.sum(weights["gru_1.bias"].astype(np.float64) ** 2)
    )
    assert penalized - plain == pytest.approx(expected, rel=1e-4)
    assert GRU(3, recurrent_regularizer="l1").get_config()["recurrent_regularizer"]["name"] == "l1"


# --- a mask of the steps (Masking, Embedding(mask_zero=True)) -----------------------------------------------------
def masked_reference(layer: Layer, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keras' masked recurrence by the reference above, one example at a time on its unmasked steps alone: at step t
    the state after the unmasked steps up to t (from t on, going backwards), zeros before the first; the last
    state without return_sequences."""
    assert isinstance(layer, SimpleRNN | GRU | LSTM)
    every_state = copy.copy(layer)
    object.__setattr__(every_state, "return_sequences", True)
    outputs = []
    for example, kept in zip(x, mask, strict=True):
        steps = np.flatnonzero(kept)
        states = recurrent_reference(every_state, example[None, steps])[0] if steps.size else np.zeros((0, layer.units))
        seen = np.cumsum(kept[::-1])[::-1] if layer.go_backwards else np.cumsum(kept)  # steps read by t
        padded = np.concatenate([np.zeros((1, layer.units)), states])
        if not layer.return_sequences:
            outputs.append(padded[steps.size])
        else:
            sequence = padded[seen]
            outputs.append(sequence[::-1] if layer.go_backwards else sequence)  # Keras' order: as computed
    return np.stack(outputs)


MASKED = [
    lambda: LSTM(3),
    lambda: LSTM(3, return_sequences=True),
    lambda: LSTM(3, go_backwards=True, return_sequences=True),
    lambda: GRU(3, go_backwards=True),
    lambda: GRU(3, reset_after=False, return_sequences=True, use_bias=False),
    lambda: SimpleRNN(3, activation="relu", return_sequences=True),
]


@pytest.mark.parametrize("make", MASKED, ids=lambda make: repr(make())[:90])
def test_a_masked_layer_computes_each_sequence_on_its_unmasked_steps(make: Callable[[], Layer]):
    """Masking(0.0) before the layer: padding before the data, after it, holes, a full sequence, an empty one."""
    kept = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1], [1] * 6, [0] * 6], bool)
    x = np.random.default_rng(4).uniform(-2, 2, size=(5, 6, 2)) * kept[..., None]
    model = Sequential.of(Input(6, 2), Masking(), make(), seed=3)
    proto = emit.inference_graph(model.layers)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, masked_reference(model.layers[2], x, kept), rtol=1e-5, atol=1e-6)
