"""Loss functions: the ONNX nodes each emits, and the labels each expects (checked before ONNX Runtime sees them).

Every loss is a mean over the batch, emitted through the GraphBuilder from operators that ONNX Runtime can
differentiate, so the same definition serves training, evaluation and any engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import GraphBuilder

Shape = tuple[int, ...]


class Losses(enum.Enum):
    """KotlinDL's loss names."""

    SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS = "softmax_cross_entropy_with_logits"
    MSE = "mse"
    MAE = "mae"
    BINARY_CROSSENTROPY = "binary_crossentropy"
    HUBER = "huber"


@dataclass(frozen=True)
class Loss:
    """Base class: `emit` adds the scalar loss; `prepare_labels` validates and converts user labels."""

    name: str = field(default="", init=False)
    # Class-index labels (int64 [batch]) rather than float targets shaped like the output.
    classification: bool = field(default=False, init=False)
    # Each output unit is a probability of its own, against a 0/1 target (binary cross-entropy): accuracy
    # thresholds every unit at 0.5, as Keras' binary accuracy does, instead of comparing argmaxes.
    binary: bool = field(default=False, init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        raise NotImplementedError

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        """(numpy dtype, batched shape) of the labels graph input."""
        return np.float32, (None, *output_shape)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        """Float targets shaped like the model output; (N,) is accepted for a one-unit output."""
        y = _numeric(y, argument)
        if output_shape == (1,) and y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.shape[1:] != output_shape:
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects float targets of shape "
                f"(N, {', '.join(map(str, output_shape))})"
                f" like the model output. Received: {argument}.shape={y.shape}"
            )
        y = y.astype(np.float32, copy=False)
        _check_finite(y, argument)
        return y

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict` returns for a batch of model outputs: raw outputs for regression losses."""
        return outputs

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict_softly` returns; regression losses have no probabilities."""
        raise InvalidArgumentError(
            f"predict_softly needs a classification loss (softmax cross-entropy or binary cross-entropy). "
            f"Received: loss {self.name!r}; use predict() for regression outputs."
        )


@dataclass(frozen=True)
class SoftmaxCrossEntropyWithLogits(Loss):
    """Softmax over the last axis, then cross-entropy with integer class labels (int64, shape [batch])."""

    name: str = field(default="softmax_cross_entropy_with_logits", init=False)
    classification: bool = field(default=True, init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        # The second output (log-probabilities) is what ORT's gradient of this op reads.
        loss, _ = builder.multi_output_node(
            "SoftmaxCrossEntropyLoss", [output, labels], 2, hint="loss", reduction="mean"
        )
        return loss

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        return np.int64, (None,)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        num_classes = output_shape[-1]
        y = _numeric(y, argument)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects class indices of shape (N,). Received: "
                f"{argument}.shape={y.shape}" + (" (one-hot labels? pass y.argmax(axis=1))" if y.ndim == 2 else "")
            )
        if y.dtype.kind == "f":
            _check_finite(y, argument)
            fractional = np.flatnonzero(y != np.round(y))
            if fractional.size:
                i = int(fractional[0])
                raise InvalidArgumentError(
                    f"{argument} for loss {self.name!r} expects integral class indices. "
                    f"Received: {argument}[{i}]={y[i].item()!r}"
                )
        labels = y.astype(np.int64)  # ORT's SoftmaxCrossEntropyLoss takes int64 [batch]
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            i = int(bad[0])
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects class indices in [0, {num_classes - 1}] "
                f"(the last layer has "
                f"{num_classes} units). Received: {argument}[{i}]={y[i].item()!r} ({bad.size} labels out of range)"
            )
        return labels

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.argmax(axis=-1)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class MeanSquaredError(Loss):
    name: str = field(default="mse", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        diff = builder.node("Sub", [output, labels])
        return builder.node("ReduceMean", [builder.node("Mul", [diff, diff])], hint="loss", keepdims=0)


@dataclass(frozen=True)
class MeanAbsoluteError(Loss):
    name: str = field(default="mae", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        diff = builder.node("Sub", [output, labels])
        return builder.node("ReduceMean", [builder.node("Abs", [diff])], hint="loss", keepdims=0)


@dataclass(frozen=True)
class Huber(Loss):
    """0.5 * e^2 where |e| <= delta, else delta * (|e| - 0.5 * delta)."""

    delta: float = 1.0
    name: str = field(default="huber", init=False)

    def __post_init__(self) -> None:
        delta = as_real(self.delta)
        if delta is None or not 0 < delta <= FLOAT32_MAX:  # NaN fails the comparison
            raise InvalidArgumentError(
                "Huber(delta=...) expects a positive finite number within float32 range (delta <= 3.4e38). "
                f"Received: delta={self.delta!r}"
            )
        object.__setattr__(self, "delta", delta)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        error = builder.node("Abs", [builder.node("Sub", [output, labels])])
        delta = builder.constant(self.delta, "huber_delta")
        quadratic = builder.node("Min", [error, delta])
        linear = builder.node("Sub", [error, quadratic])
        half_sq = builder.node("Mul", [builder.node("Mul", [quadratic, quadratic]), builder.constant(0.5)])
        total = builder.node("Add", [half_sq, builder.node("Mul", [linear, delta])])
        return builder.node("ReduceMean", [total], hint="loss", keepdims=0)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "delta": self.delta}


@dataclass(frozen=True)
class BinaryCrossentropy(Loss):
    """Cross-entropy of probabilities (a sigmoid output) against targets in [0, 1], as KotlinDL and Keras'
    TensorFlow backend compute it: p = clip(output, epsilon, 1 - epsilon), then
    -(y log(p + epsilon) + (1 - y) log(1 - p + epsilon)), averaged over the last axis and the batch.

    epsilon must be in [0, 0.5). Unlike tf.keras, a sigmoid output is not traced back to its logits, so outputs
    that saturate the sigmoid (|logit| beyond ~16) are clipped, and get no gradient, as in KotlinDL.
    """

    epsilon: float = 1e-7
    name: str = field(default="binary_crossentropy", init=False)
    binary: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        epsilon = as_real(self.epsilon)
        if epsilon is None or not 0 <= epsilon < 0.5:
            raise InvalidArgumentError(
                "BinaryCrossentropy(epsilon=...) expects a number in [0, 0.5) (the outputs are clipped to "
                f"[epsilon, 1 - epsilon]). Received: epsilon={self.epsilon!r}"
            )
        object.__setattr__(self, "epsilon", epsilon)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        p = builder.node(
            "Clip",
            [
                output,
                builder.constant(self.epsilon, "bce_min"),
                builder.constant(1.0 - self.epsilon, "bce_max"),
            ],
        )
        one = builder.constant(1.0, "bce_one")
        epsilon = builder.constant(self.epsilon, "bce_epsilon")
        positive = builder.node("Mul", [labels, builder.node("Log", [builder.node("Add", [p, epsilon])])])
        complement = builder.node("Add", [builder.node("Sub", [one, p]), epsilon])
        negative = builder.node("Mul", [builder.node("Sub", [one, labels]), builder.node("Log", [complement])])
        total = builder.node("Neg", [builder.node("Add", [positive, negative])])
        return builder.node("ReduceMean", [total], hint="loss", keepdims=0)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        y = super().prepare_labels(y, output_shape, argument)
        bad = np.flatnonzero((y < 0) | (y > 1))
        if bad.size:
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects targets in [0, 1]. Received: "
                f"{argument}.flat[{int(bad[0])}]={y.flat[int(bad[0])].item()!r}"
            )
        return y

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        return (outputs > 0.5).astype(np.int64)[:, 0] if outputs.shape[1] == 1 else (outputs > 0.5).astype(np.int64)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "epsilon": self.epsilon}


_CLASSES: dict[str, type[Loss]] = {
    Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS.value: SoftmaxCrossEntropyWithLogits,
    Losses.MSE.value: MeanSquaredError,
    Losses.MAE.value: MeanAbsoluteError,
    Losses.BINARY_CROSSENTROPY.value: BinaryCrossentropy,
    Losses.HUBER.value: Huber,
}
_ALIASES = {
    "sparse_categorical_crossentropy": "softmax_cross_entropy_with_logits",
    "soft_max_cross_entropy_with_logits": "softmax_cross_entropy_with_logits",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "bce": "binary_crossentropy",
}

# Keras names onnxtrain has no loss of, with what to do instead
_HINTS = {
    "categorical_crossentropy": (
        "Keras' categorical_crossentropy takes one-hot labels, which onnxtrain's softmax cross-entropy does not: "
        "pass class indices, y.argmax(axis=1), with loss='sparse_categorical_crossentropy' (the same as "
        "'softmax_cross_entropy_with_logits'). A last softmax activation may stay: the loss applies it once itself."
    ),
}


_REGISTRY = Registry(
    "loss", Loss, _CLASSES, _ALIASES, normalize=lambda name: name.strip().lower().replace("-", "_"), hints=_HINTS
)


def get(identifier: str | Losses | Loss | dict[str, Any]) -> Loss:
    """Map a `Losses` member, a name ("mse"), a config dict or a Loss instance to a Loss.

    Raises:
        UnknownIdentifierError: the name is not a known loss.
    """
    if isinstance(identifier, Losses):
        identifier = identifier.value
    return _REGISTRY.get(identifier, also_accepted=", a Losses member")


def _numeric(y: Any, argument: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{argument} expects numeric labels. Received: dtype {y.dtype}")
    if y.ndim == 0:
        raise InvalidArgumentError(f"{argument} expects one label per example. Received: a scalar {y!r}")
    return y


def _check_finite(y: np.ndarray, argument: str) -> None:
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgumentError(
            f"{argument} expects finite values. Received: {argument}.flat[{i}]={y.flat[i].item()!r} "
            f"({bad.size} non-finite values)"
        )
