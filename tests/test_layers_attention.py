"""MultiHeadAttention against a float64 numpy twin and Keras 3: forwards for every call form and option (fixtures
written by tools/keras_fixtures.py from tools/keras_cases/attention.py), one SGD step against Keras'
(tools/keras_attention_step.py), gradients against finite differences, a tiny transformer that learns, the
export, save/load, reproducible dropout masks, and the mistakes it refuses."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from layer_gradients import check_input_gradient
from layer_harness import KERAS_FIXTURES, LayerCase, check_resumed_fit, table_tests

from onnxtrain import InferenceModel, Model, Sequential, autodiff, emit, load_model
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.layers import (
    Add,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    Input,
    Layer,
    LayerNormalization,
    MultiHeadAttention,
)
from onnxtrain.losses import MeanSquaredError
from onnxtrain.optimizers import SGD

ROLES = ("query", "value", "key", "mask")
MASK_THRESHOLD, SPARSE_MASK_THRESHOLD = -1.0, 1.0  # as tools/keras_cases/attention.py draws its masks


# --- the numpy twin ---------------------------------------------------------------------------------------
def attention(layer: Layer, query: np.ndarray, value=None, key=None, mask=None) -> np.ndarray:
    """Keras' MultiHeadAttention in float64 numpy, from `layer`'s weights and settings (inference: no dropout)."""
    assert isinstance(layer, MultiHeadAttention)
    p = {name: w.astype(np.float64) for name, w in layer.params.items()}
    value = query if value is None else value
    key = value if key is None else key
    n, axes = len(query), query.shape[1:-1]
    q, v, k = (x.reshape(n, -1, x.shape[-1]).astype(np.float64) for x in (query, value, key))

    def project(part: str, x: np.ndarray) -> np.ndarray:
        return np.einsum("ntf,fhd->nthd", x, p[f"{part}.kernel"]) + p.get(f"{part}.bias", 0.0)

    scores = np.einsum("nthd,nshd->nhts", project("query", q) / math.sqrt(layer.key_dim), project("key", k))
    t, s = scores.shape[-2:]
    allowed = np.ones((n, 1, t, s), bool)
    if layer.use_causal_mask:
        allowed &= np.tril(np.ones((t, s), bool))
    if layer.sliding_window is not None:
        allowed &= np.abs(np.arange(t)[:, None] - np.arange(s)[None, :]) < layer.sliding_window
    if mask is not None:
        allowed &= mask.reshape(n, 1, t, s) != 0
    scores = np.where(allowed, scores, -1e9)
    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
    probabilities = np.where(allowed, probabilities / probabilities.sum(-1, keepdims=True), 0.0)
    context = np.einsum("nhts,nshd->nthd", probabilities, project("value", v))
    if layer.use_gate:
        context = context / (1 + np.exp(-project("gate", q)))
    kernel = p["attention_output.kernel"]
    out = np.einsum("nthd,hdo->nto", context, kernel.reshape(*kernel.shape[:2], -1))
    out = out + p.get("attention_output.bias", np.zeros(kernel.shape[2:])).reshape(-1)
    return out.reshape(n, *axes, *kernel.shape[2:])


def keras_names(use_bias: bool = True, use_gate: bool = False) -> list[str]:
    """The layer's weights in Keras' `get_weights()` order, by local name."""
    parts = ["query", "key", *(["gate"] if use_gate else []), "value", "attention_output"]
    return [f"{part}.{w}" for part in parts for w in (("kernel", "bias") if use_bias else ("kernel",))]


def from_keras(use_bias: bool = True, use_gate: bool = False) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    return lambda weights: dict(zip(keras_names(use_bias, use_gate), weights, strict=True))


def self_attention(layer: Layer, x: np.ndarray) -> np.ndarray:
    return attention(layer, x)


def mha_params(dims: tuple[int, int, int], heads: int, key_dim: int, value_dim: int, out: int, bias=True) -> int:
    """Keras' parameter count for query, value and key features `dims` and `out` output features."""
    query, value, key = dims
    weights = heads * key_dim * (query + key) + heads * value_dim * value + heads * value_dim * out
    biases = 2 * heads * key_dim + heads * value_dim + out
    return weights + (biases if bias else 0)


# --- self-attention: the shared layer harness (Sequential; Keras' forward, training, export) -----------------
CASES = [
    LayerCase(
        "attention_self",
        lambda: MultiHeadAttention(num_heads=2, key_dim=3),
        (4, 6),
        (4, 6),
        mha_params((6, 6, 6), 2, 3, 3, 6),
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "attention_value_dim",
        lambda: MultiHeadAttention(2, 3, value_dim=5),
        (4, 6),
        (4, 6),
        mha_params((6, 6, 6), 2, 3, 5, 6),
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "attention_output_shape_2d",
        lambda: MultiHeadAttention(2, 3, output_shape=(2, 3)),
        (4, 6),
        (4, 2, 3),
        mha_params((6, 6, 6), 2, 3, 3, 6),
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "attention_no_bias",
        lambda: MultiHeadAttention(2, 4, use_bias=False),
        (5, 3),
        (5, 3),
        mha_params((3, 3, 3), 2, 4, 4, 3, bias=False),
        self_attention,
        from_keras(use_bias=False),
    ),
    LayerCase(
        "attention_causal",
        lambda: MultiHeadAttention(2, 3, use_causal_mask=True),
        (5, 4),
        (5, 4),
        mha_params((4, 4, 4), 2, 3, 3, 4),
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "attention_sliding_window",
        lambda: MultiHeadAttention(2, 3, use_causal_mask=True, sliding_window=2),
        (5, 4),
        (5, 4),
        mha_params((4, 4, 4), 2, 3, 3, 4),
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "attention_dropout",  # the identity outside training; a random-label fit through dropout need not fall
        lambda: MultiHeadAttention(2, 3, dropout=0.3, seed=4),
        (4, 6),
        (4, 6),
        mha_params((6, 6, 6), 2, 3, 3, 6),
        self_attention,
        from_keras(),
        trains=False,
    ),
    LayerCase(
        "attention_rank4",  # two sequence axes attend together
        lambda: MultiHeadAttention(2, 3),
        (2, 3, 4),
        (2, 3, 4),
        mha_params((4, 4, 4), 2, 3, 3, 4),
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "attention_gate",
        lambda: MultiHeadAttention(2, 3, use_gate=True),
        (4, 6),
        (4, 6),
        mha_params((6, 6, 6), 2, 3, 3, 6) + 6 * 2 * 3 + 2 * 3,
        self_attention,
        from_keras(use_gate=True),
    ),
]

test_self_attention_matches_numpy_and_keras, test_self_attention_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[7]], ids=lambda case: case.id)
def test_the_input_gradient_matches_finite_differences(case: LayerCase) -> None:
    check_input_gradient(case)


def test_the_weight_gradients_match_finite_differences() -> None:
    model = Sequential.of(Input(4, 3), MultiHeadAttention(2, 2, value_dim=3, use_causal_mask=True), seed=3)
    weights = model.get_weights()
    proto = emit.loss_model(model.layers, MeanSquaredError())
    graph = proto.graph  # the weights as graph inputs, so the differences can feed them
    for tensor in [t for t in graph.initializer if t.name in weights]:
        graph.initializer.remove(tensor)
        graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    proto = autodiff.gradients(proto, list(weights))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    data = {emit.INPUT_NAME: rng.normal(size=(3, 4, 3)), emit.LABELS_NAME: rng.normal(size=(3, 4, 3))}
    data = {name: value.astype(np.float32) for name, value in data.items()}

    def loss(values: dict[str, np.ndarray]) -> float:
        return float(session.run([emit.LOSS_NAME], data | values)[0])

    grads = dict(zip(weights, session.run([f"{n}_grad" for n in weights], data | weights), strict=True))
    for name, value in weights.items():  # a few elements of every weight, by central differences
        for flat in np.random.default_rng(1).permutation(value.size)[:3]:
            index = np.unravel_index(flat, value.shape)
            up, down = dict(weights), dict(weights)
            up[name], down[name] = value.copy(), value.copy()
            up[name][index] += 1e-2
            down[name][index] -= 1e-2
            numeric = (loss(up) - loss(down)) / 2e-2
            np.testing.assert_allclose(grads[name][index], numeric, rtol=2e-2, atol=5e-4, err_msg=name)


# --- the Functional API: cross-attention, key, masks ---------------------------------------------------------
@dataclass
class CallCase:
    """A Keras fixture of a call on several tensors (query, value[, key][, mask]): a Model of one Input each."""

    id: str
    make: Callable[[], MultiHeadAttention]
    shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    mask_threshold: float = MASK_THRESHOLD


CALLS = [
    CallCase("attention_cross", lambda: MultiHeadAttention(2, 3), [(4, 6), (5, 3)], (4, 6)),
    CallCase("attention_key", lambda: MultiHeadAttention(3, 2), [(4, 6), (5, 3), (5, 2)], (4, 6)),
    CallCase("attention_output_shape", lambda: MultiHeadAttention(2, 3, output_shape=7), [(4, 6), (3, 6)], (4, 7)),
    CallCase(
        "attention_causal_cross", lambda: MultiHeadAttention(2, 3, use_causal_mask=True), [(5, 4), (3, 4)], (5, 4)
    ),
    CallCase("attention_mask", lambda: MultiHeadAttention(2, 3), [(4, 6), (5, 3), (5, 3), (4, 5)], (4, 6)),
    CallCase(
        "attention_mask_causal",
        lambda: MultiHeadAttention(2, 3, use_causal_mask=True),
        [(4, 6), (4, 6), (4, 6), (4, 4)],
        (4, 6),
    ),
    CallCase(
        "attention_mask_fully_masked_rows",
        lambda: MultiHeadAttention(2, 3, dropout=0.2),
        [(6, 4), (3, 4), (3, 4), (6, 3)],
        (6, 4),
        SPARSE_MASK_THRESHOLD,
    ),
    CallCase("attention_rank4_cross", lambda: MultiHeadAttention(2, 3), [(2, 3, 4), (3, 2, 5)], (2, 3, 4)),
]


def call_model(case: CallCase) -> tuple[Model, MultiHeadAttention]:
    layer = case.make()
    inputs = [Input(*shape, name=role) for role, shape in zip(ROLES, case.shapes, strict=False)]
    mask = inputs[3] if len(inputs) > 3 else None
    output = layer(inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None, attention_mask=mask)
    return Model(inputs, output, seed=0), layer


def run_graph(model: Model, xs: list[np.ndarray]) -> np.ndarray:
    proto = emit.inference_graph(model.graph)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["logits"], dict(zip(emit.input_names(model.graph), xs, strict=True)))[0]


@pytest.mark.parametrize("case", CALLS, ids=lambda case: case.id)
def test_calls_on_several_tensors_match_keras_and_numpy(case: CallCase) -> None:
    with np.load(KERAS_FIXTURES / f"{case.id}.npz") as data:
        xs = [data[f"x{i}"] for i in range(int(data["inputs"]))]
        expected = data["y"]
        weights = [data[f"w{i}"] for i in range(int(data["weights"]))]
    if len(xs) > 3:
        xs[3] = (xs[3] > case.mask_threshold).astype(np.float32)
    model, layer = call_model(case)
    assert layer.output_shape == case.output_shape
    assert layer.param_count == sum(w.size for w in weights)
    model.set_weights({f"{layer.name}.{name}": w for name, w in from_keras()(weights).items()})
    y = run_graph(model, xs)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, attention(layer, *xs), rtol=1e-5, atol=1e-5)
    rebuilt = Model.from_config(model.get_config())  # the recorded call rebuilds the same call
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(run_graph(rebuilt, xs), y)


def test_the_fully_masked_rows_fixture_leaves_some_query_row_no_key() -> None:
    # its forward (above) checks Keras' zero scores for such rows
    with np.load(KERAS_FIXTURES / "attention_mask_fully_masked_rows.npz") as data:
        mask = data["x3"] > SPARSE_MASK_THRESHOLD
    assert (~mask.any(axis=-1)).any(), "the fixture must have a fully masked query row"


def test_one_sgd_step_matches_keras() -> None:
    step = np.load(KERAS_FIXTURES / "attention_sgd_step.npz")
    inputs = [Input(*step[f"x/{role}"].shape[1:], name=role) for role in ROLES]
    layer = MultiHeadAttention(2, 3, value_dim=2)
    attended = layer(inputs[0], inputs[1], inputs[2], attention_mask=inputs[3])
    head = Dense(3, activation="linear")
    model = Model(inputs, head(GlobalAveragePooling1D()(attended)), seed=0)
    names = [f"{layer.name}.{n}" for n in keras_names()] + [f"{head.name}.kernel", f"{head.name}.bias"]
    count = int(step["weights"])
    model.set_weights({name: step[f"start/w{i}"] for i, name in enumerate(names[:count])})
    with model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss="mse", engine="portable")
        xs = [step[f"x/{role}"] for role in ROLES]
        history = model.fit(xs, step["y"], epochs=1, batch_size=len(step["y"]), shuffle=False, verbose=0)
        after = model.get_weights()
    np.testing.assert_allclose(history.history["loss"][0], float(step["loss"]), rtol=1e-5)
    for i, name in enumerate(names):
        moved = np.abs(step[f"after/w{i}"] - step[f"start/w{i}"]).max()
        # The key's bias adds q . b to every key's score of a query: softmax ignores it, its gradient is 0.
        assert (moved < 1e-6) if name.endswith("key.bias") else (moved > 1e-4), (name, moved)
        np.testing.assert_allclose(after[name], step[f"after/w{i}"], rtol=1e-5, atol=1e-6, err_msg=name)


# --- a tiny transformer block --------------------------------------------------------------------------------
def transformer(seed: int = 0, dropout: float = 0.0) -> Model:
    tokens = Input(8, dtype="int64", name="tokens")
    x = Embedding(10, 16)(tokens)
    x = LayerNormalization()(Add()([x, MultiHeadAttention(2, 8, dropout=dropout)(x, x)]))
    return Model(tokens, Dense(2, activation="linear")(GlobalAveragePooling1D()(x)), seed=seed)


def token_task(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of 8 tokens of 10; the label says whether token 1 outnumbers token 2 (no ties). Without
    positions the block sees a set of tokens, so the task is one a set allows."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 10, size=(4 * n, 8))
    ones, twos = (x == 1).sum(axis=1), (x == 2).sum(axis=1)
    keep = np.flatnonzero(ones != twos)[:n]
    return x[keep], (ones > twos)[keep].astype(np.int64)


@pytest.mark.slow
def test_a_tiny_transformer_learns_and_its_export_predicts_the_same(tmp_path: Path) -> None:
    x, y = token_task()
    with transformer(seed=1) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy", engine="portable")
        losses = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history["loss"]
        assert losses[-1] < 0.5 * losses[0], losses
        expected = model.predict_softly(x)
        model.export(tmp_path / "transformer.onnx")
        model.save(tmp_path / "saved")
    np.testing.assert_allclose(InferenceModel.load(tmp_path / "transformer.onnx").predict_softly(x), expected, 1e-5)
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_allclose(loaded.predict_softly(x), expected, rtol=1e-6)
        assert loaded.get_config() == model.get_config()


@pytest.mark.slow
def test_dropout_drops_scores_in_training_only_and_resumes_with_the_same_masks(tmp_path: Path) -> None:
    x, y = token_task(n=40, seed=2)

    def compiled() -> Model:
        model = transformer(seed=4, dropout=0.5)
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
        return model

    with compiled() as straight:
        _, training_logits = straight._trainer.engine.train_step(x[:10], y[:10])
        _, eval_logits = straight._trainer.engine.eval_step(x[:10], y[:10])
        assert not np.allclose(training_logits, eval_logits, atol=1e-3)
    check_resumed_fit(compiled, x, y, tmp_path)


def _weights_as_output(layer: MultiHeadAttention, query: np.ndarray, value: np.ndarray) -> None:
    """Build `layer` by a call and give it weights under which its output is its attention weights: value one-hot
    per step and the identity value and output projections make output[n, t, h * steps + s] = weights[n, h, t, s]."""
    layer(query, value)
    heads, steps = layer.num_heads, value.shape[1]
    layer.params["value.kernel"][...] = np.stack([np.eye(steps, dtype=np.float32)] * heads, axis=1)
    layer.params["attention_output.kernel"][...] = np.eye(heads * steps, dtype=np.float32).reshape(heads, steps, -1)
    for name in ("value.bias", "attention_output.bias"):
        layer.params[name][...] = 0.0


def test_an_eager_training_call_drops_attention_weights_as_keras_does() -> None:
    # Keras drops each attention weight with probability `dropout` and scales the kept ones by 1 / (1 - dropout)
    rng = np.random.default_rng(0)
    query = rng.normal(size=(8, 4, 6)).astype(np.float32)
    value = np.broadcast_to(np.eye(5, dtype=np.float32), (8, 5, 5)).copy()
    layer = MultiHeadAttention(2, 3, value_dim=5, output_shape=10, dropout=0.5, seed=3)
    _weights_as_output(layer, query, value)
    weights = layer(query, value)
    np.testing.assert_allclose(weights, attention(layer, query, value), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights.reshape(8, 4, 2, 5).sum(-1), 1.0, rtol=1e-5)
    dropped = layer(query, value, training=True)
    again = layer(query, value, training=True)
    assert dropped.shape == weights.shape == (8, 4, 10)
    zero = dropped == 0
    assert 0.35 < zero.mean() < 0.65, zero.mean()
    np.testing.assert_allclose(dropped[~zero], 2 * weights[~zero], rtol=1e-5)
    assert not np.array_equal(dropped, again), "each training call draws new masks"
    np.testing.assert_allclose(layer(query, value, training=False), weights, rtol=1e-6)
    same = MultiHeadAttention(2, 3, value_dim=5, output_shape=10, dropout=0.5, seed=3)
    same(query, value)  # built, then given the same weights
    same.set_weights(layer.get_weights())
    np.testing.assert_array_equal(same(query, value, training=True), dropped)  # a fresh layer draws as step 0


def test_an_eager_training_call_takes_the_masked_call_form() -> None:
    # without dropout the training graph computes what inference does: Keras' attention under the mask
    rng = np.random.default_rng(1)
    query, value = rng.normal(size=(4, 5, 6)).astype(np.float32), rng.normal(size=(4, 3, 2)).astype(np.float32)
    mask = (rng.random((4, 5, 3)) > 0.3).astype(np.float32)
    layer = MultiHeadAttention(2, 3, use_causal_mask=True)
    trained = layer(query, value, attention_mask=mask, training=True)
    expected = attention(layer, query, value, mask=mask)
    np.testing.assert_allclose(trained, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer([query, value, value, mask], training=True), expected, rtol=1e-5, atol=1e-6)


def test_config_round_trips_every_argument() -> None:
    layer = MultiHeadAttention(
        4,
        2,
        value_dim=3,
        dropout=0.1,
        use_bias=False,
        output_shape=(2, 5),
        attention_axes=-2,
        use_causal_mask=True,
        sliding_window=3,
        use_gate=True,
        kernel_initializer="he_normal",
        bias_initializer="ones",
        kernel_regularizer="l2",
        seed=7,
        name="attention",
    )
    config = layer.get_config()
    assert config["output_shape"] == [2, 5] and config["attention_axes"] == [-2]
    assert Layer.from_config(layer.serialize()).get_config() == config
    keras_like = {**config, "kernel_constraint": None, "bias_constraint": None, "activity_regularizer": None}
    assert MultiHeadAttention(**keras_like).get_config() == config


def test_a_functional_model_with_a_mask_input_saves_and_loads(tmp_path: Path) -> None:
    model, _ = call_model(CALLS[4])
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(6, *shape)).astype(np.float32) for shape in CALLS[4].shapes]
    xs[3] = (xs[3] > -1).astype(np.float32)
    with model:
        model.compile(optimizer="adam", loss="mse", engine="portable")
        model.fit(xs, rng.normal(size=(6, 4, 6)).astype(np.float32), epochs=1, verbose=0)
        expected = model.predict(xs)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_allclose(loaded.predict(xs), expected, rtol=1e-6)


def test_self_attention_called_on_one_tensor_equals_calling_it_on_query_and_value() -> None:
    x = np.random.default_rng(5).normal(size=(3, 4, 6)).astype(np.float32)
    one = Sequential.of(Input(4, 6), MultiHeadAttention(2, 3), seed=2)
    query = Input(4, 6)
    two = Model(query, MultiHeadAttention(2, 3)(query, query), seed=2)
    two.set_weights(one.get_weights())
    proto = emit.inference_graph(one.layers)
    expected = ort.InferenceSession(proto.SerializeToString()).run(["logits"], {"input": x})[0]
    np.testing.assert_allclose(run_graph(two, [x]), expected, rtol=1e-6)


def test_keras_call_argument_use_causal_mask_is_the_layer_setting_and_trains() -> None:
    x = np.random.default_rng(6).normal(size=(8, 5, 4)).astype(np.float32)
    given = Sequential.of(Input(5, 4), MultiHeadAttention(2, 3, use_causal_mask=True), seed=2)
    query = Input(5, 4)
    layer = MultiHeadAttention(2, 3)
    called = Model(query, layer(query, query, use_causal_mask=True), seed=2)
    assert layer.use_causal_mask and layer.get_config()["use_causal_mask"]
    called.set_weights(given.get_weights())
    np.testing.assert_allclose(run_graph(called, [x]), attention(given.layers[1], x), rtol=1e-5, atol=1e-6)
    with called:
        called.compile(optimizer="sgd", loss="mse", engine="portable")
        losses = called.fit(x, np.zeros_like(x), epochs=3, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses


def test_settings_assigned_after_construction_are_checked_as_the_constructor_checks_them() -> None:
    layer = MultiHeadAttention(2, 3)
    Sequential.of(Input(4, 6), layer)
    layer.dropout = 0.25  # no shape changes: taken
    assert layer.dropout == 0.25 and layer.output_shape == (4, 6)
    with pytest.raises(ShapeError, match="weights would have shapes"):
        layer.key_dim = 4
    with pytest.raises(InvalidArgumentError, match="Received: num_heads=0"):
        layer.num_heads = 0


# --- mistakes ------------------------------------------------------------------------------------------------
def _called(*shapes: tuple[int, ...], **kwargs) -> Callable[[], object]:
    def call() -> object:
        inputs = [Input(*shape) for shape in shapes]
        return Functional(inputs, MultiHeadAttention(2, 3, **kwargs)(*inputs[:3]))

    return call


def _masked(query: tuple[int, ...], mask: tuple[int, ...]) -> Callable[[], object]:
    def call() -> object:
        x, m = Input(*query), Input(*mask)
        return Functional([x, m], MultiHeadAttention(2, 3)(x, x, attention_mask=m))

    return call


def _shared_with_another_causal_setting() -> None:
    x = Input(4, 6)
    layer = MultiHeadAttention(2, 3)
    layer(x, x)
    layer(x, x, use_causal_mask=True)


def _eagerly_built_then_called_on_another_value() -> None:
    x = np.ones((2, 4, 6), np.float32)
    layer = MultiHeadAttention(2, 3)
    layer(x)  # self-attention: built for query, value and key of shape [None, 4, 6]
    layer(x, np.ones((2, 5, 7), np.float32))  # other value features: the key kernel does not fit them


BAD = [
    (
        lambda: MultiHeadAttention(0, 3),
        InvalidArgumentError,
        r"num_heads=...\) expects a positive int. Received: num_heads=0",
    ),
    (
        lambda: MultiHeadAttention(2, -1),
        InvalidArgumentError,
        r"key_dim=...\) expects a positive int. Received: key_dim=-1",
    ),
    (lambda: MultiHeadAttention(2, 3, value_dim=0), InvalidArgumentError, r"Received: value_dim=0"),
    (
        lambda: MultiHeadAttention(2, 3, dropout=1.0),
        InvalidArgumentError,
        r"dropout=...\) expects a number in \[0, 1\)",
    ),
    (lambda: MultiHeadAttention(2, 3, output_shape="wide"), InvalidArgumentError, r"Received: output_shape='wide'"),
    (lambda: MultiHeadAttention(2, 3, attention_axes="time"), InvalidArgumentError, r"attention_axes='time'"),
    (lambda: MultiHeadAttention(2, 3, sliding_window=0), InvalidArgumentError, r"Received: sliding_window=0"),
    (lambda: MultiHeadAttention(2, 3, activity_regularizer="l2"), UnsupportedError, r"activity_regularizer='l2'"),
    (
        lambda: MultiHeadAttention(2, 3, flash_attention=True),
        TypeError,
        r"unexpected keyword argument 'flash_attention'",
    ),
    (
        lambda: Sequential.of(Input(4, 6), MultiHeadAttention(2, 3, attention_axes=(2,))),
        UnsupportedError,
        r"default axes only, \[1\] for inputs of shape \[None, 4, 6\]. Received: attention_axes=\[2\]",
    ),
    (
        lambda: Sequential.of(Input(6), MultiHeadAttention(2, 3)),
        ShapeError,
        r"query of shape \[None, sequence, features\]",
    ),
    (
        _called((4, 6), (5, 3), (6, 3)),
        ShapeError,
        r"value and key of the same shape except the features.*Received: value \[None, 5, 3\], key \[None, 6, 3\]",
    ),
    (_called((4, 6), (2, 5, 3)), ShapeError, r"query, value and key of one rank"),
    (
        lambda: Sequential.of(Input(2, 3, 4), MultiHeadAttention(2, 3, use_causal_mask=True)),
        UnsupportedError,
        r"one sequence axis.*Received: query shape \[None, 2, 3, 4\]",
    ),
    (_masked((4, 6), (4, 5)), ShapeError, r"attention_mask of shape \[None, 4, 4\].*Received: \[None, 4, 5\]"),
    (
        lambda: MultiHeadAttention(2, 3)(Input(4, 6), return_attention_scores=True),
        UnsupportedError,
        r"Received: return_attention_scores=True",
    ),
    (lambda: MultiHeadAttention(2, 3)([Input(4, 6)] * 5), InvalidArgumentError, r"1 to 4 tensors.*a list of 5"),
    (lambda: MultiHeadAttention(2, 3)(Input(4, 6), key=Input(4, 6)), InvalidArgumentError, r"takes a key with a value"),
    (_shared_with_another_causal_setting, InvalidArgumentError, r"Received: use_causal_mask=True"),
    (
        lambda: MultiHeadAttention(2, 3, dropout=0.5)(Input(4, 6), training=True),
        UnsupportedError,
        r"training=True is not supported on symbolic tensors.*a call on numpy arrays takes training=True",
    ),
    (
        _eagerly_built_then_called_on_another_value,
        ShapeError,
        r"built for query \[None, 4, 6\], value \[None, 4, 6\], key \[None, 4, 6\] by its first call.*its weights "
        r"do not fit these: it has key.kernel of shape \[6, 2, 3\], where they need key.kernel of shape \[7, 2, 3\]",
    ),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD)
def test_mistakes_are_refused_naming_the_value(make: Callable[[], object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.training
def test_dropout_on_the_ort_training_engine_is_refused_clearly() -> None:
    with Sequential.of(Input(4, 6), MultiHeadAttention(2, 3, dropout=0.2), seed=0) as model:
        with pytest.raises(UnsupportedError, match="only the portable engine"):
            model.compile(optimizer="adam", loss="mse", engine="ort-training")
