"""Bidirectional through the layer harness (a numpy reference built on the recurrent layers' own, Keras 3 fixtures
with Keras' weights mapped onto ours, training on the portable engine and the ort-training engine's refusal), one
SGD step against Keras 3's, the graph it emits, save and load, and bad arguments."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from layer_harness import KERAS_FIXTURES, LayerCase, check_training_and_export, table_tests
from test_layers_recurrent import from_keras, recurrent_reference

from onnxtrain import Sequential, emit, load_model
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.layers import GRU, LSTM, Bidirectional, Dense, Flatten, Input, Layer, SimpleRNN
from onnxtrain.optimizers import SGD


# --- Keras' weights as ours: each direction's half of get_weights(), mapped as the wrapped layer's -----------
def bidirectional_weights(layer: Bidirectional) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    """Keras' `Bidirectional.get_weights()`: the forward layer's (kernel, recurrent_kernel[, bias]), then the
    backward one's -> our parameters, `<direction's name>.<weight>`."""
    directions = (layer.forward_layer, layer.backward_layer)

    def mapping(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
        ours, start = {}, 0
        for direction in directions:
            count = 3 if direction.use_bias else 2
            mapped = from_keras(type(direction).__name__)(weights[start : start + count])
            ours |= {f"{direction.name}.{name}": value for name, value in mapped.items()}
            start += count
        return ours

    return mapping


# --- the numpy reference: each direction by the recurrent layers' reference, merged as Keras merges ------------
def direction_on_its_weights(layer: Bidirectional, direction: Layer) -> Layer:
    """A copy of `direction` holding its weights, which the wrapper stores under `<direction's name>.`."""
    own = copy.copy(direction)
    prefix = f"{direction.name}."
    own.params = {k.removeprefix(prefix): v for k, v in layer.params.items() if k.startswith(prefix)}
    return own


def bidirectional_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    assert isinstance(layer, Bidirectional)
    forward = recurrent_reference(direction_on_its_weights(layer, layer.forward_layer), x)
    backward = recurrent_reference(direction_on_its_weights(layer, layer.backward_layer), x)
    if layer.return_sequences:  # Keras flips the backward layer's outputs (computed last step first) into time order
        backward = backward[:, ::-1]
    merged = {
        "concat": lambda: np.concatenate([forward, backward], axis=-1),
        "sum": lambda: forward + backward,
        "mul": lambda: forward * backward,
        "ave": lambda: (forward + backward) / 2,
    }
    return merged[layer.merge_mode]()


def case(case_id: str, make: Callable[[], Bidirectional], input_shape, output_shape, params: int) -> LayerCase:
    return LayerCase(
        case_id, make, input_shape, output_shape, params, bidirectional_reference, bidirectional_weights(make())
    )


# Params: Keras 3.15's count_params() (the fixtures' weights, counted in test_parameter_counts_are_keras).
CASES = [
    case("bidirectional_lstm", lambda: Bidirectional(LSTM(3)), (5, 2), (6,), 144),
    case(
        "bidirectional_lstm_sequences_sum",
        lambda: Bidirectional(LSTM(4, return_sequences=True), merge_mode="sum"),
        (4, 3),
        (4, 4),
        256,
    ),
    case(
        "bidirectional_lstm_no_bias_mul",
        lambda: Bidirectional(LSTM(3, use_bias=False), merge_mode="mul"),
        (4, 2),
        (3,),
        120,
    ),
    case("bidirectional_gru_ave", lambda: Bidirectional(GRU(3), merge_mode="ave"), (5, 2), (3,), 126),
    case("bidirectional_gru_sequences", lambda: Bidirectional(GRU(3, return_sequences=True)), (5, 2), (5, 6), 126),
    case(
        "bidirectional_gru_reset_before_mul",
        lambda: Bidirectional(GRU(3, reset_after=False), merge_mode="mul"),
        (5, 2),
        (3,),
        108,
    ),
    case(
        "bidirectional_gru_reset_before_sequences_ave",
        lambda: Bidirectional(GRU(3, reset_after=False, return_sequences=True), merge_mode="ave"),
        (4, 2),
        (4, 3),
        108,
    ),
    case(
        "bidirectional_simple_rnn_sequences_mul",
        lambda: Bidirectional(SimpleRNN(4, return_sequences=True), merge_mode="mul"),
        (4, 3),
        (4, 4),
        64,
    ),
    case(
        "bidirectional_simple_rnn_relu_sum",
        lambda: Bidirectional(SimpleRNN(3, activation="relu"), merge_mode="sum"),
        (5, 2),
        (3,),
        36,
    ),
    # A backward layer of another class or settings: two nodes instead of one bidirectional node.
    case(
        "bidirectional_lstm_gru_sequences",
        lambda: Bidirectional(
            LSTM(3, return_sequences=True), backward_layer=GRU(4, go_backwards=True, return_sequences=True)
        ),
        (5, 2),
        (5, 7),
        168,
    ),
    case(
        "bidirectional_simple_rnn_relu_backward_ave",
        lambda: Bidirectional(
            SimpleRNN(3, return_sequences=True),
            backward_layer=SimpleRNN(3, activation="relu", go_backwards=True, return_sequences=True),
            merge_mode="ave",
        ),
        (4, 2),
        (4, 3),
        36,
    ),
    # The wrapped layer goes backwards and the backward layer forwards: Keras' sequences then come last step first.
    case(
        "bidirectional_swapped_sequences",
        lambda: Bidirectional(
            LSTM(3, go_backwards=True, return_sequences=True), backward_layer=LSTM(3, return_sequences=True)
        ),
        (5, 2),
        (5, 6),
        144,
    ),
    case(
        "bidirectional_swapped_sum",
        lambda: Bidirectional(GRU(3, go_backwards=True), backward_layer=GRU(3), merge_mode="sum"),
        (5, 2),
        (3,),
        126,
    ),
]

test_bidirectional_forward_matches_numpy_and_keras, _ = table_tests(CASES)
# Training each row takes about half a second: one row per layer class and path in the fast loop, the rest slow.
FAST_TRAINING = {"bidirectional_lstm", "bidirectional_gru_sequences", "bidirectional_simple_rnn_relu_backward_ave"}


@pytest.mark.parametrize(
    "case",
    [c if c.id in FAST_TRAINING else pytest.param(c, marks=pytest.mark.slow) for c in CASES],
    ids=[c.id for c in CASES],
)
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_bidirectional_trains_and_exports(case: LayerCase, engine: str, tmp_path):
    # The ort-training engine refuses recurrent ops (UnsupportedError, which the harness accepts);
    # test_ort_training_refuses_bidirectional_by_its_node checks its message.
    check_training_and_export(case, tmp_path, engine)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parameter_counts_are_keras(case: LayerCase):
    with np.load(KERAS_FIXTURES / f"{case.id}.npz") as data:
        keras_count = sum(data[f"w{i}"].size for i in range(int(data["weights"])))
    assert case.params == keras_count
    model = Sequential.of(Input(*case.input_shape), case.make(), seed=0)
    assert f"{case.params:,}" in model.summary(print_fn=None)


# --- one SGD step against Keras 3's (tools/keras_bidirectional_step.py) ------------------------------------------
STEP_CASES = {
    "lstm_concat": lambda: Bidirectional(LSTM(3)),
    "gru_sequences_ave": lambda: Bidirectional(GRU(3, return_sequences=True), merge_mode="ave"),
    "simple_rnn_relu_backward_mul": lambda: Bidirectional(
        SimpleRNN(3, return_sequences=True),
        backward_layer=SimpleRNN(3, activation="relu", go_backwards=True, return_sequences=True),
        merge_mode="mul",
    ),
}


@pytest.mark.parametrize("case_id", list(STEP_CASES))
def test_one_sgd_step_matches_keras(case_id: str):
    """Input(5, 2) -> Bidirectional [-> Flatten] -> Dense(2), Keras' weights: the loss and every weight after one
    SGD(0.1) step under sparse softmax cross-entropy equal Keras 3's (gradients by the Scan rule)."""
    with np.load(KERAS_FIXTURES / f"bidirectional_sgd_step_{case_id}.npz") as data:
        x, y, keras_loss = data["x"], data["y"], float(data["loss"])
        count = int(data["weights"])
        before = [data[f"before{i}"] for i in range(count)]
        after = [data[f"after{i}"] for i in range(count)]
    layer = STEP_CASES[case_id]()
    head = [Flatten()] if layer.return_sequences else []
    model = Sequential.of(Input(5, 2), layer, *head, Dense(2, activation="linear"), seed=0)
    mapping = bidirectional_weights(layer)

    def ours(keras: list[np.ndarray]) -> dict[str, np.ndarray]:
        mapped = {f"{layer.name}.{k}": v for k, v in mapping(keras[:-2]).items()}
        return mapped | {"dense_1.kernel": keras[-2], "dense_1.bias": keras[-1]}

    model.set_weights(ours(before))
    with model:
        model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits")
        loss = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0).history["loss"][0]
        stepped = model.get_weights()
    assert loss == pytest.approx(keras_loss, rel=1e-5)
    for name, expected in ours(after).items():
        np.testing.assert_allclose(stepped[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)


# --- the graph --------------------------------------------------------------------------------------------------
def recurrent_nodes(model: Sequential) -> list[onnx.NodeProto]:
    return [n for n in emit.inference_graph(model.layers).graph.node if n.op_type in ("LSTM", "GRU", "RNN")]


def test_matching_directions_run_as_one_bidirectional_node_and_others_as_two():
    fused = Sequential.of(Input(5, 2), Bidirectional(GRU(3, reset_after=False)), seed=0)
    (node,) = recurrent_nodes(fused)
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert (node.op_type, attributes["direction"], attributes["linear_before_reset"]) == ("GRU", b"bidirectional", 0)
    mixed = Sequential.of(Input(5, 2), Bidirectional(LSTM(3), backward_layer=GRU(3, go_backwards=True)), seed=0)
    nodes = recurrent_nodes(mixed)
    directions = [onnx.helper.get_attribute_value(a) for n in nodes for a in n.attribute if a.name == "direction"]
    assert [n.op_type for n in nodes] == ["LSTM", "GRU"] and directions == [b"forward", b"reverse"]


def test_a_fresh_layer_draws_each_direction_as_keras_draws_the_wrapped_layer():
    """Weights of their own for each direction (`forward_lstm`, `backward_lstm`), each with LSTM's unit_forget_bias
    ones in ONNX's forget block, in Keras' order: forward first."""
    layer = Sequential.of(Input(7, 4), Bidirectional(LSTM(5)), seed=0).layers[1]
    assert list(layer.params) == [
        f"{d}_lstm.{w}" for d in ("forward", "backward") for w in ("kernel", "recurrent_kernel", "bias")
    ]
    assert not np.array_equal(layer.params["forward_lstm.kernel"], layer.params["backward_lstm.kernel"])
    expected_bias = np.zeros((1, 20), np.float32)
    expected_bias[0, 10:15] = 1.0  # ONNX's blocks i, o, f, c: f is the third
    for direction in ("forward", "backward"):
        np.testing.assert_array_equal(layer.params[f"{direction}_lstm.bias"], expected_bias)


def test_config_nests_both_layers_and_a_saved_model_loads(tmp_path: Path):
    layer = Bidirectional(GRU(3, name="enc", return_sequences=True, kernel_regularizer="l2"), merge_mode="ave")
    config = layer.get_config()
    assert (config["layer"]["config"]["name"], config["backward_layer"]["config"]["name"]) == (
        "forward_enc",
        "backward_enc",
    )
    assert config["backward_layer"]["config"]["go_backwards"] is True
    rebuilt = Layer.from_config(layer.serialize())
    assert isinstance(rebuilt, Bidirectional) and rebuilt.get_config() == config
    x = np.random.default_rng(0).normal(size=(8, 4, 2)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, 8)
    with Sequential.of(Input(4, 2), layer, Flatten(), Dense(2, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        expected = model.predict_softly(x)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.layers[1].get_config() == {**config, "name": "bidirectional_1"}
        np.testing.assert_allclose(loaded.predict_softly(x), expected, rtol=1e-6, atol=1e-7)


def test_both_directions_regularizers_add_to_the_loss():
    x = np.random.default_rng(2).normal(size=(16, 6, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)

    def evaluated(**penalties: object) -> tuple[float, dict[str, np.ndarray]]:
        layers = [Input(6, 1), Bidirectional(SimpleRNN(3, **penalties)), Dense(2, activation="linear")]
        with Sequential.of(*layers, seed=0) as model:
            model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
            return model.evaluate(x, y, batch_size=16, verbose=0).loss, model.get_weights()

    plain, weights = evaluated()
    penalized, _ = evaluated(kernel_regularizer="l2")
    kernels = [weights[f"bidirectional_1.{d}_simple_rnn.kernel"].astype(np.float64) for d in ("forward", "backward")]
    assert penalized - plain == pytest.approx(0.01 * sum(np.sum(k**2) for k in kernels), rel=1e-4)


@pytest.mark.training
def test_ort_training_refuses_bidirectional_by_its_node():
    with Sequential.of(Input(4, 2), Bidirectional(LSTM(3)), Dense(2), seed=1) as model:
        with pytest.raises(
            UnsupportedError, match=r"cannot differentiate the LSTM node 'bidirectional_1\..*engine='portable'"
        ):
            model.compile(optimizer="adam", loss="mse", engine="ort-training")


# --- bad arguments ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Bidirectional(Dense(3)),
            InvalidTypeError,
            r"Bidirectional\(layer=...\) expects an LSTM, GRU or SimpleRNN instance .*Received: layer=Dense\(",
        ),
        (lambda: Bidirectional(LSTM), InvalidTypeError, r"Received: layer=the class LSTM \(make an instance\)"),
        (
            lambda: Bidirectional(LSTM(3), backward_layer="gru"),
            InvalidTypeError,
            r"Bidirectional\(backward_layer=...\) expects .*Received: backward_layer='gru'",
        ),
        (
            lambda: Bidirectional(LSTM(3), merge_mode="max"),
            InvalidArgumentError,
            r"merge_mode=...\) expects one of \['concat', 'sum', 'mul', 'ave'\]. Received: 'max'",
        ),
        (lambda: Bidirectional(LSTM(3), merge_mode=None), UnsupportedError, r"two tensors.*Received: merge_mode=None"),
        (lambda: Bidirectional(LSTM(3), weights=[np.zeros(3)]), UnsupportedError, r"weights=None.*set_weights"),
        (
            lambda: Bidirectional(LSTM(3, go_backwards=True)),
            InvalidArgumentError,
            r"different go_backwards values. Received: layer go_backwards=True, backward_layer go_backwards=True",
        ),
        (
            lambda: Bidirectional(LSTM(3), backward_layer=LSTM(3)),
            InvalidArgumentError,
            r"different go_backwards values. Received: layer go_backwards=False, backward_layer go_backwards=False",
        ),
        (
            lambda: Bidirectional(LSTM(3), backward_layer=LSTM(3, go_backwards=True, return_sequences=True)),
            InvalidArgumentError,
            r"same return_sequences. Received: layer return_sequences=False, backward_layer return_sequences=True",
        ),
        (
            lambda: Bidirectional(LSTM(3), backward_layer=GRU(4, go_backwards=True), merge_mode="sum"),
            InvalidArgumentError,
            r"merge_mode='sum'\) combines outputs of one shape.*Received: layer units=3, backward_layer units=4",
        ),
        (
            lambda: Bidirectional(LSTM(3, name="a"), backward_layer=LSTM(3, go_backwards=True, name="forward_a")),
            InvalidArgumentError,
            r"need different names. Received: both named 'forward_a'",
        ),
        (
            lambda: Bidirectional(LSTM(3, trainable=False)),
            UnsupportedError,
            r"freeze the wrapper, Bidirectional\(..., trainable=False\). Received: layer with trainable=False",
        ),
        (lambda: Bidirectional(LSTM(3), merge_mod="sum"), TypeError, r"Bidirectional.*merge_mod"),
    ],
)
def test_bad_bidirectional_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bidirectional_refuses_input_without_a_time_axis():
    with pytest.raises(ShapeError, match=r"Bidirectional layer 'bidirectional_1' expects input of shape \[None, time"):
        Sequential.of(Input(6), Bidirectional(GRU(3)))


def test_assigned_settings_are_checked_as_the_constructor_checks_them():
    layer = Bidirectional(LSTM(3))
    with pytest.raises(InvalidArgumentError, match=r"Setting merge_mode of Bidirectional layer.*Received: 'max'"):
        layer.merge_mode = "max"
    Sequential.of(Input(5, 2), layer, seed=0)
    with pytest.raises(ShapeError, match=r"output shape would be \[None, 3\] instead of \[None, 6\]"):
        layer.merge_mode = "sum"
    layer.merge_mode = "concat"
    assert layer.get_config()["merge_mode"] == "concat"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("units", 5), ("go_backwards", True), ("return_sequences", True), ("activation", "relu"), ("name", "lstm")],
)
@pytest.mark.parametrize("role", ["forward_layer", "backward_layer"])
def test_a_direction_refuses_its_settings_being_assigned(role: str, attribute: str, value: object) -> None:
    """The directions are the wrapper's copies, checked as a pair: a new setting would leave the model's config,
    weights and graph behind (or crash ONNX Runtime), so it is refused, built or not."""
    x = np.random.default_rng(0).normal(size=(5, 6, 4)).astype(np.float32)
    for built in (False, True):
        bi = Bidirectional(LSTM(3), name="bi")
        direction = getattr(bi, role)
        config = direction.get_config()
        if built:
            model = Sequential.of(Input(6, 4), bi, seed=0)
            model.compile(optimizer="sgd", loss="mse")
            expected = model.predict(x)
        message = rf"Setting {attribute} of LSTM layer '{direction.name}' to .*{role} of Bidirectional layer 'bi'"
        with pytest.raises(UnsupportedError, match=message + r".*Make a new Bidirectional"):
            setattr(direction, attribute, value)
        assert direction.get_config() == config
        if built:
            np.testing.assert_array_equal(model.predict(x), expected)
