"""A built layer called on numpy arrays of other shapes than its first call's computes where its weights fit them, as
Keras' eager call does (`layers/_eager_shapes.py`), against Keras 3's outputs (tests/data/keras/eager_other_shapes.npz,
tools/keras_eager_shapes_fixtures.py): sequences of another length, images of another size, self-attention on a
layer built for cross-attention. The layer keeps its first call's shapes (its symbolic calls keep to them), and a
call its weights do not fit is refused naming the weight."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.errors import ShapeError
from onnxtrain.layers import (
    GRU,
    LSTM,
    AdditiveAttention,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Embedding,
    Input,
    Layer,
    LayerNormalization,
    MultiHeadAttention,
    Reshape,
    TimeDistributed,
)

with np.load(Path(__file__).parent / "data" / "keras" / "eager_other_shapes.npz") as _data:
    KERAS = dict(_data)

LAYERS: dict[str, Callable[[], Layer]] = {
    "dense": lambda: Dense(3, activation="linear"),  # Keras' default activation (KotlinDL's is ReLU)
    "conv1d": lambda: Conv1D(2, 3, padding="valid", activation="linear"),  # Keras' default padding
    "conv2d": lambda: Conv2D(2, 3, padding="same", activation="linear"),
    "lstm": lambda: LSTM(3, return_sequences=True),
    "gru": lambda: GRU(2),
    "bidirectional": lambda: Bidirectional(LSTM(2)),
    "embedding": lambda: Embedding(10, 3),
    "time_distributed": lambda: TimeDistributed(Dense(2, activation="linear")),
    "layer_norm": lambda: LayerNormalization(),
    "batch_norm": lambda: BatchNormalization(momentum=0.5),
}
CALLS = [(name, key[len(name) + 3 :]) for name in LAYERS for key in KERAS if key.startswith(f"{name}/y_")]


def keras_weights(name: str) -> list[np.ndarray]:
    return [KERAS[f"{name}/w{i}"] for i in range(sum(key.startswith(f"{name}/w") for key in KERAS))]


def built_as_keras(name: str) -> Layer:
    """The layer, built by its first call as Keras' was, with Keras' weights in onnxtrain's layout."""
    layer = LAYERS[name]()
    layer(KERAS[f"{name}/x_first"])
    weights = keras_weights(name)
    if hasattr(layer, "from_keras_weights"):  # the recurrent layers: ONNX's gate order and layout
        weights = layer.from_keras_weights(weights)
    elif name.startswith("conv"):  # Keras' (*window, in, filters) as (filters, in, *window)
        kernel = weights[0]
        weights[0] = kernel.transpose(kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2))
    layer.set_weights(weights)
    return layer


@pytest.mark.parametrize(("name", "call"), CALLS)
def test_a_built_layer_computes_arrays_of_other_shapes_as_keras(name: str, call: str) -> None:
    layer = built_as_keras(name)
    first, assigned = (layer.input_shape, layer.output_shape), layer.settings_assigned()
    y = layer(KERAS[f"{name}/x_{call}"], training=call.startswith("train"))
    np.testing.assert_allclose(y, KERAS[f"{name}/y_{call}"], rtol=1e-5, atol=1e-5)
    assert (layer.input_shape, layer.output_shape) == first  # the first call's, which a model takes
    assert layer.settings_assigned() == assigned  # nothing a compiled model would take for a changed setting


def test_a_training_call_of_other_shapes_moves_the_moving_statistics_as_keras() -> None:
    layer = built_as_keras("batch_norm")
    layer(KERAS["batch_norm/x_train7"], training=True)
    statistics = dict(zip(["gamma", "beta", "moving_mean", "moving_variance"], layer.get_weights(), strict=True))
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(statistics[name], KERAS[f"batch_norm/{name}"], rtol=1e-5, atol=1e-6)


MHA_CALLS = [key[len("mha/y_") :] for key in KERAS if key.startswith("mha/y_")]


def test_an_attention_layer_built_for_cross_attention_computes_self_attention_of_any_length_as_keras() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    layer(KERAS["mha/q_plain_again"], KERAS["mha/v_plain_again"])  # query [2, 4, 6], value [2, 5, 6]
    layer.set_weights(keras_weights("mha"))
    assert MHA_CALLS == ["causal_self", "q7_self", "q7_causal", "short_value", "plain_again"]
    for call in MHA_CALLS:
        causal = call.endswith("causal") or call == "causal_self"
        y = layer(KERAS[f"mha/q_{call}"], KERAS[f"mha/v_{call}"], use_causal_mask=causal)
        np.testing.assert_allclose(y, KERAS[f"mha/y_{call}"], rtol=1e-5, atol=1e-6, err_msg=call)
    assert layer.input_shapes == [(4, 6), (5, 6)] and layer.output_shape == (4, 6)  # its first call's


def test_a_layer_of_a_model_computes_other_shapes_eagerly_and_its_model_keeps_its_own() -> None:
    inputs = Input(5, 3)
    lstm, wrapped = LSTM(2, return_sequences=True), TimeDistributed(Dense(2))
    model = Model(inputs, wrapped(lstm(inputs)), seed=0)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    before = model.predict(x)
    longer = np.concatenate([x, x[:, :4]], axis=1)  # 9 steps; its first 5 are x's
    np.testing.assert_allclose(wrapped(lstm(longer))[:, :5], before, rtol=1e-5, atol=1e-6)
    assert lstm.input_shape == (5, 3) and wrapped.layer.input_shape == (2,)  # the wrapped layer's too
    np.testing.assert_array_equal(model.predict(x), before)
    with pytest.raises(ShapeError, match=r"was built for inputs of shape \[None, 5, 3\]"):
        lstm(Input(9, 3))  # a symbolic call keeps to the first call's shapes


class _Scaled(Layer):
    """A layer of one's own whose get_config leaves out its constructor's argument."""

    def __init__(self, units: int, name: str | None = None):
        super().__init__(name=name)
        self.units = units

    def build(self, input_shape, rng):
        self.add_weight("scale", np.ones((input_shape[-1], self.units), np.float32))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def emit(self, builder, x):
        return builder.node("MatMul", [x, self.emit_params(builder)["scale"]])


def _called(layer: Layer, *shapes: tuple[int, ...]) -> Layer:
    """`layer` built by a call on arrays of `shapes` (a list of them for several)."""
    arrays = [np.ones((2, *shape), np.float32) for shape in shapes]
    layer(arrays if len(arrays) > 1 else arrays[0])
    return layer


BAD = [
    (
        lambda: _called(Dense(2), (2,))(np.ones((3, 5), np.float32)),
        r"^Dense layer was built for inputs of shape \[None, 2\] by its first call; called on arrays of other "
        r"shapes, it computes with its weights where they fit them, as Keras does, and its weights do not fit "
        r"these: it has kernel of shape \[2, 2\], where they need "
        r"kernel of shape \[5, 2\]. Received: inputs of shape \[None, 5\]. Pad or crop the inputs",
    ),
    (
        lambda: _called(LayerNormalization(axis=[1, 2]), (5, 3))(np.ones((2, 6, 3), np.float32)),
        r"LayerNormalization layer was built for inputs of shape \[None, 5, 3\].*it has gamma of shape \[5, 3\], "
        r"where they need gamma of shape \[6, 3\]",
    ),
    (
        lambda: _called(Reshape((12,)), (4, 3))(np.ones((2, 5, 3), np.float32)),
        r"^Reshape layer cannot reshape input \[None, 5, 3\] \(15 values per example\) to target_shape \(12,\)",
    ),
    (
        lambda: _called(_Scaled(2), (3,))(np.ones((2, 4, 3), np.float32)),
        r"_Scaled layer was built for inputs of shape \[None, 3\].*a copy made from its config, which failed: "
        r"InvalidTypeError: _Scaled\(\) got an unexpected keyword argument 'trainable'.*Received: inputs of shape "
        r"\[None, 4, 3\]. Give the layer a get_config\(\) that its constructor takes",
    ),
    (
        lambda: Sequential.of(Input(4, 3), Dense(2))(np.ones((2, 5, 3), np.float32)),
        r"was built for inputs of shape \[None, 4, 3\].*Received: \[None, 5, 3\]",
    ),
    (
        lambda: _called(MultiHeadAttention(2, 3), (4, 6), (5, 6))(np.ones((2, 4, 6)), np.ones((2, 5, 7))),
        r"MultiHeadAttention layer was built for query \[None, 4, 6\], value \[None, 5, 6\], key \[None, 5, 6\] by its "
        r"first call.*\(attention_mask and use_causal_mask may change from call to call too\), and its weights do "
        r"not fit these: it has key.kernel of shape \[6, 2, 3\], where they need key.kernel of shape \[7, 2, 3\]. "
        r"Received: query \[None, 4, 6\], value \[None, 5, 7\], key \[None, 5, 7\]",
    ),
    (
        lambda: _called(AdditiveAttention(), (4, 6), (5, 6))(
            [np.ones((2, 4, 6)), np.ones((2, 5, 6)), np.ones((2, 5, 5))]
        ),
        r"^AdditiveAttention layer scores query steps against key steps feature by feature: they need the same "
        r"features. Received: query \[None, 4, 6\], key \[None, 5, 5\]",
    ),
]


@pytest.mark.parametrize(("call", "match"), BAD)
def test_a_call_the_weights_do_not_fit_is_refused_naming_what_differs(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ShapeError, match=match):
        call()
