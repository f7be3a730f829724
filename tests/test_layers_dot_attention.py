"""Attention (Luong) and AdditiveAttention (Bahdanau) against a float64 numpy twin and Keras 3: forwards for every
option, call form and mask, one SGD step's loss and weights against Keras' (fixtures written by
tools/keras_dot_attention_fixtures.py), gradients against finite differences, the shared harness rows (config,
shapes, parameters, training, export), dropout's masks, save/load, and the mistakes the layers refuse."""

from __future__ import annotations

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
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.layers import (
    AdditiveAttention,
    Attention,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    Input,
    Layer,
    Masking,
    SymbolicTensor,
)
from onnxtrain.losses import MeanSquaredError
from onnxtrain.optimizers import SGD

VOCABULARY = 9  # as tools/keras_dot_attention_fixtures.py embeds its ids
ScoredAttention = Attention | AdditiveAttention


# --- the numpy twin ---------------------------------------------------------------------------------------
def attend(
    layer: Layer,
    query: np.ndarray,
    value: np.ndarray | None = None,
    key: np.ndarray | None = None,
    query_mask: np.ndarray | None = None,
    value_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Keras' Attention / AdditiveAttention in float64 numpy, from `layer`'s weights and settings (inference: no
    dropout). Masked scores are shifted by -1e9 in float32, as Keras computes them: a row with no step to attend
    to is then a uniform average."""
    assert isinstance(layer, Attention | AdditiveAttention)
    p = {name: w.astype(np.float64) for name, w in layer.params.items()}
    value = query if value is None else value
    key = value if key is None else key
    q, v, k = (np.asarray(x, np.float64) for x in (query, value, key))
    if isinstance(layer, Attention) and layer.score_mode == "dot":
        scores = q @ np.swapaxes(k, -1, -2) * p.get("scale", 1.0)
    else:
        pairs = q[..., :, None, :] + k[..., None, :, :]
        if isinstance(layer, Attention):  # "concat"
            scores = p["concat_score_weight"] * np.tanh(p.get("scale", 1.0) * pairs).sum(-1)
        else:
            scores = (p.get("scale", 1.0) * np.tanh(pairs)).sum(-1)
    allowed = np.ones(scores.shape, bool)
    if layer.use_causal_mask:
        allowed &= np.tril(np.ones(scores.shape[-2:], bool))
    if value_mask is not None:
        allowed &= value_mask[..., None, :]
    shifted = (scores.astype(np.float32) - np.float32(1e9)).astype(np.float64)
    scores = np.where(allowed, scores, shifted)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    out = weights / weights.sum(-1, keepdims=True) @ v
    return out if query_mask is None else np.where(query_mask[..., None], out, 0.0)


def self_attention(layer: Layer, x: np.ndarray) -> np.ndarray:
    return attend(layer, x)


def from_keras(*names: str) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    """Keras' `get_weights()` of the layer as its parameters, by local name."""
    return lambda weights: dict(zip(names, weights, strict=True))


# --- one tensor (query = value = key): the shared layer harness -------------------------------------------
CASES = [
    LayerCase("dot_attention_self", Attention, (4, 6), (4, 6), 0, self_attention, from_keras()),
    LayerCase(
        "dot_attention_scale",
        lambda: Attention(use_scale=True),
        (4, 6),
        (4, 6),
        1,
        self_attention,
        from_keras("scale"),
    ),
    LayerCase(
        "dot_attention_concat",
        lambda: Attention(score_mode="concat"),
        (5, 3),
        (5, 3),
        1,
        self_attention,
        from_keras("concat_score_weight"),
    ),
    LayerCase(
        "dot_attention_concat_scale",
        lambda: Attention(use_scale=True, score_mode="concat"),
        (5, 3),
        (5, 3),
        2,
        self_attention,
        from_keras("scale", "concat_score_weight"),
    ),
    LayerCase(
        "dot_attention_causal",
        lambda: Attention(use_scale=True, use_causal_mask=True),
        (5, 4),
        (5, 4),
        1,
        self_attention,
        from_keras("scale"),
    ),
    LayerCase(  # the identity outside training; a random-label fit through dropout need not fall
        "dot_attention_dropout",
        lambda: Attention(dropout=0.3, seed=2),
        (4, 6),
        (4, 6),
        0,
        self_attention,
        from_keras(),
        trains=False,
    ),
    LayerCase(  # an axis before the steps: each of its entries attends alone
        "dot_attention_rank4",
        lambda: Attention(use_scale=True, score_mode="concat"),
        (2, 3, 4),
        (2, 3, 4),
        2,
        self_attention,
        from_keras("scale", "concat_score_weight"),
    ),
    LayerCase("additive_attention_self", AdditiveAttention, (4, 6), (4, 6), 6, self_attention, from_keras("scale")),
    LayerCase(
        "additive_attention_no_scale",
        lambda: AdditiveAttention(use_scale=False),
        (5, 3),
        (5, 3),
        0,
        self_attention,
        from_keras(),
    ),
    LayerCase(
        "additive_attention_causal",
        lambda: AdditiveAttention(use_causal_mask=True),
        (5, 4),
        (5, 4),
        4,
        self_attention,
        from_keras("scale"),
    ),
    LayerCase(
        "additive_attention_dropout",
        lambda: AdditiveAttention(dropout=0.4, seed=1),
        (4, 6),
        (4, 6),
        6,
        self_attention,
        from_keras("scale"),
        trains=False,
    ),
]
ROWS = {case.id: case for case in CASES}

test_self_attention_matches_numpy_and_keras, test_self_attention_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize(
    "case",
    [ROWS[i] for i in ("dot_attention_scale", "dot_attention_concat_scale", "dot_attention_causal")]
    + [ROWS[i] for i in ("dot_attention_rank4", "additive_attention_self", "additive_attention_causal")],
    ids=lambda case: case.id,
)
def test_the_input_gradient_matches_finite_differences(case: LayerCase) -> None:
    check_input_gradient(case)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Attention(use_scale=True, score_mode="concat", use_causal_mask=True),
        lambda: Attention(use_scale=True),
        AdditiveAttention,
    ],
    ids=["concat", "dot", "additive"],
)
def test_the_weight_gradients_match_finite_differences(make: Callable[[], Layer]) -> None:
    model = Sequential.of(Input(4, 3), Dense(3, activation="tanh"), make(), seed=3)
    weights = {k: v for k, v in model.get_weights().items() if "attention" in k}
    assert weights, "the attention layer has weights to check"
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
    values = {name: np.asarray(value + 0.3, np.float32) for name, value in weights.items()}  # not the initial 1

    def loss(feeds: dict[str, np.ndarray]) -> float:
        return float(session.run([emit.LOSS_NAME], data | feeds)[0])

    grads = dict(zip(values, session.run([f"{n}_grad" for n in values], data | values), strict=True))
    for name, value in values.items():
        assert grads[name].shape == value.shape, name
        for flat in range(value.size):
            index = np.unravel_index(flat, value.shape)
            up, down = dict(values), dict(values)
            up[name], down[name] = value.copy(), value.copy()
            up[name][index] += 1e-2
            down[name][index] -= 1e-2
            numeric = (loss(up) - loss(down)) / 2e-2
            np.testing.assert_allclose(grads[name][index], numeric, rtol=2e-2, atol=5e-4, err_msg=name)


# --- the Functional API: [query, value(, key)], causal masks, the masks of Embedding and Masking --------------
@dataclass
class CallCase:
    """A Keras fixture of a model over the layer's call on [query, value(, key)]: each role's tensor is an input's
    features ("features"), its ids through Embedding(mask_zero=True) ("ids"), or its features through Masking(0.0)
    ("masking"). One "ids" source alone is the call on one tensor: query and value."""

    id: str
    make: Callable[[], ScoredAttention]
    sources: tuple[str, ...]


CALLS = [
    CallCase("dot_attention_cross", lambda: Attention(use_scale=True), ("features",) * 2),
    CallCase("dot_attention_key", lambda: Attention(use_scale=True, score_mode="concat"), ("features",) * 3),
    CallCase("dot_attention_key_dot", Attention, ("features",) * 3),
    CallCase("dot_attention_causal_cross", lambda: Attention(use_causal_mask=True), ("features",) * 2),
    CallCase(
        "dot_attention_causal_wide", lambda: Attention(score_mode="concat", use_causal_mask=True), ("features",) * 3
    ),
    CallCase("dot_attention_rank4_cross", lambda: Attention(use_scale=True), ("features",) * 3),
    CallCase("additive_attention_key", AdditiveAttention, ("features",) * 3),
    CallCase("additive_attention_causal_cross", lambda: AdditiveAttention(use_causal_mask=True), ("features",) * 2),
    CallCase("dot_attention_masks", lambda: Attention(use_scale=True), ("ids", "ids")),
    CallCase(  # the key's mask differs from the value's: Keras ignores it
        "dot_attention_masks_key_causal_concat",
        lambda: Attention(score_mode="concat", use_causal_mask=True),
        ("ids",) * 3,
    ),
    CallCase("dot_attention_masks_self_causal", lambda: Attention(use_scale=True, use_causal_mask=True), ("ids",)),
    CallCase("dot_attention_masks_value_only", Attention, ("features", "masking")),
    CallCase(
        "dot_attention_masks_query_only",
        lambda: Attention(use_scale=True, score_mode="concat"),
        ("masking", "features", "features"),
    ),
    CallCase("additive_attention_masks", AdditiveAttention, ("ids",) * 3),
    CallCase("additive_attention_masks_causal", lambda: AdditiveAttention(use_causal_mask=True), ("masking", "ids")),
]
SUFFIXES = ("_q", "_v", "_k")  # the Keras models' layer names per role: embedding_q, ...


def fixture(case: str) -> dict[str, np.ndarray]:
    with np.load(KERAS_FIXTURES / f"{case}.npz") as data:
        return dict(data)


def keras_layer_weights(data: dict[str, np.ndarray], layer: str) -> list[np.ndarray]:
    weights = []
    while f"{layer}.{len(weights)}" in data:
        weights.append(data[f"{layer}.{len(weights)}"])
    return weights


def call_model(case: CallCase, data: dict[str, np.ndarray]) -> tuple[Model, ScoredAttention]:
    inputs: list[Input] = []
    tensors: list[SymbolicTensor] = []
    for i, source in enumerate(case.sources):
        x = data[f"x{i}"]
        suffix = SUFFIXES[i] if len(case.sources) > 1 else ""
        if source == "ids":
            inputs.append(Input(*x.shape[1:], dtype="int64", name=f"ids{suffix}"))
            tensors.append(Embedding(VOCABULARY, 3, mask_zero=True, name=f"embedding{suffix}")(inputs[-1]))
        else:
            inputs.append(Input(*x.shape[1:], name=f"features{suffix}"))
            tensors.append(Masking(0.0, name="masking")(inputs[-1]) if source == "masking" else inputs[-1])
    layer = case.make()
    layer.name = "attention"
    output = layer(tensors if len(tensors) > 1 else tensors[0])
    return Model(inputs, output, seed=0), layer


def keras_weights(model: Model, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fixture's `<layer name>.<i>` arrays (Keras' `get_weights()` of each layer) as the model's parameters."""
    ours = {}
    for layer in model.layers:
        given = keras_layer_weights(data, str(layer.name))
        ours |= {f"{layer.name}.{local}": w for local, w in zip(layer.params, given, strict=True)}
    return ours


def run_graph(model: Model, xs: list[np.ndarray]) -> np.ndarray:
    proto = emit.inference_graph(model.graph)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = [x.astype(np.int64) if x.dtype.kind == "i" else x for x in xs]
    return session.run(["logits"], dict(zip(emit.input_names(model.graph), feeds, strict=True)))[0]


def numpy_twin(case: CallCase, layer: ScoredAttention, data: dict[str, np.ndarray]) -> np.ndarray:
    """The numpy twin on what each source hands the layer: features, embedded ids (mask: id != 0) or masked
    features (mask: some feature != 0)."""
    values, masks = [], []
    for i, source in enumerate(case.sources):
        x = data[f"x{i}"]
        if source == "ids":
            suffix = SUFFIXES[i] if len(case.sources) > 1 else ""
            values.append(data[f"embedding{suffix}.0"][x])
            masks.append(x != 0)
        else:
            values.append(x)
            masks.append((x != 0).any(-1) if source == "masking" else None)
    values, masks = values * (2 if len(values) == 1 else 1), masks * (2 if len(masks) == 1 else 1)
    return attend(layer, *values, query_mask=masks[0], value_mask=masks[1])


@pytest.mark.parametrize("case", CALLS, ids=lambda case: case.id)
def test_calls_and_masks_match_keras_and_numpy(case: CallCase) -> None:
    data = fixture(case.id)
    model, layer = call_model(case, data)
    assert layer.output_shape == data["y"].shape[1:]
    model.set_weights(keras_weights(model, data))
    xs = [data[f"x{i}"] for i in range(int(data["inputs"]))]
    y = run_graph(model, xs)
    np.testing.assert_allclose(y, data["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, numpy_twin(case, layer, data), rtol=1e-5, atol=1e-5)
    rebuilt = Model.from_config(model.get_config())  # the recorded call rebuilds the same call
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(run_graph(rebuilt, xs), y)


def test_the_mask_fixtures_hold_fully_masked_rows_and_masked_query_steps() -> None:
    # what the forwards above check Keras' arithmetic on: a query row with no value step (a uniform average of
    # every value step, as Keras' float32 shift by -1e9 leaves it) and zeros at the query's masked steps
    data = fixture("dot_attention_masks")
    assert (~(data["x1"] != 0).any(axis=1)).any(), "some example's value is all padding"
    masked_steps = data["x0"] == 0
    assert masked_steps.any() and (data["y"][masked_steps] == 0).all()


def test_a_sequential_of_embedding_and_attention_reads_the_mask_as_keras() -> None:
    data = fixture("dot_attention_masks_self_causal")
    ids = Input(data["x0"].shape[1], dtype="int64", name="ids")
    model = Sequential.of(
        ids,
        Embedding(VOCABULARY, 3, mask_zero=True, name="embedding"),
        Attention(use_scale=True, use_causal_mask=True, name="attention"),
    )
    model.set_weights({"embedding.embeddings": data["embedding.0"], "attention.scale": data["attention.0"]})
    proto = emit.inference_graph(model.layers)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(["logits"], {"input": data["x0"].astype(np.int64)})[0]
    np.testing.assert_allclose(y, data["y"], rtol=1e-5, atol=1e-5)


# --- one SGD step against Keras' ----------------------------------------------------------------------------
def projected(make: Callable[[], ScoredAttention]) -> Callable[[dict[str, np.ndarray]], Model]:
    """Query, value and key; query and key through Dense(4) each; `make()`; the mean over the steps; Dense(3)."""

    def model(data: dict[str, np.ndarray]) -> Model:
        q, v, k = (Input(*data[f"x{i}"].shape[1:], name=role) for i, role in enumerate(("query", "value", "key")))
        pq = Dense(4, activation="linear", name="dense_q")(q)
        pk = Dense(4, activation="linear", name="dense_k")(k)
        layer = make()
        layer.name = "attention"
        return Model([q, v, k], head(layer([pq, v, pk])), seed=0)

    return model


def embedded(make: Callable[[], ScoredAttention]) -> Callable[[dict[str, np.ndarray]], Model]:
    """Query and value ids, each through Embedding(mask_zero=True); `make()`; the mean over the query's unmasked
    steps (the output's mask); Dense(3)."""

    def model(data: dict[str, np.ndarray]) -> Model:
        ids = [Input(data[f"x{i}"].shape[1], dtype="int64", name=f"ids{s}") for i, s in enumerate(SUFFIXES[:2])]
        embedded = [Embedding(VOCABULARY, 3, mask_zero=True, name=f"embedding{s}") for s in SUFFIXES[:2]]
        layer = make()
        layer.name = "attention"
        return Model(ids, head(layer([e(x) for e, x in zip(embedded, ids, strict=True)])), seed=0)

    return model


def head(x: SymbolicTensor) -> SymbolicTensor:
    return Dense(3, activation="linear", name="head")(GlobalAveragePooling1D(name="pooling")(x))


STEPS = {
    "dot_attention_step_concat": projected(lambda: Attention(use_scale=True, score_mode="concat")),
    "dot_attention_step_dot": projected(lambda: Attention(use_scale=True)),
    "dot_attention_step_masked": embedded(lambda: Attention(use_scale=True, use_causal_mask=True)),
    "additive_attention_step": projected(AdditiveAttention),
    "additive_attention_step_masked": embedded(AdditiveAttention),
}


@pytest.mark.parametrize("case", list(STEPS))
def test_one_sgd_step_matches_keras(case: str) -> None:
    data = fixture(case)
    model = STEPS[case](data)
    model.set_weights(keras_weights(model, data))
    expected = keras_weights(model, {k.removeprefix("after."): w for k, w in data.items() if k.startswith("after.")})
    xs = [data[f"x{i}"].astype(np.int64 if data[f"x{i}"].dtype.kind == "i" else np.float32) for i in range(2)]
    xs += [data[f"x{i}"] for i in range(2, int(data["inputs"]))]
    with model:
        np.testing.assert_allclose(model.predict(xs), data["y"], rtol=1e-5, atol=1e-5)
        model.compile(optimizer=SGD(learning_rate=0.1), loss="mse", engine="portable")
        history = model.fit(xs, data["target"], epochs=1, batch_size=len(data["target"]), shuffle=False, verbose=0)
        weights = model.get_weights()
    np.testing.assert_allclose(history.history["loss"][0], float(data["loss"]), rtol=1e-5)
    start = keras_weights(model, data)
    for name, value in expected.items():
        if name.startswith("attention."):  # the layer's own weights take a step
            assert np.abs(value - start[name]).max() > 1e-4, name
        np.testing.assert_allclose(weights[name], value, rtol=1e-5, atol=1e-5, err_msg=name)


# --- dropout, save and load ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: Attention(dropout=0.5, seed=3), lambda: AdditiveAttention(dropout=0.5)])
def test_dropout_drops_attention_weights_in_training_only(make: Callable[[], ScoredAttention]) -> None:
    # values one-hot per step: the output is the attention weights themselves
    rng = np.random.default_rng(0)
    query, key = rng.normal(size=(8, 4, 5)).astype(np.float32), rng.normal(size=(8, 5, 5)).astype(np.float32)
    value = np.broadcast_to(np.eye(5, dtype=np.float32), (8, 5, 5)).copy()
    layer = make()
    weights = layer([query, value, key])
    dropped = layer([query, value, key], training=True)
    again = layer([query, value, key], training=True)
    assert weights.shape == dropped.shape == (8, 4, 5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    zero = dropped == 0
    assert 0.3 < zero.mean() < 0.7, zero.mean()
    np.testing.assert_allclose(dropped[~zero], 2 * weights[~zero], rtol=1e-5)
    assert not np.array_equal(dropped, again), "each training call draws new masks"


@pytest.mark.slow
def test_dropout_resumes_with_the_same_masks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 5, 4)).astype(np.float32), rng.integers(0, 3, 40)

    def compiled() -> Sequential:
        model = Sequential.of(
            Input(5, 4), Attention(use_scale=True, dropout=0.5, seed=1), GlobalAveragePooling1D(), Dense(3), seed=4
        )
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
        return model

    check_resumed_fit(compiled, x, y, tmp_path)


@pytest.mark.training
def test_dropout_on_the_ort_training_engine_is_refused_clearly() -> None:
    with Sequential.of(Input(4, 6), AdditiveAttention(dropout=0.2), seed=0) as model:
        with pytest.raises(UnsupportedError, match="only the portable engine"):
            model.compile(optimizer="adam", loss="mse", engine="ort-training")


def test_a_masked_functional_model_trains_exports_saves_and_loads(tmp_path: Path) -> None:
    case = CALLS[9]  # query, value and key ids, each embedded with its mask; causal
    data = fixture(case.id)
    model, _ = call_model(case, data)
    xs = [data[f"x{i}"].astype(np.int64) for i in range(3)]
    target = np.random.default_rng(3).normal(size=data["y"].shape).astype(np.float32)
    with model:
        model.compile(optimizer="adam", loss="mse", engine="portable")
        losses = model.fit(xs, target, epochs=5, verbose=0).history["loss"]
        assert losses[-1] < losses[0], losses
        expected = model.predict(xs)
        model.export(tmp_path / "attention.onnx")
        model.save(tmp_path / "saved")
    np.testing.assert_allclose(InferenceModel.load(tmp_path / "attention.onnx").predict(xs), expected, rtol=1e-5)
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_allclose(loaded.predict(xs), expected, rtol=1e-6)
        assert loaded.get_config() == model.get_config()


# --- config -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layer", "keras_config"),
    [
        (
            Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=7, use_causal_mask=True, name="a"),
            {"name": "a", "trainable": True, "use_scale": True, "score_mode": "concat", "dropout": 0.1, "seed": 7},
        ),
        (
            AdditiveAttention(use_scale=False, dropout=0.2, seed=3, name="b", trainable=False),
            {"name": "b", "trainable": False, "use_scale": False, "dropout": 0.2, "seed": 3},
        ),
    ],
    ids=["attention", "additive"],
)
def test_config_round_trips_and_takes_keras_config(layer: ScoredAttention, keras_config: dict[str, object]) -> None:
    config = layer.get_config()
    assert Layer.from_config(layer.serialize()).get_config() == config
    assert config.items() >= keras_config.items()  # Keras' keys, Keras' values
    from_keras_config = type(layer).from_config(keras_config)  # what Keras' get_config wrote (its dtype aside)
    assert from_keras_config.get_config() == config | {"use_causal_mask": False}


def test_keras_call_argument_use_causal_mask_is_the_layer_setting() -> None:
    query, value = Input(5, 4), Input(5, 4)
    layer = Attention()
    model = Model([query, value], layer([query, value], use_causal_mask=True), seed=0)
    assert layer.use_causal_mask and layer.get_config()["use_causal_mask"]
    xs = [np.random.default_rng(i).normal(size=(3, 5, 4)).astype(np.float32) for i in range(2)]
    np.testing.assert_allclose(run_graph(model, xs), attend(layer, *xs), rtol=1e-5, atol=1e-6)
    rebuilt = Model.from_config(model.get_config())
    np.testing.assert_array_equal(run_graph(rebuilt, xs), run_graph(model, xs))


def test_settings_assigned_after_construction_are_checked_as_the_constructor_checks_them() -> None:
    layer = Attention(use_scale=True)
    Sequential.of(Input(4, 6), layer)
    layer.dropout = 0.25  # no shape changes: taken
    assert layer.dropout == 0.25 and layer.get_config()["dropout"] == 0.25
    with pytest.raises(ShapeError, match="weights would have shapes"):
        layer.score_mode = "concat"  # a concat_score_weight more
    with pytest.raises(InvalidArgumentError, match="Received: score_mode='sum'"):
        layer.score_mode = "sum"


# --- mistakes -----------------------------------------------------------------------------------------------
def _called(*shapes: tuple[int, ...], **kwargs: object) -> Callable[[], object]:
    def call() -> object:
        inputs = [Input(*shape) for shape in shapes]
        return Functional(inputs, Attention()(inputs, **kwargs))

    return call


def _shared_with_another_causal_setting() -> None:
    x = Input(4, 6)
    layer = AdditiveAttention()
    layer([x, x])
    layer([x, x], use_causal_mask=True)


BAD = [
    (
        lambda: Attention(score_mode="sum"),
        InvalidArgumentError,
        r"Attention\(score_mode=...\) expects one of 'dot', 'concat'. Received: score_mode='sum'",
    ),
    (
        lambda: Attention(use_scale="yes"),
        InvalidArgumentError,
        r"Attention\(use_scale=...\) expects a bool. Received: use_scale='yes'",
    ),
    (
        lambda: AdditiveAttention(dropout=1.0),
        InvalidArgumentError,
        r"AdditiveAttention\(dropout=...\) expects a number in \[0, 1\). Received: dropout=1.0",
    ),
    (lambda: Attention(seed=-1), InvalidArgumentError, r"Received: seed=-1"),
    (lambda: AdditiveAttention(use_causal_mask=1), InvalidArgumentError, r"Received: use_causal_mask=1"),
    (
        lambda: AdditiveAttention(score_mode="dot"),
        InvalidTypeError,
        r"unexpected keyword argument 'score_mode'. AdditiveAttention takes: use_scale, dropout, seed",
    ),
    (_called((4, 6), (5, 6), return_attention_scores=True), UnsupportedError, r"return_attention_scores=True"),
    (_called((4, 6), (5, 6), mask=[None, None]), UnsupportedError, r"explicit mask=\[query_mask, value_mask\]"),
    (_called((4, 6), (5, 6), (5, 6), (5, 6)), InvalidArgumentError, r"\[query, value, key\].*a list of 4"),
    (
        _called((4, 6), (5, 2)),
        ShapeError,
        r"need the same features. Received: query \[None, 4, 6\], key \[None, 5, 2\]",
    ),
    (
        _called((4, 6), (5, 2), (6, 6)),
        ShapeError,
        r"value and key of the same steps.*Received: value \[None, 5, 2\], key \[None, 6, 6\]",
    ),
    (_called((4, 6), (2, 5, 6)), ShapeError, r"query, value and key of one rank"),
    (
        lambda: Sequential.of(Input(6), Attention()),
        ShapeError,
        r"query of shape \[None, steps, features\].*Received: query shape \[None, 6\]",
    ),
    (_shared_with_another_causal_setting, InvalidArgumentError, r"Received: use_causal_mask=True"),
    (
        lambda: Attention()([Input(4, 6), Input(4, 6)], Input(4, 6)),
        InvalidTypeError,
        r"a list \[query, value, key\] or the tensors one by one, not both",
    ),
    (lambda: Attention()([Input(4, 6)] * 2, training=True), UnsupportedError, r"Received: training=True"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD)
def test_mistakes_are_refused_naming_the_value(make: Callable[[], object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()
