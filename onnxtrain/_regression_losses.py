"""The losses over values: squared, absolute and Huber errors, Keras' divergences and log errors (KL divergence,
Poisson, log-cosh, MAPE, MSLE) and cosine similarity. Registered by name in `onnxtrain.losses`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain._loss_base import EPSILON, Loss, l2_normalized, mean_loss, softplus, sum_last
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder


@dataclass(frozen=True)
class MeanSquaredError(Loss):
    name: str = field(default="mse", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        diff = builder.node("Sub", [output, labels])
        return builder.node("Mul", [diff, diff])


@dataclass(frozen=True)
class MeanAbsoluteError(Loss):
    name: str = field(default="mae", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        return builder.node("Abs", [builder.node("Sub", [output, labels])])


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

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        error = builder.node("Abs", [builder.node("Sub", [output, labels])])
        delta = builder.constant(self.delta, "huber_delta")
        quadratic = builder.node("Min", [error, delta])
        linear = builder.node("Sub", [error, quadratic])
        half_sq = builder.node("Mul", [builder.node("Mul", [quadratic, quadratic]), builder.constant(0.5)])
        return builder.node("Add", [half_sq, builder.node("Mul", [linear, delta])])

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "delta": self.delta}


@dataclass(frozen=True)
class KLDivergence(Loss):
    """Keras' kl_divergence: sum(y log(y / p)) over the last axis with y and p clipped to [1e-7, 1], then the mean.
    The output should be probabilities (a softmax), which this loss does not leave out of the graphs."""

    name: str = field(default="kl_divergence", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        epsilon, one = builder.constant(EPSILON, "kld_epsilon"), builder.constant(1.0, "kld_one")
        y = builder.node("Clip", [labels, epsilon, one])
        p = builder.node("Clip", [output, epsilon, one])
        ratio = builder.node("Sub", [builder.node("Log", [y]), builder.node("Log", [p])])
        return sum_last(builder, builder.node("Mul", [y, ratio]))


@dataclass(frozen=True)
class Poisson(Loss):
    """Keras' poisson: mean(p - y log(p + 1e-7)); the output should be a positive rate (softplus, exponential)."""

    name: str = field(default="poisson", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        log_rate = builder.node("Log", [builder.node("Add", [output, builder.constant(EPSILON, "poisson_epsilon")])])
        return builder.node("Sub", [output, builder.node("Mul", [labels, log_rate])])


@dataclass(frozen=True)
class LogCosh(Loss):
    """Keras' log_cosh: mean(log(cosh(p - y))), as e + softplus(-2e) - log 2 so that large errors do not overflow."""

    name: str = field(default="log_cosh", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        error = builder.node("Sub", [output, labels])
        doubled = builder.node("Mul", [error, builder.constant(-2.0, "log_cosh_minus_two")])
        total = builder.node("Add", [error, softplus(builder, doubled)])
        return builder.node("Sub", [total, builder.constant(np.log(2.0), "log_cosh_log2")])


@dataclass(frozen=True)
class MeanAbsolutePercentageError(Loss):
    """Keras' mean_absolute_percentage_error: 100 mean(|y - p| / max(|y|, 1e-7))."""

    name: str = field(default="mean_absolute_percentage_error", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        scale = builder.node("Max", [builder.node("Abs", [labels]), builder.constant(EPSILON, "mape_epsilon")])
        error = builder.node("Div", [builder.node("Abs", [builder.node("Sub", [labels, output])]), scale])
        return builder.node("Mul", [error, builder.constant(100.0, "mape_percent")])


@dataclass(frozen=True)
class MeanSquaredLogarithmicError(Loss):
    """Keras' mean_squared_logarithmic_error: mean((log(max(p, 1e-7) + 1) - log(max(y, 1e-7) + 1))^2)."""

    name: str = field(default="mean_squared_logarithmic_error", init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        epsilon, one = builder.constant(EPSILON, "msle_epsilon"), builder.constant(1.0, "msle_one")

        def log1p_clipped(value: str) -> str:
            return builder.node("Log", [builder.node("Add", [builder.node("Max", [value, epsilon]), one])])

        error = builder.node("Sub", [log1p_clipped(output), log1p_clipped(labels)])
        return builder.node("Mul", [error, error])


@dataclass(frozen=True)
class CosineSimilarity(Loss):
    """Keras' cosine_similarity loss: -sum(y / |y| * p / |p|) over the last axis (each norm at least 1e-3, as
    Keras' l2-normalize bounds the squared norm below by 1e-7), then the mean: -1 at best."""

    name: str = field(default="cosine_similarity", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        return builder.node("Neg", [mean_loss(builder, self._similarity(builder, output, labels))], hint="loss")

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        return builder.node("Neg", [self._similarity(builder, output, labels)])

    @staticmethod
    def _similarity(builder: GraphBuilder, output: str, labels: str) -> str:
        product = builder.node("Mul", [l2_normalized(builder, labels), l2_normalized(builder, output)])
        return sum_last(builder, product)
