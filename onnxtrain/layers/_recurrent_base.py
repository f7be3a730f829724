"""`_Recurrent`, the base of SimpleRNN, GRU and LSTM: their arguments, weights stored as ONNX's ops read them, and
the one RNN, GRU or LSTM node over (batch, timesteps, features) inputs, masked as Keras masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain._checks import check_bool
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._core import ActivationLike, _positive_int
from onnxtrain.layers._layer import Layer, Mask, Shape, describe, format_shape
from onnxtrain.layers._masked_recurrence import compact
from onnxtrain.layers._recurrent_arguments import (
    KERAS_ONLY_AT,
    ONNX_ACTIVATIONS,
    activation_arguments,
    check_activation,
    refuse_unless,
)
from onnxtrain.regularizers import Regularizer, RegularizerLike

ZERO_OUTPUT_FOR_MASK = "zero_output_for_mask"


class _Recurrent(Layer):
    """What SimpleRNN, GRU and LSTM share: arguments, the (batch, timesteps, features) layout, the weights in ONNX's
    order and the node. Subclasses name their ONNX op and gates and order Keras' gate blocks into ONNX's. A mask of
    the steps (Embedding(mask_zero=True), Masking) is read as Keras reads it (`emit_masked`)."""

    reads_mask = True
    # Keras' zero_output_for_mask, which the subclasses take without a parameter of their own (`keep_keras_argument`)
    kept_keras_arguments: ClassVar[tuple[str, ...]] = (ZERO_OUTPUT_FOR_MASK,)
    zero_output_for_mask: bool = False

    op_type: ClassVar[str]
    gates: ClassVar[int]
    # ONNX's gate blocks as indices of Keras' (LSTM: Keras i, f, c, o; ONNX i, o, f, c)
    keras_gate_order: ClassVar[tuple[int, ...]]

    def __init__(
        self,
        units: int,
        activation: ActivationLike,
        recurrent_activation: ActivationLike | None,
        use_bias: bool,
        kernel_initializer: InitializerLike,
        recurrent_initializer: InitializerLike,
        bias_initializer: InitializerLike,
        kernel_regularizer: RegularizerLike,
        recurrent_regularizer: RegularizerLike,
        bias_regularizer: RegularizerLike,
        return_sequences: bool,
        go_backwards: bool,
        keras_only: Mapping[str, object],
        name: str | None,
        trainable: bool,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = type(self).__name__
        self.units = _positive_int(owner, "units", units)
        self.activation = check_activation(owner, "activation", activation)
        self.recurrent_activation = (
            check_activation(owner, "recurrent_activation", recurrent_activation) if recurrent_activation else None
        )
        self.use_bias = check_bool(owner, "use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer: Regularizer | None = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer: Regularizer | None = regularizers.get(recurrent_regularizer)
        self.bias_regularizer: Regularizer | None = regularizers.get(bias_regularizer)
        self.return_sequences = check_bool(owner, "return_sequences", return_sequences)
        self.go_backwards = check_bool(owner, "go_backwards", go_backwards)
        for arg, value in keras_only.items():
            supported, why = KERAS_ONLY_AT[arg]
            refuse_unless(owner, arg, value, supported, why)

    def keep_keras_argument(self, name: str, value: object) -> None:
        """Keras' `zero_output_for_mask` (`_keras_arguments.py`): with return_sequences and a mask, a masked step's
        output is zeros (True) or the previous step's (False, Keras' default; None reads as False, as in Keras).
        Without return_sequences it changes nothing, as in Keras. Its config holds it where True.

        Raises:
            InvalidArgumentError: not a bool or None.
        """
        assert name == ZERO_OUTPUT_FOR_MASK, name
        self.zero_output_for_mask = False if value is None else check_bool(type(self).__name__, name, value)

    # --- shapes and weights ---------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise ShapeError(
                f"{describe(self)} expects input of shape [None, timesteps, features]. "
                f"Received: input shape {format_shape(input_shape)}"
            )
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        features, width = input_shape[-1], self.gates * self.units
        kernel = self.kernel_initializer((features, width), features, width, rng)
        self.add_weight("kernel", self.onnx_matrix(kernel))
        recurrent = self.recurrent_initializer((self.units, width), self.units, width, rng)
        self.add_weight("recurrent_kernel", self.onnx_matrix(recurrent))
        if self.use_bias:
            self.add_weight("bias", self.onnx_bias(self.keras_bias(features, rng)))

    def keras_bias(self, features: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh bias in Keras' shape and order (GRU with reset_after: [2, 3 * units], else [gates * units])."""
        width = self.gates * self.units
        return self.bias_initializer((width,), features, width, rng)

    def onnx_matrix(self, keras: np.ndarray) -> np.ndarray:
        """Keras' kernel [inputs, gates * units] (or recurrent kernel) as ONNX's W (or R): [1, gates * units,
        inputs], the gate blocks in ONNX's order."""
        blocks = np.split(np.asarray(keras, np.float32), self.gates, axis=1)
        return np.concatenate([blocks[k] for k in self.keras_gate_order], axis=1).T[None].copy()

    def onnx_bias(self, keras: np.ndarray) -> np.ndarray:
        """Keras' bias as this layer's, in ONNX's gate order: its one row, the input bias (ONNX's Wb), [1, gates *
        units]; GRU with reset_after: its two rows, the input and then the recurrent bias (Rb), [1, 2 * gates *
        units]. A recurrent bias of its own would add to the input one and double the bias's step (it is zeros in
        ONNX's B: `emit`)."""
        rows = np.asarray(keras, np.float32).reshape(-1, self.gates * self.units)
        return np.concatenate([np.split(row, self.gates)[k] for row in rows for k in self.keras_gate_order])[None]

    def from_keras_weights(self, keras_weights: Sequence[Any]) -> list[np.ndarray]:
        """Keras' weights of the same layer (`keras_layer.get_weights()`: kernel [features, gates * units],
        recurrent_kernel [units, gates * units] and, with use_bias, bias [gates * units], or GRU(reset_after=True)'s
        [2, gates * units]) as this layer's, in its `get_weights()` order: transposed into ONNX's layout with the
        gate blocks in ONNX's order (LSTM: Keras' i, f, c, o become i, o, f, c; GRU's z, r, h and SimpleRNN's one
        block stay). A transpose alone would give the shapes but mix up an LSTM's gates.

        Example:
            >>> lstm = model.get_layer("lstm_1")
            >>> lstm.set_weights(lstm.from_keras_weights(keras_model.get_layer("lstm").get_weights()))

        Raises:
            InvalidArgumentError: the layer has no weights yet (not in a model), or `keras_weights` are not Keras'
                arrays of this layer's shapes (naming the expected ones).
        """
        owner = f"{type(self).__name__} layer {self.name!r}.from_keras_weights"
        return self.keras_to_onnx(keras_weights, built_features(self, "kernel", owner), owner)

    def to_keras_weights(self) -> list[np.ndarray]:
        """This layer's weights as Keras' same layer holds them (`from_keras_weights` undone): what
        `keras_layer.set_weights(...)` takes."""
        return self.onnx_to_keras(self.current_weights())

    def keras_weight_shapes(self, features: int) -> dict[str, tuple[int, ...]]:
        """The shapes of Keras' weights of this layer on `features` features, by name, in `get_weights()` order."""
        width = self.gates * self.units
        shapes: dict[str, tuple[int, ...]] = {"kernel": (features, width), "recurrent_kernel": (self.units, width)}
        if self.use_bias:
            shapes["bias"] = (2, width) if self.stores_recurrent_bias() else (width,)
        return shapes

    def keras_to_onnx(self, keras_weights: Sequence[Any], features: int, owner: str) -> list[np.ndarray]:
        """`from_keras_weights` on `features` features (Bidirectional converts each direction's); `owner` starts
        the error."""
        expected = self.keras_weight_shapes(features)
        received = [np.shape(value) for value in keras_weights] if isinstance(keras_weights, list | tuple) else None
        if received != list(expected.values()):
            names = ", ".join(f"{name} {shape}" for name, shape in expected.items())
            raise InvalidArgumentError(
                f"{owner} expects Keras' get_weights() of {type(self).__name__}({self.units}) on {features} "
                f"features: {names}. Received: "
                + (f"shapes {received}" if received is not None else type(keras_weights).__name__)
            )
        kernel, recurrent, *bias = keras_weights
        ours = [self.onnx_matrix(np.asarray(kernel)), self.onnx_matrix(np.asarray(recurrent))]
        return ours + [self.onnx_bias(np.asarray(b)) for b in bias]

    def onnx_to_keras(self, weights: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """This layer's weights (by local name) in Keras' layout and gate order, in Keras' `get_weights()` order."""
        keras_order = [int(k) for k in np.argsort(self.keras_gate_order)]

        def keras_blocks(row: np.ndarray) -> np.ndarray:  # [gates * units] or [gates * units, inputs]
            return np.concatenate([np.split(row, self.gates)[k] for k in keras_order])

        result = [keras_blocks(weights["kernel"][0]).T, keras_blocks(weights["recurrent_kernel"][0]).T]
        if "bias" in weights:
            rows = weights["bias"].reshape(-1, self.gates * self.units)
            shape = self.keras_weight_shapes(weights["kernel"].shape[-1])["bias"]
            result.append(np.stack([keras_blocks(row) for row in rows]).reshape(shape))
        return [np.ascontiguousarray(value) for value in result]

    # --- graph ----------------------------------------------------------------------------------------------
    def onnx_activations(self) -> list[str]:
        return [ONNX_ACTIVATIONS[self.activation.name]]

    def op_attributes(self) -> dict[str, Any]:
        return {}

    def onnx_direction(self) -> str:
        return "reverse" if self.go_backwards else "forward"

    def stores_recurrent_bias(self) -> bool:
        """Whether `bias` holds ONNX's recurrent bias Rb after Wb (GRU with reset_after: `onnx_bias`)."""
        return False

    def add_penalties(self, builder: GraphBuilder, names: Mapping[str, str], prefix: str = "") -> None:
        """The weight penalties of this layer's parameters, whose graph names `names` holds by `prefix` + local name
        (Bidirectional holds its directions' weights as `forward_lstm.kernel`, ...)."""
        for weight, regularizer in (
            ("kernel", self.kernel_regularizer),
            ("recurrent_kernel", self.recurrent_regularizer),
            ("bias", self.bias_regularizer),
        ):
            if prefix + weight in names:
                regularizers.add_penalty(builder, regularizer, names[prefix + weight])

    def onnx_inputs(self, builder: GraphBuilder, names: Mapping[str, str], prefix: str = "") -> list[str]:
        """ONNX's W, R and (with use_bias) B of this layer's node, from its parameters' graph names as in
        `add_penalties`: B is Wb, then Rb (zeros but for GRU with reset_after: `onnx_bias`)."""
        inputs = [names[prefix + "kernel"], names[prefix + "recurrent_kernel"]]
        if self.use_bias:
            bias = names[prefix + "bias"]
            if not self.stores_recurrent_bias():
                zeros = builder.constant(np.zeros((1, self.gates * self.units), np.float32), "recurrent_bias")
                bias = builder.node("Concat", [bias, zeros], hint="bias", axis=1)
            inputs.append(bias)
        return inputs

    def onnx_node(self, builder: GraphBuilder, inputs: list[str], direction: str, activations: list[str]) -> list[str]:
        """This layer's ONNX node (RNN, GRU or LSTM) over X, W, R[, B] in `direction`: its Y and Y_h."""
        return builder.multi_output_node(
            self.op_type,
            inputs,
            2,
            hint=self.op_type.lower(),
            hidden_size=self.units,
            direction=direction,
            activations=activations,
            **activation_arguments(activations),  # hard_sigmoid's alpha and beta
            **self.op_attributes(),
        )

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return self._emit(builder, x, None)

    def emit_masked(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> str:
        """Keras' masked recurrence (`_masked_recurrence.py`): a masked step leaves the states as they were; with
        return_sequences, its output is the previous step's (zeros with `zero_output_for_mask`)."""
        assert isinstance(mask, str)
        return self._emit(builder, x, mask)

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        """Keras': the input's mask with return_sequences, none without."""
        return mask if self.return_sequences and isinstance(mask, str) else None

    def _emit(self, builder: GraphBuilder, x: str, mask: str | None) -> str:
        params = self.emit_params(builder)
        if self.trainable:  # Keras leaves out a frozen layer's penalties
            self.add_penalties(builder, params)
        steps = builder.node("Transpose", [x], hint="time_major", perm=[1, 0, 2])  # ONNX's layout 0
        weights = self.onnx_inputs(builder, params)
        compaction = None
        if mask is not None:
            assert self.input_shape is not None
            compaction = compact(builder, steps, mask, self.input_shape[0])
            weights = [*weights, *[""] * (3 - len(weights)), compaction.lengths]  # sequence_lens after B
        inputs = [compaction.steps if compaction else steps, *weights]
        y, y_h = self.onnx_node(builder, inputs, self.onnx_direction(), self.onnx_activations())
        if not self.return_sequences:
            last = builder.node("Squeeze", [y_h, builder.ints([0], "axes")])
            return compaction.last(builder, last) if compaction else last
        sequence = builder.node("Squeeze", [y, builder.ints([1], "axes")])
        if compaction:
            sequence = compaction.spread(builder, sequence, self.go_backwards, zero_masked=self.zero_output_for_mask)
        if self.go_backwards:  # Keras returns the outputs in the order it computed them, last time step first
            sequence = reversed_time(builder, sequence, 0, "backwards")
        return builder.node("Transpose", [sequence], hint="batch_major", perm=[1, 0, 2])

    def get_config(self) -> dict[str, Any]:
        penalties = {
            f"{weight}_regularizer": regularizer.get_config()
            for weight in ("kernel", "recurrent", "bias")
            if (regularizer := getattr(self, f"{weight}_regularizer")) is not None
        }
        recurrent = (
            {"recurrent_activation": self.recurrent_activation.get_config()} if self.recurrent_activation else {}
        )
        return {
            "units": self.units,
            "activation": self.activation.get_config(),
            **recurrent,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer.get_config(),
            "recurrent_initializer": self.recurrent_initializer.get_config(),
            "bias_initializer": self.bias_initializer.get_config(),
            **self.layer_config(),
            **penalties,
            "return_sequences": self.return_sequences,
            "go_backwards": self.go_backwards,
            **({ZERO_OUTPUT_FOR_MASK: True} if self.zero_output_for_mask else {}),
            **super().get_config(),
        }

    def layer_config(self) -> dict[str, Any]:
        """The subclass' own arguments (unit_forget_bias, reset_after)."""
        return {}


def built_features(layer: Layer, kernel: str, owner: str) -> int:
    """The features a built recurrent layer reads: the last axis of its `kernel` weight.

    Raises:
        InvalidArgumentError: the layer has no weights yet.
    """
    if kernel not in layer.params:
        raise InvalidArgumentError(
            f"{owner}: the layer has no weights yet, so its features are unknown: a layer makes them when a model of "
            "it is made (Sequential(...) or Model(...)). Call it after that."
        )
    return int(layer.params[kernel].shape[-1])


def reversed_time(builder: GraphBuilder, x: str, axis: int, hint: str) -> str:
    """`x` with its time axis `axis` reversed."""
    bounds = [[-1], [np.iinfo(np.int64).min], [axis], [-1]]  # starts, ends, axes, steps
    constants = [builder.ints(v, "reversed") for v in bounds]
    return builder.node("Slice", [x, *constants], hint=hint)
