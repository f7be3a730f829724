"""TimeDistributed through the layer harness (numpy references, Keras 3 fixtures with Keras' weights mapped onto
ours, training on both engines, the export), gradients against finite differences, the weights' names and sharing,
Dropout's masks per time step, BatchNormalization's statistics, Embedding, nested models, save and load, and bad
arguments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from layer_gradients import check_input_gradient
from layer_harness import (
    KERAS_FIXTURES,
    LayerCase,
    check_reference,
    check_training_and_export,
    forward,
    sample,
    table_tests,
)
from test_layers_conv import conv_reference, keras_kernel, with_bias_and_activation
from test_layers_dropout import reference_keep, training_forward
from test_layers_pooling import pool_reference
from test_portable_split_step import engine as split_engine

from onnxtrain import InferenceModel, Model, Sequential, autodiff, emit, load_model
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    Add,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    Layer,
    MaxPooling2D,
    TimeDistributed,
)
from onnxtrain.losses import SoftmaxCrossEntropyWithLogits
from onnxtrain.optimizers import SGD
from onnxtrain.portable import _fused
from onnxtrain.portable._graphs import ParameterInputBuilder


# --- numpy references: the wrapped layer's own on the (N * T, ...) steps -------------------------------------
def per_step(reference: Callable[[Layer, np.ndarray], np.ndarray]) -> Callable[[Layer, np.ndarray], np.ndarray]:
    """The reference of TimeDistributed(layer): `reference` of the wrapped layer on every time step."""

    def distributed(layer: Layer, x: np.ndarray) -> np.ndarray:
        assert isinstance(layer, TimeDistributed)
        y = reference(layer.layer, x.reshape(-1, *x.shape[2:]))
        return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])

    return distributed


def dense_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return with_bias_and_activation(layer, x @ layer.params["kernel"])


def flatten_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def batch_norm_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Inference: the moving statistics, channels last."""
    p = layer.params
    return (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + layer.epsilon) * p["gamma"] + p["beta"]


def embedding_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return layer.params["embeddings"][x.astype(np.int64)]


def identity(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x


# --- Keras' weights (`TimeDistributed.get_weights()`: the wrapped layer's) as ours, `<wrapped name>.<weight>` --
def dense_keras(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"dense.kernel": weights[0], "dense.bias": weights[1]}


def conv_keras(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"conv2d.kernel": keras_kernel(weights[0]), "conv2d.bias": weights[1]}


def batch_norm_keras(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    names = ("gamma", "beta", "moving_mean", "moving_variance")
    return {f"batch_normalization.{name}": w for name, w in zip(names, weights, strict=True)}


# Params: Keras 3.15's count_params() (the fixtures' weights, counted in test_parameter_counts_are_keras).
CASES = [
    LayerCase(
        "time_distributed_dense",
        lambda: TimeDistributed(Dense(3, activation="tanh")),
        (4, 5),
        (4, 3),
        18,
        per_step(dense_reference),
        dense_keras,
    ),
    LayerCase(
        "time_distributed_dense_sequence",
        lambda: TimeDistributed(Dense(2, activation="linear")),
        (3, 4, 5),
        (3, 4, 2),
        12,
        per_step(dense_reference),
        dense_keras,
    ),
    LayerCase(
        "time_distributed_conv2d",
        lambda: TimeDistributed(Conv2D(3, (3, 2), padding="valid", activation="relu")),
        (3, 6, 5, 2),
        (3, 4, 4, 3),
        39,
        per_step(conv_reference),
        conv_keras,
    ),
    LayerCase(
        "time_distributed_conv2d_same",
        lambda: TimeDistributed(Conv2D(2, 3, strides=2, padding="same", activation="linear")),
        (2, 5, 5, 3),
        (2, 3, 3, 2),
        56,
        per_step(conv_reference),
        conv_keras,
    ),
    LayerCase(
        "time_distributed_max_pooling2d",
        lambda: TimeDistributed(MaxPooling2D(2)),
        (3, 6, 4, 2),
        (3, 3, 2, 2),
        0,
        per_step(pool_reference),
    ),
    LayerCase(
        "time_distributed_flatten",
        lambda: TimeDistributed(Flatten()),
        (4, 3, 2, 2),
        (4, 12),
        0,
        per_step(flatten_reference),
    ),
    LayerCase(
        "time_distributed_batch_normalization",
        lambda: TimeDistributed(BatchNormalization()),
        (4, 3),
        (4, 3),
        12,
        per_step(batch_norm_reference),
        batch_norm_keras,
        # The harness fits random labels for 12 steps: under batch statistics the loss need not fall (as the
        # BatchNormalization rows of test_layers_normalization.py over sequences); the weights must still change.
        trains=False,
    ),
    LayerCase(
        "time_distributed_batch_normalization_image",
        lambda: TimeDistributed(BatchNormalization(epsilon=0.01)),
        (3, 4, 4, 2),
        (3, 4, 4, 2),
        8,
        per_step(batch_norm_reference),
        batch_norm_keras,
    ),
]

# The ort-training engine trains the Dense and Conv2D rows and refuses BatchNormalization's layer state
# (UnsupportedError, which the harness accepts; test_ort_training_refuses_batch_normalization_inside checks it).
test_time_distributed_forward_matches_numpy_and_keras, test_time_distributed_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parameter_counts_are_keras(case: LayerCase):
    with np.load(KERAS_FIXTURES / f"{case.id}.npz") as data:
        keras_count = sum(data[f"w{i}"].size for i in range(int(data["weights"])))
    assert case.params == keras_count
    model = Sequential.of(Input(*case.input_shape), case.make(), seed=0)
    assert f"{case.params:,}" in model.summary(print_fn=None)


# Rows without a Keras fixture: Dropout (random), Embedding (integer ids), a Dense on a channels-first input.
EXTRA_CASES = [
    LayerCase(
        "time_distributed_dropout", lambda: TimeDistributed(Dropout(0.5)), (3, 4), (3, 4), 0, identity, trains=False
    ),
    LayerCase(
        "time_distributed_embedding",
        lambda: TimeDistributed(Embedding(7, 3)),
        (4, 2),
        (4, 2, 3),
        21,
        per_step(embedding_reference),
        input_range=(0.0, 7.0),
        integer_inputs=True,
    ),
]


@pytest.mark.parametrize("case", EXTRA_CASES, ids=[c.id for c in EXTRA_CASES])
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_dropout_and_embedding_forward_train_and_export(case: LayerCase, engine: str, tmp_path: Path):
    # ort-training refuses Dropout (no step counter: PortableEngineOnlyError, an UnsupportedError) and trains the
    # Embedding (test_ort_training_refuses_dropout_inside checks the message).
    check_reference(case)
    check_training_and_export(case, tmp_path, engine)


# --- gradients against finite differences --------------------------------------------------------------------
GRADIENT_CASES = [c for c in CASES if c.id != "time_distributed_batch_normalization_image"]


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c.id for c in GRADIENT_CASES])
def test_input_gradient_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)


@pytest.mark.parametrize(
    ("case", "weights"),
    [
        (CASES[0], ["dense.kernel", "dense.bias"]),
        (CASES[3], ["conv2d.kernel", "conv2d.bias"]),  # linear: no kink near the weights
        (CASES[6], ["batch_normalization.gamma", "batch_normalization.beta"]),
    ],
    ids=["dense", "conv2d", "batch_normalization"],
)
def test_weight_gradients_match_finite_differences(case: LayerCase, weights: list[str]):
    """d loss / d weight of Input -> TimeDistributed -> Flatten -> Dense(3): one weight shared by every time step
    gets the sum of the steps' gradients, as finite differences of the loss see it."""
    model = Sequential.of(Input(*case.input_shape), case.make(), Flatten(), Dense(3, activation="linear"), seed=3)
    names = [f"time_distributed_1.{w}" for w in weights]
    proto = autodiff.gradients(emit.loss_model(model.layers, SoftmaxCrossEntropyWithLogits()), names)
    x = sample(case, n=4, seed=4).astype(np.float32)
    feeds = {emit.INPUT_NAME: x, emit.LABELS_NAME: np.random.default_rng(5).integers(0, 3, len(x))}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    gradients = dict(zip(names, session.run([f"{n}_grad" for n in names], feeds), strict=True))

    def loss(name: str, index: tuple[int, ...], step: float) -> float:
        changed = onnx.ModelProto()
        changed.CopyFrom(proto)
        (tensor,) = [t for t in changed.graph.initializer if t.name == name]
        value = onnx.numpy_helper.to_array(tensor).copy()
        value[index] += step
        tensor.CopyFrom(onnx.numpy_helper.from_array(value, name))
        run = ort.InferenceSession(changed.SerializeToString(), providers=["CPUExecutionProvider"])
        return float(run.run([emit.LOSS_NAME], feeds)[0])

    eps = 1e-2
    for name in names:
        shape = gradients[name].shape
        for flat in np.random.default_rng(6).permutation(int(np.prod(shape)))[:3]:
            index = tuple(int(i) for i in np.unravel_index(flat, shape))
            numeric = (loss(name, index, eps) - loss(name, index, -eps)) / (2 * eps)
            np.testing.assert_allclose(gradients[name][index], numeric, rtol=2e-2, atol=3e-4, err_msg=f"{name}{index}")


# --- weights: names, Keras' order, one array shared with the wrapped layer -----------------------------------
def test_weights_are_the_wrapped_layers_under_the_wrappers_name():
    dense = Dense(4)
    wrapper = TimeDistributed(dense)
    model = Sequential.of(Input(3, 5), wrapper, seed=0)
    assert dense.name == "dense" and wrapper.layer is dense
    assert list(model.get_weights()) == ["time_distributed_1.dense.kernel", "time_distributed_1.dense.bias"]
    kernel = np.arange(20, dtype=np.float32).reshape(5, 4)
    model.set_weights({"time_distributed_1.dense.kernel": kernel})
    np.testing.assert_array_equal(dense.params["kernel"], kernel)
    # A named layer keeps its name: Keras' weight paths time_distributed/<its name>/<weight>
    named = Sequential.of(Input(3, 5), TimeDistributed(Dense(4, name="proj")), seed=0)
    assert list(named.get_weights()) == ["time_distributed_1.proj.kernel", "time_distributed_1.proj.bias"]


def test_a_fresh_layer_draws_its_weights_as_the_wrapped_layer_would_for_one_step():
    wrapped = Sequential.of(Input(6, 5), TimeDistributed(Dense(4, name="d")), seed=7).layers[1]
    plain = Sequential.of(Input(5), Dense(4, name="d"), seed=7).layers[1]
    for local in ("kernel", "bias"):
        np.testing.assert_array_equal(wrapped.params[f"d.{local}"], plain.params[local])


def test_the_graph_folds_the_time_axis_into_the_batch_once():
    model = Sequential.of(Input(3, 6, 5, 2), TimeDistributed(Conv2D(2, 3)), Flatten(), Dense(2), seed=0)
    nodes = emit.inference_graph(model.layers).graph.node
    ops = [n.op_type for n in nodes]
    assert ops.count("Conv") == 1 and ops.count("Reshape") == 2
    initializers = {t.name for t in emit.inference_graph(model.layers).graph.initializer}
    assert {"time_distributed_1.conv2d.kernel", "time_distributed_1.conv2d.bias"} <= initializers


# --- Dropout: a mask per (example, time step) row ------------------------------------------------------------
def test_dropout_draws_the_documented_mask_for_each_row_of_time_steps():
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(3, 4, 5)).astype(np.float32)
    layer = TimeDistributed(Dropout(0.3, seed=5))
    for step, y in zip([0, 9], training_forward([layer], x, [0, 9]), strict=True):
        # rows n * T + t, named after the wrapper's path to the Dropout
        keep = reference_keep("time_distributed_1.dropout", 5, 0.3, step, 12, (5,)).reshape(3, 4, 5)
        np.testing.assert_array_equal(y != 0, keep)
        np.testing.assert_allclose(y[keep], x[keep] / 0.7, rtol=1e-6)
    (again,) = training_forward([TimeDistributed(Dropout(0.3, seed=5))], x, [9])
    np.testing.assert_array_equal(again, y)  # a function of (seed, layer, step, row, element): reproducible


def test_a_share_of_the_batch_draws_the_rows_the_whole_batch_draws():
    """A split or distributed step feeds `first_row` (the share's first example): its time steps are rows
    first_row * T on, so the shares together drop what one unsplit step drops."""
    x = np.random.default_rng(1).uniform(0.5, 1.5, size=(6, 4, 5)).astype(np.float32)
    (whole,) = training_forward([TimeDistributed(Dropout(0.5, name="d"))], x, [2])
    layer = TimeDistributed(Dropout(0.5, name="d"))
    Sequential.of(Input(4, 5), layer)
    b = ParameterInputBuilder({}, 17, 8, training=True, shares=True)
    value = b.add_input("input", np.float32, (None, 4, 5))
    with b.scope(str(layer.name)):
        b.add_output(layer.emit(b, value), "y", np.float32, (None, 4, 5))
    session = ort.InferenceSession(b.build().SerializeToString(), providers=["CPUExecutionProvider"])
    shares = [
        session.run(None, {"input": x[a:z], "step": np.array(2), "first_row": np.array(a)})[0]
        for a, z in ((0, 2), (2, 6))
    ]
    np.testing.assert_array_equal(np.concatenate(shares), whole)


@pytest.mark.skipif(not _fused.available(), reason="the split step runs the fused update (numba)")
def test_a_split_step_trains_as_an_unsplit_one(monkeypatch):
    """The portable engine's split step (shares of the batch in parallel) drops the units an unsplit step drops."""

    def model() -> Sequential:
        return Sequential.of(
            Input(3, 6, 6, 1),
            TimeDistributed(Conv2D(2, 3, activation="relu")),
            TimeDistributed(Dropout(0.5)),
            Flatten(),
            Dense(3, activation="linear"),
            seed=5,
        )

    x = np.random.default_rng(0).normal(size=(64, 3, 6, 6, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 64)
    split, unsplit = (
        split_engine(model(), SGD(0.1), "1", monkeypatch),
        split_engine(model(), SGD(0.1), "0", monkeypatch),
    )
    assert (split._shares, unsplit._shares) == (2, 1)
    for start in range(0, 64, 16):
        loss, _ = split.train_step(x[start : start + 16], y[start : start + 16])
        assert loss == pytest.approx(unsplit.train_step(x[start : start + 16], y[start : start + 16])[0], rel=1e-5)
    for name, expected in unsplit.get_weights().items():
        np.testing.assert_allclose(split.get_weights()[name], expected, rtol=1e-4, atol=1e-6, err_msg=name)
    split.close()
    unsplit.close()


def test_two_wrapped_dropouts_draw_different_masks():
    x = np.ones((4, 3, 8), np.float32)
    (y,) = training_forward([TimeDistributed(Dropout(0.5)), TimeDistributed(Dropout(0.5))], x, [1])
    (first,) = training_forward([TimeDistributed(Dropout(0.5))], x, [1])
    assert not np.array_equal((y != 0), (first != 0))


@pytest.mark.training
def test_ort_training_refuses_dropout_inside():
    with Sequential.of(Input(3, 4), TimeDistributed(Dropout(0.2)), Flatten(), Dense(2), seed=1) as model:
        with pytest.raises(UnsupportedError, match=r"time_distributed_1\.dropout.*step counter"):
            model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="ort-training")


# --- BatchNormalization: statistics over the N * T rows -----------------------------------------------------
def test_batch_normalization_trains_on_the_statistics_of_every_time_step():
    x = np.random.default_rng(2).normal(size=(5, 3, 2)).astype(np.float32) + np.float32([0, 4, -4])[None, :, None]
    layer = TimeDistributed(BatchNormalization(momentum=0.5))
    (y,) = training_forward([layer], x, [0])
    rows = x.reshape(-1, 2).astype(np.float64)
    expected = (rows - rows.mean(0)) / np.sqrt(rows.var(0) + 1e-3)
    np.testing.assert_allclose(y, expected.reshape(x.shape), rtol=1e-4, atol=1e-5)
    with Sequential.of(Input(3, 2), TimeDistributed(BatchNormalization(momentum=0.5)), Flatten(), seed=0) as model:
        model.compile(optimizer="sgd", loss="mse", engine="portable")
        model.fit(x, np.zeros((5, 6), np.float32), batch_size=5, epochs=1, shuffle=False, verbose=0)
        moved = model.get_weights()["time_distributed_1.batch_normalization.moving_mean"]
    np.testing.assert_allclose(moved, 0.5 * rows.mean(0), rtol=1e-5, atol=1e-6)  # one update, from 0


@pytest.mark.training
def test_ort_training_refuses_batch_normalization_inside():
    with Sequential.of(Input(3, 4), TimeDistributed(BatchNormalization()), Flatten(), Dense(2), seed=1) as model:
        with pytest.raises(UnsupportedError, match=r"engine='portable'|portable engine"):
            model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="ort-training")


# --- Embedding on integer inputs ------------------------------------------------------------------------------
def test_embedding_reads_an_integer_input_and_other_layers_read_it_as_floats():
    ids = np.random.default_rng(3).integers(0, 7, size=(5, 4, 2))
    model = Sequential.of(Input(4, 2, dtype="int64"), TimeDistributed(Embedding(7, 3)), seed=0)
    proto = emit.inference_graph(model.layers)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": ids})
    np.testing.assert_array_equal(y, model.get_weights()["time_distributed_1.embedding.embeddings"][ids])
    dense = Sequential.of(Input(4, 2, dtype="int64"), TimeDistributed(Dense(3, activation="linear")), seed=0)
    session = ort.InferenceSession(
        emit.inference_graph(dense.layers).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    w = dense.get_weights()
    expected = ids @ w["time_distributed_1.dense.kernel"] + w["time_distributed_1.dense.bias"]
    np.testing.assert_allclose(session.run(None, {"input": ids})[0], expected, rtol=1e-5, atol=1e-5)


# --- nested models --------------------------------------------------------------------------------------------
def encoder() -> Sequential:
    return Sequential.of(Input(5), Dense(4, activation="tanh"), Dense(2, activation="linear"), name="encoder", seed=1)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_a_nested_model_runs_on_every_time_step_and_trains_its_own_layers(kind: str, tmp_path: Path):
    if kind == "sequential":
        inner: Sequential | Model = encoder()
    else:
        x_in = Input(5)
        inner = Model(x_in, Add()([Dense(5, activation="tanh")(x_in), x_in]), name="block", seed=1)
    wrapper = TimeDistributed(inner)
    model = Sequential.of(Input(3, 5), wrapper, Flatten(), Dense(2, activation="linear"), seed=0)
    inner_weights = inner.get_weights()
    assert set(model.get_weights()) >= {f"time_distributed_1.{inner.name}.{n}" for n in inner_weights}
    assert wrapper.param_count == sum(w.size for w in inner_weights.values())
    x = np.random.default_rng(4).normal(size=(6, 3, 5)).astype(np.float32)
    steps = forward(Sequential.of(Input(3, 5), TimeDistributed(inner), seed=0), x)
    singles = forward(inner, x.reshape(-1, 5)) if kind == "sequential" else None
    if singles is not None:
        np.testing.assert_allclose(steps, singles.reshape(6, 3, -1), rtol=1e-5, atol=1e-6)
    with model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit(x, np.arange(6) % 2, epochs=2, batch_size=3, verbose=0)
        trained = model.get_weights()
        expected = model.predict_softly(x)
        model.save(tmp_path / "saved")
    for name, value in inner.get_weights().items():  # the wrapper trained the model's own layers
        np.testing.assert_array_equal(trained[f"time_distributed_1.{inner.name}.{name}"], value)
        assert not np.array_equal(value, inner_weights[name])
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.layers[1].get_config()["layer"]["class_name"] == "Functional"
        np.testing.assert_allclose(loaded.predict_softly(x), expected, rtol=1e-6, atol=1e-7)


# --- config, save and load, export ----------------------------------------------------------------------------
def test_config_nests_the_layer_and_a_saved_model_loads(tmp_path: Path):
    layer = TimeDistributed(Conv2D(3, 3, padding="valid", activation="relu", kernel_regularizer="l2"))
    config = layer.get_config()
    assert config["layer"]["class_name"] == "Conv2D" and config["layer"]["config"]["name"] == "conv2d"
    rebuilt = Layer.from_config(layer.serialize())
    assert isinstance(rebuilt, TimeDistributed) and rebuilt.get_config() == config
    assert isinstance(rebuilt.layer, Conv2D) and rebuilt.layer is not layer.layer
    x = np.random.default_rng(0).normal(size=(8, 2, 5, 5, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, 8)
    layers = [Input(2, 5, 5, 1), layer, TimeDistributed(BatchNormalization()), Flatten(), Dense(2, activation="linear")]
    with Sequential(layers, seed=1) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        expected = model.predict_softly(x)
        weights = model.get_weights()
        model.save(tmp_path / "saved")
        model.export(tmp_path / "model.onnx")
    with load_model(tmp_path / "saved") as loaded:
        assert loaded.layers[1].get_config() == {**config, "name": "time_distributed_1"}
        np.testing.assert_allclose(loaded.predict_softly(x), expected, rtol=1e-6, atol=1e-7)
        for name, value in loaded.get_weights().items():
            np.testing.assert_array_equal(value, weights[name])
    exported = InferenceModel.load(tmp_path / "model.onnx")
    np.testing.assert_allclose(exported.predict_softly(x), expected, rtol=1e-5, atol=1e-6)


def test_keras_config_of_the_wrapped_layer_rebuilds():
    """Keras writes the nested layer with module, registered_name and build_config next to its config."""
    keras_config = {
        "class_name": "TimeDistributed",
        "config": {
            "name": "time_distributed",
            "trainable": True,
            "layer": {
                "module": "keras.layers",
                "class_name": "Flatten",
                "config": {"name": "flatten", "trainable": True, "data_format": "channels_last"},
                "registered_name": None,
            },
        },
    }
    layer = Layer.from_config(keras_config)
    assert isinstance(layer, TimeDistributed) and isinstance(layer.layer, Flatten)
    assert layer.layer.name == "flatten"


def test_freezing_the_wrapper_freezes_the_wrapped_layer():
    layer = TimeDistributed(Dense(3), trainable=False)
    assert layer.layer.trainable is False
    model = Sequential.of(Input(2, 4), layer, seed=0)
    assert model.param_counts() == (0, 15)
    layer.trainable = True
    assert layer.layer.trainable is True and model.param_counts() == (15, 0)
    statistics = Sequential.of(Input(2, 4), TimeDistributed(BatchNormalization()), seed=0).layers[1]
    assert statistics.non_trainable == {
        "batch_normalization.moving_mean",
        "batch_normalization.moving_variance",
    }


# --- bad arguments and inputs ---------------------------------------------------------------------------------
def two_outputs() -> Model:
    x = Input(4)
    return Model(x, [Dense(2)(x), Dense(3)(x)])


def built_dense() -> Dense:
    dense = Dense(3)
    Sequential.of(Input(4), dense)
    return dense


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: TimeDistributed("dense"),
            InvalidTypeError,
            r"TimeDistributed\(layer=...\) expects a layer instance .*Received: layer='dense'",
        ),
        (lambda: TimeDistributed(Dense), InvalidTypeError, r"Received: layer=the class Dense \(make an instance\)"),
        (lambda: TimeDistributed(Input(3)), InvalidTypeError, r"expects a layer instance.*Received: layer=Input"),
        (
            lambda: TimeDistributed(Add()),
            UnsupportedError,
            r"a layer of one input to each time step. Received: layer=Add layer, which takes several inputs",
        ),
        (
            lambda: TimeDistributed(two_outputs()),
            UnsupportedError,
            r"a model of one output to each time step. Received: layer=Functional layer 'functional(_\d+)?', with "
            r"several",
        ),
        (
            lambda: TimeDistributed(built_dense()),
            InvalidArgumentError,
            r"expects a new layer.*Received: layer=Dense layer 'dense_1', built for input \[None, 4\] in model",
        ),
        (lambda: TimeDistributed(Dense(3), units=3), TypeError, r"TimeDistributed.*units"),
    ],
)
def test_bad_time_distributed_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("input_shape", "make", "message"),
    [
        (
            (6,),
            lambda: TimeDistributed(Dense(3)),
            r"TimeDistributed layer 'time_distributed_1' expects input of shape \[None, timesteps, ...\].*"
            r"Received: input shape \[None, 6\]",
        ),
        (
            (4, 5),
            lambda: TimeDistributed(Conv2D(2, 3)),
            r"TimeDistributed layer 'time_distributed_1' applies Conv2D layer 'conv2d' to each time step, of shape "
            r"\[None, 5\]",
        ),
        (
            (4, 6),
            lambda: TimeDistributed(encoder()),
            r"applies Functional layer 'encoder' to each time step, of shape \[None, 6\]",
        ),
    ],
)
def test_inputs_the_wrapper_cannot_take_fail_when_the_model_is_made(input_shape, make, message):
    with pytest.raises(ShapeError, match=message):
        Sequential.of(Input(*input_shape), make())


def test_the_time_axis_has_a_fixed_length():
    """Inputs have known dimensions but the batch, so T is fixed: Input refuses an unknown one."""
    with pytest.raises(InvalidArgumentError, match=r"Input\(shape=\(None, 4\)\) has no size at dims\[0\]"):
        Input(None, 4)


def test_the_wrapped_layer_cannot_be_replaced():
    layer = TimeDistributed(Dense(3))
    with pytest.raises(UnsupportedError, match=r"holds its layer for good.*Received: layer=Dense"):
        layer.layer = Dense(4)


def test_graph_builder_first_row_is_restored_after_the_wrapper_emits():
    b = GraphBuilder(training=True)
    layer = TimeDistributed(Dense(2))
    Sequential.of(Input(3, 4), layer)
    with b.scope("time_distributed_1"):
        layer.emit(b, b.add_input("input", np.float32, (None, 3, 4)))
    assert "first_row" not in vars(b) and b.first_row() is None


def test_the_wrapped_layer_keeps_its_shapes_and_name_and_a_later_setting_waits_for_compile() -> None:
    x = np.random.default_rng(0).normal(size=(8, 3, 4)).astype(np.float32)
    td = TimeDistributed(Dense(5), name="td")
    model = Sequential.of(Input(3, 4), td, Flatten(), Dense(2, activation="linear"), seed=0)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ShapeError, match=r"Setting units of Dense layer 'dense' to 6: the layer is built"):
        td.layer.units = 6
    with pytest.raises(UnsupportedError, match=r"Setting name of Dense layer 'dense' to 'x': it is the layer of "):
        td.layer.name = "x"
    td.layer.activation = "tanh"  # as any layer's setting assigned after compile: refused until compile applies it
    with pytest.raises(ModelStateError, match=r"td \(layer\.activation\) were assigned after compile\(\)"):
        model.predict(x)
    model.compile(optimizer="sgd", loss="mse")
    weights = model.get_weights()
    hidden = np.tanh(x @ weights["td.dense.kernel"] + weights["td.dense.bias"]).reshape(8, -1)
    expected = hidden @ weights["dense_1.kernel"] + weights["dense_1.bias"]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
