"""Keras' masking: Embedding(mask_zero=True), Masking and the layers that read, change or pass a mask, against Keras
3's numbers (tools/keras_masking_fixtures.py writes tests/data/keras_masking/: masks before the data, after it,
with holes, of one step, of none), in the exported inference graph and in one training step; what Keras drops and
what is refused; and that a model without masks emits what it did before."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from layer_harness import LayerCase, check_reference, check_training_and_export
from test_layers_bidirectional import bidirectional_weights
from test_layers_recurrent import from_keras

from onnxtrain import InferenceModel, Model, Sequential, emit
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.layers import (
    GRU,
    LSTM,
    Add,
    BatchNormalization,
    Bidirectional,
    Concatenate,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    Input,
    Layer,
    LayerNormalization,
    Masking,
    MultiHeadAttention,
    SimpleRNN,
    Softmax,
    TimeDistributed,
)
from onnxtrain.losses import CategoricalCrossentropy
from onnxtrain.optimizers import SGD

FIXTURES = Path(__file__).parent / "data" / "keras_masking"
STEPS, VOCABULARY, FEATURES = 7, 12, 3
ATTENTION_ORDER = [f"{part}.{w}" for part in ("query", "key", "value", "attention_output") for w in ("kernel", "bias")]


# --- the models of the fixtures, named as Keras' -----------------------------------------------------------------
def ids_input() -> Input:
    return Input(STEPS, dtype="int64", name="ids")


def embedded(*layers: Layer) -> Sequential:
    return Sequential.of(ids_input(), Embedding(VOCABULARY, 4, mask_zero=True, name="embedding"), *layers)


def masked_features(*layers: Layer, mask_value: float = 0.0) -> Sequential:
    return Sequential.of(Input(STEPS, FEATURES), Masking(mask_value, name="masking"), *layers)


def linear(units: int, name: str = "dense") -> Dense:
    return Dense(units, activation="linear", kernel_initializer="glorot_uniform", bias_initializer="zeros", name=name)


def attention_pooled() -> Model:
    ids = ids_input()
    e = Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)
    attended = MultiHeadAttention(2, 3, name="attention")(e, e)
    normalized = LayerNormalization(name="norm")(Add(name="add")([e, attended]))
    return Model(ids, linear(2)(GlobalAveragePooling1D(name="pooling")(normalized)))


def merged(merge: Layer) -> Model:
    ids = ids_input()
    e = Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)
    a = LSTM(3, return_sequences=True, name="lstm_a")(e)
    return Model(ids, LSTM(2, name="lstm")(merge([a, linear(3, "dense_b")(e)])))


def beside_unmasked() -> Model:
    ids = ids_input()
    masked = Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)
    plain = Embedding(VOCABULARY, 2, name="embedding_b")(ids)
    return Model(ids, LSTM(2, name="lstm")(Concatenate(name="join")([masked, plain])))


def two_masks(merge: Layer) -> Model:
    """Two id inputs padded differently, each embedded with its mask, merged (Keras 3 ORs the masks), then an LSTM."""
    ids = [Input(STEPS, dtype="int64", name=name) for name in ("ids", "ids_b")]
    embedded = [
        Embedding(VOCABULARY, 4, mask_zero=True, name=f"embedding{s}")(x) for s, x in zip(("", "_b"), ids, strict=True)
    ]
    return Model(ids, LSTM(2, name="lstm")(merge(embedded)))


def bidirectional_two_nodes() -> Bidirectional:
    backward = GRU(3, go_backwards=True, return_sequences=True)
    return Bidirectional(
        LSTM(3, return_sequences=True), backward_layer=backward, merge_mode="sum", name="bidirectional"
    )


FORWARD: dict[str, Callable[[], Sequential | Model]] = {
    "lstm": lambda: embedded(LSTM(3, name="lstm"), linear(2)),
    "lstm_sequences": lambda: embedded(LSTM(3, return_sequences=True, name="lstm"), linear(2)),
    "gru_backwards_sequences": lambda: embedded(GRU(3, go_backwards=True, return_sequences=True, name="gru")),
    "gru_reset_before": lambda: embedded(GRU(3, reset_after=False, name="gru")),
    "simple_rnn_stacked": lambda: embedded(
        SimpleRNN(3, return_sequences=True, name="simple_rnn"), SimpleRNN(2, name="simple_rnn_b")
    ),
    "lstm_backwards": lambda: embedded(LSTM(3, go_backwards=True, name="lstm")),
    "bidirectional_lstm": lambda: embedded(Bidirectional(LSTM(3), name="bidirectional")),
    "bidirectional_lstm_sequences": lambda: embedded(
        Bidirectional(LSTM(3, return_sequences=True), name="bidirectional")
    ),
    "bidirectional_two_nodes_sequences_sum": lambda: embedded(bidirectional_two_nodes()),
    "global_average_pooling": lambda: embedded(GlobalAveragePooling1D(name="pooling")),
    "attention": lambda: (lambda ids: Model(ids, MultiHeadAttention(2, 3, name="attention")(*[embedding(ids)] * 2)))(
        ids_input()
    ),
    "attention_pooled": attention_pooled,
    "masking_lstm_stacked": lambda: masked_features(
        LSTM(3, return_sequences=True, name="lstm"), LSTM(2, name="lstm_b")
    ),
    "masking_bidirectional_gru_pooled": lambda: masked_features(
        Bidirectional(GRU(3, return_sequences=True), name="bidirectional"), GlobalAveragePooling1D(name="pooling")
    ),
    "masking_value": lambda: masked_features(mask_value=0.5),
    "masking_value_simple_rnn_sequences": lambda: masked_features(
        SimpleRNN(3, return_sequences=True, name="simple_rnn"), mask_value=0.5
    ),
    "add": lambda: merged(Add(name="sum")),
    "concatenate_steps": lambda: merged(Concatenate(axis=1, name="join")),
    "concatenate_beside_unmasked": beside_unmasked,
    "add_two_masks": lambda: two_masks(Add(name="sum")),
    "concatenate_two_masks": lambda: two_masks(Concatenate(name="join")),
}


def embedding(ids: Input) -> Layer:
    return Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)  # type: ignore[return-value]


# --- Keras' weights as ours ----------------------------------------------------------------------------------
def fixture(case: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{case}.npz") as data:
        return dict(data)


def keras_weights(model: Sequential | Model, data: Mapping[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
    """The fixture's `<prefix><layer name>.<i>` arrays (Keras' `get_weights()` of each layer) as our parameters."""
    ours: dict[str, np.ndarray] = {}
    for layer in model.layers:
        weights = []
        while f"{prefix}{layer.name}.{len(weights)}" in data:
            weights.append(data[f"{prefix}{layer.name}.{len(weights)}"])
        if weights:
            ours |= {f"{layer.name}.{k}": v for k, v in local_weights(layer, weights).items()}
    return ours


def local_weights(layer: Layer, weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    if isinstance(layer, LSTM | GRU | SimpleRNN):
        return from_keras(type(layer).__name__)(weights)
    if isinstance(layer, Bidirectional):
        return bidirectional_weights(layer)(weights)
    if isinstance(layer, MultiHeadAttention):
        return dict(zip(ATTENTION_ORDER, weights, strict=True))
    if isinstance(layer, TimeDistributed):
        return {f"{layer.layer.name}.{k}": v for k, v in local_weights(layer.layer, weights).items()}
    names = {Embedding: ["embeddings"], Dense: ["kernel", "bias"], LayerNormalization: ["gamma", "beta"]}
    return dict(zip(names[type(layer)], weights, strict=True))  # type: ignore[index]


def inference_output(model: Sequential | Model | Functional, *xs: np.ndarray) -> np.ndarray:
    """The exported inference graph's output (what `model.export` writes, without its metadata) for the inputs
    `xs`, one per model input."""
    graph = emit.inference_graph(model.graph if isinstance(model, Model) else model)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        i.name: x.astype(np.int64) if x.dtype.kind == "i" else x for i, x in zip(graph.graph.input, xs, strict=True)
    }
    return session.run(["logits"], feeds)[0]


@pytest.mark.parametrize("case", list(FORWARD))
def test_forward_matches_keras(case: str):
    model, data = FORWARD[case](), fixture(case)
    xs, expected = [data[k] for k in ("x", "x0", "x1") if k in data], data["y"]
    model.set_weights(keras_weights(model, data))
    got = inference_output(model, *xs)
    x = xs[0]
    if case == "attention":  # a query step with no key to attend: Keras' fused kernel averages every value there
        expected, got = expected[x != 0], got[x != 0]  # (docs/layers.md); the mask leaves it out of what follows
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_the_exported_model_masks_as_keras_does(tmp_path: Path):
    """TensorFlow's "Text classification with an RNN", small: ids padded with 0 -> Embedding(mask_zero=True) ->
    Bidirectional(LSTM) -> Dense, exported and loaded back."""
    model, data = FORWARD["bidirectional_lstm"](), fixture("bidirectional_lstm")
    x, expected = data["x"], data["y"]
    model.set_weights(keras_weights(model, data))
    with model:
        model.compile(optimizer="adam", loss="mse")
        np.testing.assert_allclose(model.predict(x.astype(np.int64)), expected, rtol=1e-5, atol=1e-5)
        model.export(tmp_path / "model.onnx")
    exported = InferenceModel.load(tmp_path / "model.onnx")
    np.testing.assert_allclose(exported.predict(x.astype(np.int64)), expected, rtol=1e-5, atol=1e-5)


# --- one training step ---------------------------------------------------------------------------------------
STEP: dict[str, tuple[Callable[[], Sequential], object]] = {
    "step_lstm": (lambda: embedded(LSTM(3, name="lstm"), linear(2)), "softmax_cross_entropy_with_logits"),
    "step_gru_stacked": (
        lambda: embedded(GRU(3, return_sequences=True, name="gru"), GRU(2, name="gru_b"), linear(2)),
        "softmax_cross_entropy_with_logits",
    ),
    "step_bidirectional": (
        lambda: embedded(
            Bidirectional(LSTM(3, return_sequences=True), name="bidirectional"),
            Bidirectional(LSTM(2), name="bidirectional_b"),
            linear(2),
        ),
        "softmax_cross_entropy_with_logits",
    ),
    "step_tagger": (  # a masked output: Keras weighs the loss by the mask
        lambda: embedded(
            LSTM(3, return_sequences=True, name="lstm"), TimeDistributed(linear(3), name="time_distributed")
        ),
        CategoricalCrossentropy(from_logits=True),
    ),
    "step_sequence_mse": (lambda: embedded(GRU(3, return_sequences=True, name="gru"), linear(2)), "mse"),
    "step_masking_simple_rnn": (
        lambda: masked_features(SimpleRNN(3, name="simple_rnn"), linear(2)),
        "softmax_cross_entropy_with_logits",
    ),
}


@pytest.mark.parametrize("case", list(STEP))
def test_one_sgd_step_matches_keras(case: str):
    """The loss of the batch and every weight after one SGD(0.1) step equal Keras 3's (gradients through the
    masked recurrence: the Scan rule with sequence_lens; a masked output's loss weighed by its mask)."""
    make, loss = STEP[case]
    model, data = make(), fixture(case)
    x, y, keras_loss = data["x"], data["y_true"], float(data["loss"])
    model.set_weights(keras_weights(model, data))
    expected = keras_weights(model, data, prefix="after.")
    with model:
        model.compile(optimizer=SGD(0.1), loss=loss, engine="portable")  # type: ignore[arg-type]
        history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        stepped = model.get_weights()
    assert history.history["loss"][0] == pytest.approx(keras_loss, rel=1e-5)
    for name, value in expected.items():
        np.testing.assert_allclose(stepped[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_masked_output_weighs_evaluate_and_sample_weights_as_keras():
    """evaluate's loss of the tagger is Keras' (the mean over the unmasked steps); a sample weight multiplies each
    example's steps (sum of w * l over the unmasked steps / their count)."""
    make, loss = STEP["step_tagger"]
    model, data = make(), fixture("step_tagger")
    x, y, keras_loss = data["x"], data["y_true"], float(data["loss"])
    model.set_weights(keras_weights(model, data))
    with model:
        model.compile(optimizer=SGD(0.1), loss=loss, engine="portable")  # type: ignore[arg-type]
        assert model.evaluate(x, y, batch_size=len(x), verbose=0).loss == pytest.approx(keras_loss, rel=1e-5)
        logits = inference_output(model, x)
        weights = np.linspace(0.0, 2.0, len(x))
        weighted = model.evaluate(x, y, sample_weight=weights, batch_size=len(x), verbose=0).loss
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_step = -(y * log_probabilities).sum(-1)
    mask = x != 0
    expected = (per_step * weights[:, None])[mask].sum() / mask.sum()
    assert weighted == pytest.approx(expected, rel=1e-5)


def test_a_masked_output_trains_unsplit_to_keras_numbers_where_steps_split(monkeypatch: pytest.MonkeyPatch):
    """The split step weighs each share's loss by its rows, which is not the mean over the batch's unmasked steps:
    a masked output's step stays whole (the same numbers as Keras'), while a model without one is split."""
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "1")  # split wherever the step can be
    make, loss = STEP["step_tagger"]
    model, data = make(), fixture("step_tagger")
    x, y = data["x"], data["y_true"]
    model.set_weights(keras_weights(model, data))
    with model:
        model.compile(optimizer=SGD(0.1), loss=loss, engine="portable", threads=2)  # type: ignore[arg-type]
        assert model._trainer is not None and model._trainer.engine._shares == 1  # type: ignore[attr-defined]
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        stepped = model.get_weights()
    for name, value in keras_weights(model, data, prefix="after.").items():
        np.testing.assert_allclose(stepped[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    unmasked = Sequential.of(Input(6), Dense(4), Dense(2, activation="linear"), seed=0)
    with unmasked:
        unmasked.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits", threads=2)
        assert unmasked._trainer is not None and unmasked._trainer.engine._shares == 2  # type: ignore[attr-defined]


def test_a_masked_output_is_refused_in_a_data_parallel_step():
    from onnxtrain.portable._graphs import train_step_model

    model = STEP["step_tagger"][0]()
    graph = train_step_model(model.graph, CategoricalCrossentropy(from_logits=True), SGD(0.1))
    assert emit.has_masked_loss(graph.model)
    with pytest.raises(UnsupportedError, match=r"data-parallel step cannot combine .* Train it in one process"):
        emit.has_masked_loss(graph.model, distributed=True)
    unmasked = Sequential.of(Input(6), Dense(2, activation="linear"), seed=0)
    plain = train_step_model(unmasked.graph, CategoricalCrossentropy(from_logits=True), SGD(0.1))
    assert not emit.has_masked_loss(plain.model, distributed=True)


# --- Masking: the layer alone (the layer harness) and its arguments ----------------------------------------------
def masking_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    assert isinstance(layer, Masking)
    return np.where((x != np.float32(layer.mask_value)).any(axis=-1, keepdims=True), x, 0.0)


MASKING = LayerCase(
    "masking", lambda: Masking(mask_value=1.0), (5, 3), (5, 3), 0, masking_reference, trains=False, integer_inputs=True
)


def test_masking_layer_config_shape_and_forward():
    check_reference(MASKING)


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_masking_layer_trains_and_exports(engine: str, tmp_path: Path):
    check_training_and_export(MASKING, tmp_path, engine)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Masking(mask_value="x"),
            InvalidArgumentError,
            r"Masking\(mask_value=...\) expects a number. Received: mask_value='x'",
        ),
        (lambda: Masking(mask_value=True), InvalidArgumentError, r"expects a number. Received: mask_value=True"),
        (lambda: Masking(mask_value=[0.0]), InvalidArgumentError, r"expects a number"),
        (lambda: Embedding(5, 2, mask_zero=1), InvalidArgumentError, r"Embedding\(mask_zero=...\) expects a bool"),
    ],
)
def test_bad_masking_arguments_are_refused(make: Callable[[], Layer], error: type, message: str):
    with pytest.raises(error, match=message):
        make()


# --- what passes a mask on, what drops it, what refuses it ------------------------------------------------------
IDS = np.array([[0, 0, 3, 4, 5], [1, 2, 0, 4, 0]], np.int64)  # padding before, holes after


def pooled_output(*between: Layer, mask_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(the embedded IDS after `between`, GlobalAveragePooling1D of that in the same graph)."""
    ids = Input(5, dtype="int64")
    sequence = Embedding(6, 4, mask_zero=mask_zero)(ids)
    for layer in between:
        sequence = layer(sequence)
    pooled = GlobalAveragePooling1D()(sequence)
    return inference_output(Functional(ids, sequence, seed=1), IDS), inference_output(Functional(ids, pooled), IDS)


@pytest.mark.parametrize(
    "between",
    [
        (),
        (Dense(3),),
        (Dropout(0.5), LayerNormalization()),
        (TimeDistributed(Dense(2)),),
        (LSTM(3, return_sequences=True),),
    ],
    ids=["nothing", "Dense", "Dropout, LayerNormalization", "TimeDistributed", "LSTM return_sequences"],
)
def test_layers_keras_passes_the_mask_through_give_it_on(between: tuple[Layer, ...]):
    sequence, pooled = pooled_output(*between)
    mask = (IDS != 0)[..., None]
    np.testing.assert_allclose(pooled, (sequence * mask).sum(1) / mask.sum(1), rtol=1e-5, atol=1e-6)


def test_a_layer_keras_drops_the_mask_at_drops_it():
    """Conv1D does not support masking in Keras 3: the mean after it is over every step."""
    sequence, pooled = pooled_output(Conv1D(3, 1, padding="valid", activation="linear"))
    np.testing.assert_allclose(pooled, sequence.mean(1), rtol=1e-5, atol=1e-6)


def test_a_model_called_as_a_layer_takes_and_gives_masks():
    inner_input = Input(5, 4)
    inner = Functional(inner_input, Dense(4)(inner_input), name="inner", seed=2)
    sequence, pooled = pooled_output(inner)
    mask = (IDS != 0)[..., None]
    np.testing.assert_allclose(pooled, (sequence * mask).sum(1) / mask.sum(1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("layers", "loss", "message"),
    [
        ((Dense(3, activation="linear"), Softmax()), "mse", r"Softmax layer 'softmax_1' receives a mask .*-1e9"),
        (
            (BatchNormalization(), LSTM(2)),
            "mse",
            r"BatchNormalization layer 'batch_normalization_1' receives a mask .*over the unmasked steps only",
        ),
    ],
)
def test_layers_that_read_masks_in_keras_but_not_here_refuse_one(layers: tuple[Layer, ...], loss: str, message: str):
    model = Sequential.of(Input(5, dtype="int64"), Embedding(6, 4, mask_zero=True), *layers)
    with model, pytest.raises(UnsupportedError, match=message):
        model.compile(optimizer="sgd", loss=loss, engine="portable")


def test_batch_normalization_takes_a_mask_outside_training():
    """Its moving statistics do not depend on the mask: the inference graph (the export) is built."""
    model = Sequential.of(Input(5, dtype="int64"), Embedding(6, 4, mask_zero=True), BatchNormalization(), LSTM(2))
    assert inference_output(model, np.ones((2, 5), np.int64)).shape == (2, 2)


def test_a_model_of_several_outputs_with_a_masked_output_is_refused_at_compile():
    ids = Input(5, dtype="int64")
    e = Embedding(6, 4, mask_zero=True)(ids)
    model = Model(ids, [Dense(2, name="tags")(e), Dense(1, name="score")(Flatten()(e))])
    with model, pytest.raises(UnsupportedError, match=r"output of layer 'tags' carries a mask .*several outputs"):
        model.compile(optimizer="sgd", loss=["mse", "mse"], engine="portable")


# --- models without masks ---------------------------------------------------------------------------------------
def test_a_model_without_masks_emits_no_mask_nodes():
    def recurrent() -> list[Layer]:
        return [LSTM(3, return_sequences=True), Bidirectional(GRU(2)), Dense(2)]

    plain = Sequential.of(Input(6, 4), *recurrent(), seed=0)
    masked = Sequential.of(Input(6, dtype="int64"), Embedding(5, 4, mask_zero=True), *recurrent(), seed=0)
    mask_ops = {"TopK", "GatherElements", "CumSum", "Where", "Not"}
    assert not mask_ops & {n.op_type for n in emit.loss_model(plain.layers, "mse").graph.node}
    assert mask_ops <= {n.op_type for n in emit.loss_model(masked.layers, "mse").graph.node}


def test_embedding_without_mask_zero_gives_no_mask():
    sequence, pooled = pooled_output(mask_zero=False)
    np.testing.assert_allclose(pooled, sequence.mean(1), rtol=1e-5, atol=1e-6)


# --- the ort-training engine ------------------------------------------------------------------------------------
@pytest.mark.training
@pytest.mark.parametrize("case", ["global_average_pooling", "attention_pooled"])
def test_ort_training_trains_masked_pooling_and_attention_as_the_portable_engine(case: str):
    data = fixture(case)
    x, y = data["x"].astype(np.int64), np.arange(len(data["x"])) % 2
    results = []
    for engine in ("portable", "ort-training"):
        if case == "attention_pooled":
            model: Sequential | Model = attention_pooled()
        else:  # a classifier head of fixed weights
            model = embedded(GlobalAveragePooling1D(name="pooling"), linear(2, "head"))
            model.set_weights({"head.kernel": np.eye(4, 2, dtype=np.float32)})
        model.set_weights(keras_weights(model, data))
        with model:
            model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits", engine=engine)
            losses = model.fit(x, y, batch_size=len(x), epochs=2, shuffle=False, verbose=0).history["loss"]
            results.append((losses, model.get_weights()["embedding.embeddings"]))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-7)


@pytest.mark.training
def test_ort_training_refuses_a_masked_recurrent_layer_by_name():
    model = Sequential.of(ids_input(), Embedding(VOCABULARY, 4, mask_zero=True), LSTM(3, name="encoder"), linear(2))
    with model, pytest.raises(UnsupportedError, match=r"cannot differentiate the LSTM node 'encoder\..*'portable'"):
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine="ort-training")
