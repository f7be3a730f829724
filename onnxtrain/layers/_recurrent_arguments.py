"""The arguments of the recurrent layers (SimpleRNN, GRU, LSTM) that are checked against what ONNX's recurrent ops
compute: the activations, and Keras' arguments taken at one value only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnxtrain import activations
from onnxtrain._checks import as_real
from onnxtrain.activations import Activation
from onnxtrain.errors import UnknownIdentifierError, UnsupportedError
from onnxtrain.layers._core import ActivationLike

# The activations ONNX's recurrent ops compute, by onnxtrain's activation name: those without an alpha, and Keras 3's
# hard_sigmoid, clip(x / 6 + 0.5, 0, 1), as HardSigmoid with its alpha and beta given (their defaults differ
# between ONNX's spec and ONNX Runtime, whose RNN outputs zeros without them).
ONNX_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "hard_sigmoid": "HardSigmoid"}
_ALPHA_BETA = {"HardSigmoid": (1.0 / 6.0, 0.5)}  # Keras 3's hard_sigmoid


def activation_arguments(names: Sequence[str]) -> dict[str, list[float]]:
    """The `activation_alpha` and `activation_beta` of a recurrent node whose `activations` are `names` (ONNX's):
    one value for each activation that takes them, in their order, as ONNX Runtime consumes them; none when no
    activation takes them."""
    taking = [_ALPHA_BETA[name] for name in names if name in _ALPHA_BETA]
    if not taking:
        return {}
    return {"activation_alpha": [a for a, _ in taking], "activation_beta": [b for _, b in taking]}


def check_activation(owner: str, arg: str, value: ActivationLike) -> Activation:
    try:
        activation = activations.get(value)
    except UnknownIdentifierError:
        activation = None
    if (
        activation is None
        or activation.get_config() != {"name": activation.name}
        or activation.name not in ONNX_ACTIVATIONS
    ):
        raise UnsupportedError(
            f"{owner}({arg}=...) expects one of {sorted(ONNX_ACTIVATIONS)}: the activations ONNX's {owner} op "
            f"computes. Received: {arg}={value!r}"
        )
    return activation


def refuse_unless(owner: str, arg: str, value: object, supported: object, why: str) -> None:
    """Refuse a Keras argument onnxtrain only takes at one value (`supported`: False, 0.0 or None)."""
    if supported is None:
        accepted = value is None
    elif isinstance(supported, bool):
        accepted = isinstance(value, bool | np.bool_) and bool(value) == supported
    else:
        accepted = not isinstance(value, bool) and as_real(value) == supported
    if not accepted:
        raise UnsupportedError(
            f"{owner}({arg}=...) supports only {arg}={supported!r} ({why}). Received: {arg}={value!r}"
        )


def keras_only_arguments(
    activity_regularizer: object,
    dropout: object,
    recurrent_dropout: object,
    return_state: object,
    stateful: object,
    time_major: object,
) -> dict[str, object]:
    """The Keras arguments taken at one value only (`KERAS_ONLY_AT`), by name."""
    return {
        "activity_regularizer": activity_regularizer,
        "dropout": dropout,
        "recurrent_dropout": recurrent_dropout,
        "return_state": return_state,
        "stateful": stateful,
        "time_major": time_major,
    }


# Keras arguments taken at one value only: (that value, why no other)
KERAS_ONLY_AT: dict[str, tuple[object, str]] = {
    "return_state": (False, "the layer has one output; use return_sequences=True to read every step's state"),
    "stateful": (False, "states are not carried from one batch to the next"),
    "dropout": (0.0, "no dropout inside the recurrence; add a Dropout layer before it"),
    "recurrent_dropout": (0.0, "no dropout inside the recurrence"),
    "time_major": (False, "inputs are [batch, timesteps, features], as Keras 3 takes them"),
    "activity_regularizer": (
        None,
        "weight penalties only: kernel_regularizer, recurrent_regularizer, bias_regularizer",
    ),
}
