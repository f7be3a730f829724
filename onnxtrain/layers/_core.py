"""The core layers of the seed model: Input, Flatten and Dense."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from onnxtrain import activations, initializers, regularizers
from onnxtrain.activations import Activation
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import Initializer
from onnxtrain.layers._input_arguments import policy_name
from onnxtrain.layers._keras_input import check_dense_input, per_example_shape
from onnxtrain.layers._layer import Layer, Shape, SymbolicTensor
from onnxtrain.regularizers import Regularizer, RegularizerLike


def _positive_int(owner: str, arg: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InvalidArgumentError(f"{owner}({arg}=...) expects a positive int. Received: {arg}={value!r}")
    return int(value)


INPUT_DTYPES = ("float32", "int32", "int64")
"""What an Input may hold: float32 values (the default), or integers (token ids) that reach the graph unconverted."""


def input_dtype(owner: str, value: object) -> np.dtype:
    """`value` (Keras' spelling "int64", a numpy dtype or type, or Keras' dtype policy of one of them, as a layer's
    config writes it: the float32 policy is float32) as one of INPUT_DTYPES.

    Raises:
        InvalidArgumentError: `value` names another dtype or policy (mixed precision, ...), or none.
    """
    policy = policy_name(value)  # the name of Keras' policy, or None where `value` is none
    try:
        dtype = np.dtype(value if policy is None else policy)  # type: ignore[call-overload]
    except (TypeError, ValueError, KeyError):  # np.dtype reads a dict as a structured dtype's fields
        dtype = None
    if value is None or isinstance(value, bool) or dtype is None or dtype.name not in INPUT_DTYPES:
        what = f" Keras' dtype policy {policy!r} is none of them: onnxtrain computes in float32 only." if policy else ""
        raise InvalidArgumentError(
            f"{owner}(dtype=...) expects one of {list(INPUT_DTYPES)} (or the numpy dtype): float32 for features, "
            f"int64 or int32 for token ids that Embedding layers read; Keras' dtype policy of one of them too (its "
            f"float32 policy).{what} Received: dtype={value!r}"
        )
    return dtype


class Input(Layer, SymbolicTensor):
    """The model's input: `Input(28, 28, 1)` declares examples of shape (28, 28, 1) and a dynamic batch.

    It is the first layer of a Sequential, and a symbolic tensor of the Functional API: `Dense(10)(Flatten()(x))`.

    Args:
        dims / shape: the per-example shape: `Input(28, 28, 1)` (KotlinDL's), or Keras' `Input((28, 28, 1))` and
            `Input(shape=(28, 28, 1))`.
        name: the layer's name; a model of several inputs names its graph inputs after it.
        dtype: "float32" (default), or "int64" / "int32" for token ids: the graph input (training graphs and the
            export) then has that type and arrays are fed as integers, never scaled by `input_scale`; layers other
            than Embedding (and OnnxLayer) read it cast to float32.
        batch_shape: Keras' `(None, *shape)`, instead of shape (what Keras' InputLayer config writes).
        sparse, ragged, optional: Keras' arguments, taken at False (or None): inputs are dense and always given.
    """

    def __init__(
        self,
        *dims: int,
        name: str | None = None,
        shape: Shape | None = None,
        dtype: object = "float32",
        batch_shape: Sequence[int | None] | None = None,
        sparse: bool | None = None,
        ragged: bool | None = None,
        optional: bool = False,
    ):
        super().__init__(name=name)
        check_dense_input(sparse, ragged, optional)
        if len(dims) == 1 and isinstance(dims[0], tuple | list) and shape is None:  # Keras': Input((28, 28, 1))
            dims, shape = (), dims[0]
        shape, dims = per_example_shape(dims, shape, batch_shape)
        if shape is not None and dims:
            raise InvalidArgumentError(f"Input takes dims or shape=..., not both. Received: dims={dims}, shape={shape}")
        if shape is not None and not isinstance(shape, tuple | list):
            raise InvalidArgumentError(
                f"Input(shape=...) expects a tuple of dimensions, e.g. shape=(4,) or shape=(28, 28, 1). Received: "
                f"shape={shape!r}"
            )
        dims = tuple(shape) if shape is not None else dims
        if not dims:
            raise InvalidArgumentError(
                "Input(*dims) expects at least one dimension, e.g. Input(28, 28, 1). Received: no dimensions"
            )
        self.dtype: np.dtype = input_dtype("Input", dtype)
        if None in dims:
            raise InvalidArgumentError(_variable_length(dims, self.dtype))
        self.dims: Shape = tuple(_positive_int("Input", f"dims[{i}]", d) for i, d in enumerate(dims))
        SymbolicTensor.__init__(self, self.dims, self, 0, ())

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.dims

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return x

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.dims), "name": self.name, "dtype": self.dtype.name}


def dtype_note(layer: Layer) -> str:
    """What a summary adds to an Input's output shape: its dtype when it is not float32 (" int64"), else ""."""
    return f" {layer.dtype}" if isinstance(layer, Input) and layer.dtype != np.float32 else ""


class Flatten(Layer):
    """Flattens each example to one dimension: (N, 28, 28, 1) -> (N, 784)."""

    keras_data_format = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Flatten", [x], hint="flatten", axis=1)


def _variable_length(dims: tuple[object, ...], dtype: np.dtype) -> str:
    """Why Keras' `Input(shape=(None,))` is refused, and what to do: for token ids, padding read by a masking
    Embedding; for float steps of features (a time series, `Input(shape=(None, 3))`), padding and Masking; for
    images, one size."""
    axis = dims.index(None)
    why = (
        f"Input(shape={dims!r}) has no size at dims[{axis}] (dims[{axis}] is None): onnxtrain's models have a fixed "
        "shape per example (only the batch size is free), so every dimension needs its size."
    )
    if dtype.kind == "f" and len(dims) == 2:
        features = dims[1] if isinstance(dims[1], int) else "features"
        return (
            f"{why} For series of different lengths, pad them to one length (onnxtrain.utils.pad_sequences(series, "
            f"maxlen=40, dtype='float32', value=0.0), or np.pad) and give it: Input(shape=(40, {features})); "
            "a Masking(mask_value=0.0) layer after it masks the padded steps, so that recurrent layers, pooling and "
            "attention skip them (as in Keras)."
        )
    if dtype.kind == "f" and len(dims) >= 3:
        return f"{why} Resize or pad the examples to one size and give it, e.g. Input(shape=(224, 224, 3))."
    return (
        f"{why} For sequences of different lengths, pad them to one length (Keras' pad_sequences(sequences, "
        "maxlen=40), or np.pad) and give it: Input(shape=(40,), dtype='int64'); with Embedding(..., mask_zero=True) "
        "the padding (id 0) is masked, so it does not count."
    )


ActivationLike = str | Activation | activations.Activations | dict[str, Any] | None


class DefaultActivation(enum.Enum):
    """The `activation` of a Dense that was not given one (a sentinel, so a config can tell it from "relu")."""

    RELU = "relu"  # KotlinDL's default; a last layer feeding a loss that takes logits emits them linear


class Dense(Layer):
    """Fully connected layer: activation(x @ kernel + bias), over the last axis as in Keras: an input of shape
    (..., features) gives (..., units), e.g. per time step of a sequence.

    The defaults are KotlinDL's, which differ from Keras: `activation="relu"` (Keras: linear),
    `kernel_initializer=HeNormal` (Keras: GlorotUniform) and `bias_initializer=HeUniform` (Keras: zeros).
    One exception: a last Dense whose activation is not given, feeding a loss that takes logits (softmax
    cross-entropy), emits its logits linear (`emit.graph_layers`), since ReLU logits can leave a class unlearnable.
    `activation="relu"` given explicitly is kept there too.

    Args:
        units: number of outputs, a positive int (KotlinDL's name, `output_size`, works too).
        activation: name, `Activations` member or Activation instance; not given: ReLU (see above).
        kernel_initializer / bias_initializer: name, class or instance from `onnxtrain.initializers`.
        use_bias: add a bias vector.
        kernel_regularizer / bias_regularizer: a penalty the loss adds for the weight (`onnxtrain.regularizers`:
            "l2", L2(0.001), ...); None: none.

    Attributes:
        activation: the Activation (ReLU when not given); assigning one counts as giving it.
        activation_given: whether an activation was given; `get_config` leaves it out when it was not.
    """

    kotlindl_names: ClassVar[dict[str, str]] = {"output_size": "units"}  # KotlinDL's outputSize (_keras_arguments)

    def __init__(
        self,
        units: int,
        activation: ActivationLike | DefaultActivation = DefaultActivation.RELU,
        kernel_initializer: str | Initializer | type[Initializer] | dict[str, Any] = initializers.HeNormal,
        bias_initializer: str | Initializer | type[Initializer] | dict[str, Any] = initializers.HeUniform,
        use_bias: bool = True,
        kernel_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.units = _positive_int("Dense", "units", units)
        if isinstance(activation, DefaultActivation):
            self._activation = activations.get(activation.value)
            self.activation_given = False
        else:
            self.activation = activation
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        if not isinstance(use_bias, bool):
            raise InvalidArgumentError(f"Dense(use_bias=...) expects a bool. Received: use_bias={use_bias!r}")
        self.use_bias = use_bias
        self.kernel_regularizer: Regularizer | None = regularizers.get(kernel_regularizer)
        self.bias_regularizer: Regularizer | None = regularizers.get(bias_regularizer)

    @property
    def activation(self) -> Activation:
        return self._activation

    @activation.setter
    def activation(self, value: ActivationLike) -> None:
        self._activation = activations.get(value)
        self.activation_given = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.activation.output_shape((*input_shape[:-1], self.units))  # glu halves the units

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        fan_in, fan_out = input_shape[-1], self.units
        self.add_weight("kernel", self.kernel_initializer((fan_in, fan_out), fan_in, fan_out, rng))
        if self.use_bias:
            self.add_weight("bias", self.bias_initializer((fan_out,), fan_in, fan_out, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return self.activation.emit(builder, self.emit_linear(builder, x))

    def emit_linear(self, builder: GraphBuilder, x: str) -> str:
        """The layer without its activation (used when a loss wants pre-activation logits)."""
        params = self.emit_params(builder)
        if self.trainable:  # Keras leaves out a frozen layer's penalties
            regularizers.add_penalty(builder, self.kernel_regularizer, params["kernel"])
            if self.use_bias:
                regularizers.add_penalty(builder, self.bias_regularizer, params["bias"])
        flat = self.input_shape is None or len(self.input_shape) == 1
        if self.use_bias and flat:
            return builder.node("Gemm", [x, params["kernel"], params["bias"]], hint="gemm")
        y = builder.node("MatMul", [x, params["kernel"]], hint="matmul")  # over the last axis, as Keras' Dense
        return builder.node("Add", [y, params["bias"]], hint="biased") if self.use_bias else y

    def get_config(self) -> dict[str, Any]:
        activation = {"activation": self.activation.get_config()} if self.activation_given else {}
        penalties = {  # left out when not given, so configs written before regularizers read the same
            f"{weight}_regularizer": regularizer.get_config()
            for weight, regularizer in (("kernel", self.kernel_regularizer), ("bias", self.bias_regularizer))
            if regularizer is not None
        }
        return {
            "units": self.units,
            **activation,  # left out when not given, so the rebuilt layer keeps the default's rule
            "kernel_initializer": self.kernel_initializer.get_config(),
            "bias_initializer": self.bias_initializer.get_config(),
            "use_bias": self.use_bias,
            **penalties,
            "name": self.name,
            "trainable": self.trainable,
        }
