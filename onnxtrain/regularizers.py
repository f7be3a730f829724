"""Weight regularizers: the penalty a weight adds to its model's loss (L1, L2, L1L2), as ONNX nodes, and the registry
that maps names to them.

A layer that takes `kernel_regularizer=...` records the penalty with `add_penalty` while it emits; graphs with a loss
(training and evaluation) add it to the loss, as Keras does, so the reported loss includes it and its gradient
reaches the weight through the op rules. The inference export has no loss and holds none of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain._keras_serialized import is_keras_serialized, keras_config
from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder


def _factor(owner: str, arg: str, value: object) -> float:
    number = as_real(value)
    if number is not None and 0.0 <= number <= FLOAT32_MAX:  # NaN fails the comparison
        return number
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects a non-negative finite number, e.g. {arg}=0.01. Received: {arg}={value!r}"
    )


def _l1(builder: GraphBuilder, weight: str, factor: float) -> str:
    # |w| as relu(w) + relu(-w): ONNX Runtime training has a gradient for Relu and Neg (0 at w = 0, as sign(0)).
    negative = builder.node("Relu", [builder.node("Neg", [weight])])
    magnitude = builder.node("Add", [builder.node("Relu", [weight]), negative])
    total = builder.reduce("ReduceSum", magnitude, None, keepdims=False, hint="l1_sum")
    return builder.node("Mul", [total, builder.constant(factor, "l1")], hint="l1_penalty")


def _l2(builder: GraphBuilder, weight: str, factor: float) -> str:
    total = builder.reduce("ReduceSum", builder.node("Mul", [weight, weight]), None, keepdims=False, hint="l2_sum")
    return builder.node("Mul", [total, builder.constant(factor, "l2")], hint="l2_penalty")


@dataclass(frozen=True)
class Regularizer:
    """Base regularizer: subclasses implement `emit` (the scalar penalty of one weight) and `__call__` (the same in
    numpy). `name` is the registry key used in configs."""

    name: str = field(default="", init=False)

    def emit(self, builder: GraphBuilder, weight: str) -> str:
        raise NotImplementedError

    def __call__(self, weight: np.ndarray) -> float:
        raise NotImplementedError

    @property
    def is_zero(self) -> bool:
        """Whether the penalty is 0 for every weight (L1L2's defaults): then nothing is emitted."""
        return False

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **{k: v for k, v in self.__dict__.items() if k != "name"}}


@dataclass(frozen=True)
class L1(Regularizer):
    """l1 * sum(|w|)."""

    l1: float = 0.01
    name: str = field(default="l1", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1", _factor("L1", "l1", self.l1))

    def emit(self, builder: GraphBuilder, weight: str) -> str:
        return _l1(builder, weight, self.l1)

    def __call__(self, weight: np.ndarray) -> float:
        return float(self.l1 * np.sum(np.abs(weight)))

    @property
    def is_zero(self) -> bool:
        return self.l1 == 0.0


@dataclass(frozen=True)
class L2(Regularizer):
    """l2 * sum(w ** 2) (no factor 1/2, as in Keras: the gradient is 2 * l2 * w)."""

    l2: float = 0.01
    name: str = field(default="l2", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2", _factor("L2", "l2", self.l2))

    def emit(self, builder: GraphBuilder, weight: str) -> str:
        return _l2(builder, weight, self.l2)

    def __call__(self, weight: np.ndarray) -> float:
        return float(self.l2 * np.sum(np.square(weight)))

    @property
    def is_zero(self) -> bool:
        return self.l2 == 0.0


@dataclass(frozen=True)
class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w ** 2). Keras' defaults are 0 for both (KotlinDL's `L2L1`: 0.01 for both)."""

    l1: float = 0.0
    l2: float = 0.0
    name: str = field(default="l1_l2", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1", _factor("L1L2", "l1", self.l1))
        object.__setattr__(self, "l2", _factor("L1L2", "l2", self.l2))

    def emit(self, builder: GraphBuilder, weight: str) -> str:
        if self.l2 == 0.0:
            return _l1(builder, weight, self.l1)
        if self.l1 == 0.0:
            return _l2(builder, weight, self.l2)
        return builder.node("Add", [_l1(builder, weight, self.l1), _l2(builder, weight, self.l2)], hint="l1_l2_penalty")

    def __call__(self, weight: np.ndarray) -> float:
        return float(self.l1 * np.sum(np.abs(weight)) + self.l2 * np.sum(np.square(weight)))

    @property
    def is_zero(self) -> bool:
        return self.l1 == 0.0 and self.l2 == 0.0


_CLASSES: dict[str, type[Regularizer]] = {"l1": L1, "l2": L2, "l1_l2": L1L2}
_ALIASES = {"l1l2": "l1_l2"}
_HINTS = {
    "orthogonal_regularizer": "Keras' OrthogonalRegularizer (a penalty on the correlation of a kernel's rows or "
    "columns) is not in onnxtrain: use l1, l2 or l1_l2."
}
_REGISTRY = Registry("regularizer", Regularizer, _CLASSES, _ALIASES, hints=_HINTS)

RegularizerLike = str | Regularizer | type[Regularizer] | dict[str, Any] | None


def get(identifier: RegularizerLike) -> Regularizer | None:
    """Map a name ("l2", "L1L2"), a class, a config dict ({"name": "l2", "l2": 0.001}), Keras' serialized regularizer
    (what a Keras layer's `get_config()` writes: {"module": "keras.regularizers", "class_name": "L2", "config":
    {"l2": 0.001}, "registered_name": None}) or an instance to a Regularizer; None stays None (no penalty).

    Raises:
        UnknownIdentifierError: the name is not a known regularizer.
        InvalidArgumentError: a config with keys the regularizer does not take.
        UnsupportedError: Keras' regularizer of one's own class.
    """
    if identifier is None:
        return None
    if is_keras_serialized(identifier):
        assert isinstance(identifier, dict)
        return _REGISTRY.get(keras_config("regularizer", identifier, "onnxtrain.regularizers"))
    return _REGISTRY.get(identifier)


def add_penalty(builder: GraphBuilder, regularizer: Regularizer | None, weight: str) -> None:
    """Record `regularizer`'s penalty of graph value `weight` as a term of the model's loss (`builder.add_loss`);
    nothing for None or a zero regularizer. Called from a layer's `emit`, for trainable weights only: Keras leaves
    out the penalties of a frozen layer. Once per weight and graph: a layer emitted twice (a shared layer called
    twice, the logits copy of a last Dense) gets its weights' names again, and Keras counts a weight's penalty once
    (`Layer.losses` sums the regularizer over `trainable_weights`, not over calls).
    """
    if regularizer is not None and not regularizer.is_zero:
        builder.add_loss(lambda: regularizer.emit(builder, weight), key=f"penalty:{weight}")
