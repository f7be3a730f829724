"""The recurrent layers SimpleRNN, GRU and LSTM: one ONNX RNN, GRU or LSTM node over (batch, timesteps, features)
inputs, with weights stored as those ops read them (training keeps the node; its gradient rule is in
`autodiff/_recurrent_scan.py`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._core import ActivationLike
from onnxtrain.layers._recurrent_arguments import ONNX_ACTIVATIONS, keras_only_arguments
from onnxtrain.layers._recurrent_base import _Recurrent, reversed_time
from onnxtrain.regularizers import RegularizerLike

__all__ = ["GRU", "LSTM", "SimpleRNN", "_Recurrent", "reversed_time"]  # the base's names, for `_bidirectional`


class SimpleRNN(_Recurrent):
    """A fully connected recurrence, h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias), over
    (timesteps, features) inputs: Keras 3's SimpleRNN as ONNX's RNN op, e.g. `SimpleRNN(32)`.

    Returns the last step's state (units,), or every step's (timesteps, units) with `return_sequences=True`.
    Weights are stored as ONNX's RNN reads them (docs/layers.md has the layout; `from_keras_weights` converts Keras'):
    `kernel` [1, units, features], `recurrent_kernel` [1, units, units], `bias` [1, units] (ONNX's input bias;
    its recurrent bias is zeros), Keras' parameters.

    Args:
        units: the state's size, a positive int.
        activation: "tanh", "sigmoid", "relu" or "hard_sigmoid" (Keras 3's; what ONNX's op computes).
        use_bias: add the bias.
        kernel_initializer / recurrent_initializer / bias_initializer: drawn in Keras' shapes ([features, units],
            [units, units], [units]) with Keras' fans, then laid out as ONNX reads them.
        kernel_regularizer / recurrent_regularizer / bias_regularizer: penalties (`onnxtrain.regularizers`).
        return_sequences: every step's state instead of the last one.
        go_backwards: run over the sequence from its end (ONNX's direction="reverse"); with return_sequences, the
            states come in that order, last time step first, as Keras returns them.
        dropout, recurrent_dropout (0 only), return_state, stateful, time_major (False only), unroll (any: the
            graph is the same), seed, activity_regularizer (None only): Keras' arguments, accepted at the values
            that change nothing here.
    """

    op_type = "RNN"
    gates = 1
    keras_gate_order = (0,)

    def __init__(
        self,
        units: int,
        activation: ActivationLike = "tanh",
        use_bias: bool = True,
        kernel_initializer: InitializerLike = "glorot_uniform",
        recurrent_initializer: InitializerLike = "orthogonal",
        bias_initializer: InitializerLike = "zeros",
        kernel_regularizer: RegularizerLike = None,
        recurrent_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        activity_regularizer: RegularizerLike = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        seed: int | None = None,
        time_major: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(
            units,
            activation,
            None,
            use_bias,
            kernel_initializer,
            recurrent_initializer,
            bias_initializer,
            kernel_regularizer,
            recurrent_regularizer,
            bias_regularizer,
            return_sequences,
            go_backwards,
            keras_only_arguments(activity_regularizer, dropout, recurrent_dropout, return_state, stateful, time_major),
            name,
            trainable,
        )


class LSTM(_Recurrent):
    """Long short-term memory over (timesteps, features) inputs: Keras 3's LSTM as ONNX's LSTM op, e.g.
    `LSTM(64, return_sequences=True)`.

    Weights are stored as ONNX's LSTM reads them, gates in ONNX's order i, o, f, c (Keras': i, f, c, o):
    `kernel` [1, 4 * units, features], `recurrent_kernel` [1, 4 * units, units], `bias` [1, 4 * units] (ONNX's
    input bias Wb; its recurrent bias Rb, which would only add to Wb, is zeros), Keras' parameters. A
    fresh layer is drawn as Keras draws its own (in Keras' shapes, then reordered), so it starts as Keras' would.
    A Keras LSTM's weights go in through `from_keras_weights` (a transpose alone would mix up the gates):
    `lstm.set_weights(lstm.from_keras_weights(keras_lstm.get_weights()))`; `to_keras_weights()` goes back.

    Args:
        units, activation, use_bias, the initializers and regularizers, return_sequences, go_backwards and Keras'
            other arguments: as SimpleRNN's.
        recurrent_activation: of the gates i, f, o: "sigmoid" (default), "hard_sigmoid" (Keras 3's), "tanh" or "relu".
        unit_forget_bias: start the forget gate's bias at 1 (Keras' default), whatever bias_initializer gives.
    """

    op_type = "LSTM"
    gates = 4
    keras_gate_order = (0, 3, 1, 2)

    def __init__(
        self,
        units: int,
        activation: ActivationLike = "tanh",
        recurrent_activation: ActivationLike = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: InitializerLike = "glorot_uniform",
        recurrent_initializer: InitializerLike = "orthogonal",
        bias_initializer: InitializerLike = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: RegularizerLike = None,
        recurrent_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        activity_regularizer: RegularizerLike = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        use_cudnn: bool | str = "auto",
        time_major: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        self.unit_forget_bias = check_bool("LSTM", "unit_forget_bias", unit_forget_bias)
        super().__init__(
            units,
            activation,
            recurrent_activation,
            use_bias,
            kernel_initializer,
            recurrent_initializer,
            bias_initializer,
            kernel_regularizer,
            recurrent_regularizer,
            bias_regularizer,
            return_sequences,
            go_backwards,
            keras_only_arguments(activity_regularizer, dropout, recurrent_dropout, return_state, stateful, time_major),
            name,
            trainable,
        )

    def keras_bias(self, features: int, rng: np.random.Generator) -> np.ndarray:
        if not self.unit_forget_bias:
            return super().keras_bias(features, rng)
        width, units = 4 * self.units, self.units
        parts = [self.bias_initializer((units,), features, width, rng), np.ones(units, np.float32)]
        return np.concatenate([*parts, self.bias_initializer((2 * units,), features, width, rng)])

    def onnx_activations(self) -> list[str]:
        assert self.recurrent_activation is not None
        f, g = ONNX_ACTIVATIONS[self.recurrent_activation.name], ONNX_ACTIVATIONS[self.activation.name]
        return [f, g, g]

    def layer_config(self) -> dict[str, Any]:
        return {"unit_forget_bias": self.unit_forget_bias}


class GRU(_Recurrent):
    """Gated recurrent unit over (timesteps, features) inputs: Keras 3's GRU as ONNX's GRU op, e.g. `GRU(32)`.

    Weights are stored as ONNX's GRU reads them, gates in the order z, r, h (Keras' too): `kernel` [1, 3 * units,
    features], `recurrent_kernel` [1, 3 * units, units], and Keras' bias: with `reset_after=True` (Keras' default;
    ONNX's linear_before_reset=1) its two rows, the input and then the recurrent bias, `bias` [1, 6 * units]; with
    `reset_after=False` its one row, the input bias, [1, 3 * units] (ONNX's recurrent bias is zeros).

    Args:
        units, activation, use_bias, the initializers and regularizers, return_sequences, go_backwards and Keras'
            other arguments: as SimpleRNN's.
        recurrent_activation: of the gates z and r: "sigmoid" (default), "hard_sigmoid" (Keras 3's), "tanh" or "relu".
        reset_after: apply the reset gate after the recurrent kernel (True, as cuDNN) or before it.
    """

    op_type = "GRU"
    gates = 3
    keras_gate_order = (0, 1, 2)

    def __init__(
        self,
        units: int,
        activation: ActivationLike = "tanh",
        recurrent_activation: ActivationLike = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: InitializerLike = "glorot_uniform",
        recurrent_initializer: InitializerLike = "orthogonal",
        bias_initializer: InitializerLike = "zeros",
        kernel_regularizer: RegularizerLike = None,
        recurrent_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        activity_regularizer: RegularizerLike = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        reset_after: bool = True,
        use_cudnn: bool | str = "auto",
        time_major: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        self.reset_after = check_bool("GRU", "reset_after", reset_after)
        super().__init__(
            units,
            activation,
            recurrent_activation,
            use_bias,
            kernel_initializer,
            recurrent_initializer,
            bias_initializer,
            kernel_regularizer,
            recurrent_regularizer,
            bias_regularizer,
            return_sequences,
            go_backwards,
            keras_only_arguments(activity_regularizer, dropout, recurrent_dropout, return_state, stateful, time_major),
            name,
            trainable,
        )

    def keras_bias(self, features: int, rng: np.random.Generator) -> np.ndarray:
        width = 3 * self.units
        shape = (2, width) if self.reset_after else (width,)
        return self.bias_initializer(shape, features, width, rng)

    def onnx_activations(self) -> list[str]:
        assert self.recurrent_activation is not None
        return [ONNX_ACTIVATIONS[self.recurrent_activation.name], ONNX_ACTIVATIONS[self.activation.name]]

    def op_attributes(self) -> dict[str, Any]:
        return {"linear_before_reset": int(self.reset_after)}

    def stores_recurrent_bias(self) -> bool:
        return self.reset_after

    def layer_config(self) -> dict[str, Any]:
        return {"reset_after": self.reset_after}
