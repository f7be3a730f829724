"""Layers end to end through one harness (config round trip, shapes, parameter count, ORT forward vs numpy),
bad arguments, and a custom layer that doubles as the extension guide."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from layer_harness import LayerCase, check_keras, check_reference, check_training_and_export

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    LSTM,
    Add,
    Bidirectional,
    Dense,
    Dropout,
    Flatten,
    GaussianNoise,
    Input,
    Layer,
    MultiHeadAttention,
    RepeatVector,
    Reshape,
)


def dense_reference(layer: Dense, x: np.ndarray, act: Any) -> np.ndarray:
    y = x.reshape(len(x), -1) @ layer.params["kernel"]
    if layer.use_bias:
        y = y + layer.params["bias"]
    return act(y)


def dense_last_axis(layer: Dense, x: np.ndarray, act: Any) -> np.ndarray:
    """Dense over the last axis of an input of any rank, as Keras' Dense."""
    y = x @ layer.params["kernel"]
    return act(y + layer.params["bias"] if layer.use_bias else y)


def dense_keras(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip(["kernel", "bias"], weights, strict=False))  # Keras' (in, out) kernel is ours


CASES = [
    LayerCase("flatten", lambda: Flatten(), (2, 3, 2), (12,), 0, lambda layer, x: x.reshape(len(x), -1)),
    LayerCase(
        "dense_relu",
        lambda: Dense(4),
        (6,),
        (4,),
        28,
        lambda layer, x: dense_reference(layer, x, lambda v: np.maximum(v, 0)),
        dense_keras,
    ),
    LayerCase(
        "dense_linear_nobias",
        lambda: Dense(3, activation="linear", use_bias=False),
        (5,),
        (3,),
        15,
        lambda layer, x: dense_reference(layer, x, lambda v: v),
        dense_keras,
    ),
    LayerCase(
        "dense_tanh",
        lambda: Dense(2, activation="tanh"),
        (3,),
        (2,),
        8,
        lambda layer, x: dense_reference(layer, x, np.tanh),
        dense_keras,
    ),
    LayerCase(
        "dense_sequence",
        lambda: Dense(4),
        (3, 6),
        (3, 4),
        28,
        lambda layer, x: dense_last_axis(layer, x, lambda v: np.maximum(v, 0)),
        dense_keras,
    ),
    LayerCase(
        "dense_rank4_nobias",
        lambda: Dense(2, activation="linear", use_bias=False),
        (2, 3, 5),
        (2, 3, 2),
        10,
        lambda layer, x: dense_last_axis(layer, x, lambda v: v),
        dense_keras,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_forward_matches_numpy_and_keras(case: LayerCase):
    check_reference(case)
    assert check_keras(case), f"no Keras fixture for {case.id}: run tools/keras_fixtures.py"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_layer_trains_and_exports(case: LayerCase, engine: str, tmp_path):
    check_training_and_export(case, tmp_path, engine)


def test_seed_model_has_kotlindl_parameter_count():
    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10))
    assert model.param_counts() == (266_610, 0) and model.count_params() == 266_610
    assert [layer.name for layer in model.layers] == ["input_1", "flatten_1", "dense_1", "dense_2", "dense_3"]


def test_dense_defaults_are_kotlindls():
    layer = Dense(3)
    assert layer.activation.name == "relu" and not layer.activation_given
    assert layer.kernel_initializer.name == "he_normal"
    assert layer.bias_initializer.name == "he_uniform"
    assert layer.use_bias


def test_dense_config_round_trips_whether_the_activation_was_given():
    # Not given, the activation is left out of the config, so a rebuilt (or loaded) last layer keeps the rule that
    # emits linear logits for softmax cross-entropy; an explicit "relu" stays explicit.
    default, explicit = Dense(3), Dense(3, activation="relu")
    assert "activation" not in default.get_config()
    assert explicit.get_config()["activation"] == {"name": "relu"}
    for layer in (default, explicit):
        rebuilt = Layer.from_config(layer.serialize())
        assert rebuilt.get_config() == layer.get_config()
        assert rebuilt.activation_given is layer.activation_given
        assert rebuilt.activation == layer.activation
    assert Dense(3, activation=None).activation_given  # Keras' spelling of linear is a choice too


def test_assigning_a_dense_activation_counts_as_giving_it():
    layer = Dense(3)
    layer.activation = "tanh"
    assert layer.activation.name == "tanh" and layer.activation_given
    assert layer.get_config()["activation"] == {"name": "tanh"}


def _fit_one_label_per_example(model: Sequential) -> None:
    """Keras takes a class index per position of an output (28, 28, 10); one label per example is refused."""
    model.compile(loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((4, 28, 28, 1), np.float32), np.zeros(4, np.int64), epochs=1, verbose=0)


BAD_LAYERS = [
    (lambda: Dense(0), InvalidArgumentError, r"Dense\(units=...\) expects a positive int. Received: units=0"),
    (lambda: Dense(-3), InvalidArgumentError, r"Received: units=-3"),
    (lambda: Dense(2.5), InvalidArgumentError, r"Received: units=2.5"),
    (lambda: Input(), InvalidArgumentError, r"Input\(\*dims\) expects at least one dimension"),
    (lambda: Input(28, 0), InvalidArgumentError, r"Received: dims\[1\]=0"),
    *(
        (
            lambda dtype=dtype: Input(3, dtype=dtype),
            InvalidArgumentError,
            r"Input\(dtype=\.\.\.\) expects one of \['float32', 'int32', 'int64'\] \(or the numpy dtype\).*"
            + re.escape(f"Received: dtype={dtype!r}"),
        )
        for dtype in ["float16", "uint8", "float", "text", None, True, np.float64, np.dtype("uint64")]
    ),
    (lambda: Input(shape=4), InvalidArgumentError, r"Input\(shape=\.\.\.\) expects a tuple of dimensions.*shape=4$"),
    (lambda: Dense(3, activation="relux"), UnknownIdentifierError, r"Could not interpret activation 'relux'"),
    (
        lambda: Dense(3, kernel_initializer="he_normall"),
        UnknownIdentifierError,
        r"Could not interpret initializer 'he_normall'",
    ),
    (lambda: Dense(3, name="a b"), InvalidArgumentError, r"without spaces"),
    (
        lambda: Sequential.of(Flatten(), Input(3)),
        InvalidArgumentError,
        r"exactly one Input, first\. Received: Input at layers\[1\]",
    ),
    (lambda: Sequential.of(Input(3), Input(3)), InvalidArgumentError, r"exactly one Input"),
    (
        lambda: _fit_one_label_per_example(Sequential.of(Input(28, 28, 1), Dense(10))),
        InvalidArgumentError,
        r"expects one class index per position of the output.*Received: y\.shape=\(4,\).*Flatten",
    ),
    (
        lambda: Sequential.of(Input(3), Dense(2, name="d"), Dense(2, name="d")),
        InvalidArgumentError,
        r"unique",
    ),
    (
        lambda: Sequential.of(Input(3), "dense"),
        Exception,
        r"expects Layer instances. Received: layers\[1\]='dense'",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD_LAYERS)
def test_bad_layer_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: RepeatVector(3)(Input(8, 2)), r"^RepeatVector layer expects a flat input of shape \[None, features\]"),
        (lambda: RepeatVector(3, name="repeat")(Input(8, 2)), r"^RepeatVector layer 'repeat' expects a flat input"),
        (lambda: Reshape((5,))(Input(2, 3)), r"^Reshape layer cannot reshape input \[None, 2, 3\]"),
    ],
)
def test_a_layer_called_before_a_model_names_it_is_named_by_its_class(call, expected):
    with pytest.raises(ShapeError, match=expected) as raised:
        call()
    assert "None expects" not in str(raised.value) and "layer None" not in str(raised.value)


@pytest.mark.parametrize("dtype", ["int64", np.int64, np.dtype("int64"), "int32", np.int32, "float32", np.float32])
def test_input_takes_keras_and_numpy_spellings_of_its_dtype_and_keeps_it_in_its_config(dtype):
    layer = Input(shape=(5,), dtype=dtype, name="ids")
    assert layer.dtype == np.dtype(dtype)
    assert layer.get_config() == {"shape": [5], "name": "ids", "dtype": np.dtype(dtype).name}
    assert Layer.from_config(layer.serialize()).dtype == np.dtype(dtype)  # type: ignore[attr-defined]
    assert Input(5).dtype == np.float32 and Layer.from_config({"class_name": "Input", "config": {"shape": [5]}}).dtype


def test_an_integer_input_is_the_graph_inputs_type_and_other_layers_read_it_as_float32():
    """Dense reads an int64 Input cast to float32 once; the export's input stays int64 and computes numpy's."""
    model = Sequential([Input(3, dtype="int64"), Dense(2, activation="linear")], seed=0)
    graph = model.inference_model().graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [n.op_type for n in graph.node] == ["Cast", "Gemm"]
    x = np.array([[1, 2, 3], [2**24 + 1, 0, -4]], np.int64)
    session = onnxruntime.InferenceSession(model.inference_model().SerializeToString())
    kernel, bias = model.get_weights()["dense_1.kernel"], model.get_weights()["dense_1.bias"]
    np.testing.assert_allclose(session.run(None, {"input": x})[0], x.astype(np.float32) @ kernel + bias, rtol=1e-6)


# --- extension guide: a custom layer -----------------------------------------------------------------------
class Scale(Layer):
    """y = x * gamma with one trainable gamma per feature: all a new layer needs is these four methods."""

    def __init__(self, init: float = 1.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.init = init

    def compute_output_shape(self, input_shape):
        return input_shape

    def build(self, input_shape, rng):
        self.add_weight("gamma", np.full(input_shape, self.init, np.float32))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        (gamma,) = self.emit_params(builder).values()
        return builder.node("Mul", [x, gamma])

    def get_config(self):
        return {**super().get_config(), "init": self.init}


def test_custom_layer_builds_exports_and_trains(blobs):
    x, y = blobs
    model = Sequential.of(Input(4, 3), Flatten(), Scale(0.5), Dense(3, activation="linear"), seed=2)
    assert model.layers[2].name == "scale_1"
    assert model.param_counts()[0] == 12 + 39
    with model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy")
        before = model.get_weights()["scale_1.gamma"].copy()
        history = model.fit((x, y), epochs=3, batch_size=16, verbose=0)
        assert not np.array_equal(model.get_weights()["scale_1.gamma"], before)
        assert history.history["loss"][-1] < history.history["loss"][0]
    assert isinstance(Layer.from_config(model.layers[2].serialize()), Scale)
    assert math.isclose(Layer.from_config(model.layers[2].serialize()).init, 0.5)


def test_input_takes_keras_positional_shape_as_kotlindls_dims():
    assert Input((28, 28, 1)).dims == Input(28, 28, 1).dims == Input(shape=[28, 28, 1]).dims == (28, 28, 1)
    assert Input((28, 28, 1)).get_config() == Input(28, 28, 1).get_config()
    with pytest.raises(InvalidArgumentError, match=r"dims or shape=\.\.\., not both"):
        Input((28, 28, 1), shape=(3,))
    with pytest.raises(
        InvalidArgumentError, match=r"Input\(dims\[0\]=\.\.\.\) expects a positive int. Received: dims\[0\]=\(4,\)"
    ):
        Input((4,), 3)


CALLS_TAKING_TRAINING = {  # layer(x, training=...) on x = Input(6, 4), as Keras code ported from a tutorial calls it
    "dropout": lambda x, **kw: Dropout(0.5)(x, **kw),
    "noise": lambda x, **kw: GaussianNoise(0.1)(x, **kw),
    "flatten": lambda x, **kw: Flatten()(x, **kw),
    "merge": lambda x, **kw: Add()([x, x], **kw),
    "bidirectional": lambda x, **kw: Bidirectional(LSTM(2))(x, **kw),
    "attention": lambda x, **kw: MultiHeadAttention(2, 4)(x, x, **kw),
    "model": lambda x, **kw: Sequential.of(Input(6, 4), Dropout(0.1))(x, **kw),
}


@pytest.mark.parametrize("call", CALLS_TAKING_TRAINING.values(), ids=CALLS_TAKING_TRAINING.keys())
def test_keras_training_call_argument_is_taken_at_none_and_false_and_refused_at_true(call: Any) -> None:
    assert call(Input(6, 4), training=None).shape == call(Input(6, 4)).shape
    assert call(Input(6, 4), training=False).training is False  # inference mode in every graph: test_training_argument
    message = r"the call argument training=True is not supported on symbolic tensors: it would run the call in training"
    with pytest.raises(UnsupportedError, match=message):
        call(Input(6, 4), training=True)
