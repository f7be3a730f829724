"""Loss functions: the ONNX nodes each emits, and the labels each expects (checked before ONNX Runtime sees them).

Every loss is a mean over the batch, emitted through the GraphBuilder from operators that ONNX Runtime can
differentiate, so the same definition serves training, evaluation and any engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain._checks import FLOAT32_MAX, as_real, check_bool
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
    CATEGORICAL_CROSSENTROPY = "categorical_crossentropy"
    KL_DIVERGENCE = "kl_divergence"
    POISSON = "poisson"
    LOG_COSH = "log_cosh"
    MAPE = "mean_absolute_percentage_error"
    MSLE = "mean_squared_logarithmic_error"
    HINGE = "hinge"
    SQUARED_HINGE = "squared_hinge"
    COSINE_SIMILARITY = "cosine_similarity"


@dataclass(frozen=True)
class Loss:
    """Base class: `emit` adds the scalar loss; `prepare_labels` validates and converts user labels."""

    name: str = field(default="", init=False)
    # Class-index labels (int64 [batch]) rather than float targets shaped like the output.
    classification: bool = field(default=False, init=False)
    # Each output unit is a probability of its own, against a 0/1 target (binary cross-entropy): accuracy
    # thresholds every unit at 0.5, as Keras' binary accuracy does, instead of comparing argmaxes.
    binary: bool = field(default=False, init=False)

    @property
    def trains_on_logits(self) -> bool:
        """Whether the outputs the engines return are logits (`probabilities` turns them into what the model
        predicts): softmax cross-entropy, whose graphs leave a last softmax out, and binary cross-entropy
        from logits. Metrics that compare values read the probabilities then."""
        return False

    @property
    def probability_op(self) -> str | None:
        """The ONNX op that turns the outputs into probabilities in the export (its `probabilities` output):
        Softmax for softmax cross-entropy, Sigmoid for binary cross-entropy from logits; None where the outputs
        are what the model predicts."""
        return None

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

    @property
    def trains_on_logits(self) -> bool:
        return True

    @property
    def probability_op(self) -> str | None:
        return "Softmax"

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
    """Binary cross-entropy of each output unit against a target in [0, 1], averaged over the last axis and the
    batch, as Keras computes it.

    On probabilities (a sigmoid output, the default), as KotlinDL and Keras' TensorFlow backend compute it:
    p = clip(output, epsilon, 1 - epsilon), then -(y log(p + epsilon) + (1 - y) log(1 - p + epsilon)). Keras'
    JAX and torch backends take log(p) and log(1 - p) without the added epsilon; the two agree to about epsilon / p
    inside the clip and differ only for saturated outputs: in float32, a wrong saturated unit costs 15.42 (target 1,
    output 0) or 15.33 (target 0, output 1; 1 - p is 1.19e-7 after the clip) here and in TensorFlow, 16.12 or 15.94
    with JAX. A sigmoid output is not traced back to its logits: outputs beyond the clip (|logit| above ~16) get
    no gradient, as in KotlinDL.

    With `from_logits=True` the output is the logit z (end the model in a linear layer) and the loss is
    softplus(z) - y z, computed without overflow for any z, as Keras' `from_logits=True`: no clip, no epsilon,
    and a gradient (sigmoid(z) - y) for saturated logits too. Predictions threshold z at 0 and
    `predict_softly` returns sigmoid(z).

    Args:
        epsilon: the clip of probabilities, in [0, 0.5) (unused with `from_logits`).
        from_logits: whether the output is a logit rather than a probability.
        label_smoothing: in [0, 1]; targets become y (1 - label_smoothing) + 0.5 label_smoothing, as Keras'.

    Raises:
        InvalidArgumentError: an argument out of its range.
    """

    epsilon: float = 1e-7
    from_logits: bool = field(default=False, kw_only=True)
    label_smoothing: float = field(default=0.0, kw_only=True)
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
        object.__setattr__(self, "from_logits", check_bool("BinaryCrossentropy", "from_logits", self.from_logits))
        object.__setattr__(self, "label_smoothing", _label_smoothing("BinaryCrossentropy", self.label_smoothing))

    @property
    def trains_on_logits(self) -> bool:
        return self.from_logits

    @property
    def probability_op(self) -> str | None:
        return "Sigmoid" if self.from_logits else None

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        one = builder.constant(1.0, "bce_one")
        if self.label_smoothing:
            kept = builder.node("Mul", [labels, builder.constant(1.0 - self.label_smoothing, "bce_kept")])
            labels = builder.node("Add", [kept, builder.constant(0.5 * self.label_smoothing, "bce_smoothing")])
        if self.from_logits:
            total = builder.node("Sub", [_softplus(builder, output), builder.node("Mul", [output, labels])])
            return builder.node("ReduceMean", [total], hint="loss", keepdims=0)
        p = builder.node(
            "Clip",
            [
                output,
                builder.constant(self.epsilon, "bce_min"),
                builder.constant(1.0 - self.epsilon, "bce_max"),
            ],
        )
        epsilon = builder.constant(self.epsilon, "bce_epsilon")
        positive = builder.node("Mul", [labels, builder.node("Log", [builder.node("Add", [p, epsilon])])])
        complement = builder.node("Add", [builder.node("Sub", [one, p]), epsilon])
        negative = builder.node("Mul", [builder.node("Sub", [one, labels]), builder.node("Log", [complement])])
        total = builder.node("Neg", [builder.node("Add", [positive, negative])])
        return builder.node("ReduceMean", [total], hint="loss", keepdims=0)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        y = super().prepare_labels(y, output_shape, argument)
        _check_unit_interval(y, argument, self.name)
        return y

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        decided = (outputs > (0.0 if self.from_logits else 0.5)).astype(np.int64)
        return decided[:, 0] if outputs.shape[1] == 1 else decided

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        if self.from_logits:  # sigmoid without overflow: exp of a non-positive number only
            e = np.exp(-np.abs(outputs))
            return np.where(outputs >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(outputs.dtype, copy=False)
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "epsilon": self.epsilon,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


@dataclass(frozen=True)
class CategoricalCrossentropy(SoftmaxCrossEntropyWithLogits):
    """Softmax cross-entropy with one-hot or probability targets shaped like the output:
    -sum(y log softmax(z)) over the last axis, averaged over the rest, as Keras' categorical_crossentropy.

    It applies the softmax itself, to logits z, as the sparse form does: a last softmax (`Dense(10,
    activation="softmax")`, `Softmax()`) is left out of the graphs, so training sees its logits and the export
    adds `probabilities`. `from_logits` is Keras' argument, kept in the config: False (the default) says the model
    ends in that softmax, True that it ends in logits; both compute the same, stable log-softmax, which equals
    Keras' value wherever Keras' clip of probabilities to [1e-7, 1 - 1e-7] does not bind (a softmax is never
    applied twice, where Keras with `from_logits=True` after a softmax would).

    Args:
        from_logits: whether the model ends in logits rather than a softmax (the same computation, see above).
        label_smoothing: in [0, 1]; targets become y (1 - label_smoothing) + label_smoothing / classes, as Keras'.

    Raises:
        InvalidArgumentError: an argument out of its range.
    """

    from_logits: bool = False
    label_smoothing: float = 0.0
    name: str = field(default="categorical_crossentropy", init=False)
    classification: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "from_logits", check_bool("CategoricalCrossentropy", "from_logits", self.from_logits))
        object.__setattr__(self, "label_smoothing", _label_smoothing("CategoricalCrossentropy", self.label_smoothing))

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        if self.label_smoothing:
            classes = builder.node("Cast", [builder.node("Shape", [labels], start=-1)], to=TensorProto.FLOAT)
            kept = builder.node("Mul", [labels, builder.constant(1.0 - self.label_smoothing, "cce_kept")])
            spread = builder.node("Div", [builder.constant(self.label_smoothing, "cce_smoothing"), classes])
            labels = builder.node("Add", [kept, spread])
        log_probabilities = builder.node("LogSoftmax", [output], axis=-1)
        per_example = _sum_last(builder, builder.node("Mul", [labels, log_probabilities]))
        return builder.node("Neg", [builder.node("ReduceMean", [per_example], keepdims=0)], hint="loss")

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        return np.float32, (None, *output_shape)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        """One-hot or probability targets shaped like the output; class indices get a hint to the sparse loss."""
        array = _numeric(y, argument)
        if array.shape[1:] != tuple(output_shape):
            indices = array.shape[1:] in (tuple(output_shape[:-1]), (*output_shape[:-1], 1))
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects one-hot or probability targets of shape "
                f"(N, {', '.join(map(str, output_shape))}) like the model output. Received: {argument}.shape="
                f"{array.shape}"
                + (" (class indices? use loss='sparse_categorical_crossentropy', or one-hot them)" if indices else "")
            )
        targets = Loss.prepare_labels(self, array, output_shape, argument)
        _check_unit_interval(targets, argument, self.name)
        return targets

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


@dataclass(frozen=True)
class KLDivergence(Loss):
    """Keras' kl_divergence: sum(y log(y / p)) over the last axis with y and p clipped to [1e-7, 1], then the mean.
    The output should be probabilities (a softmax), which this loss does not leave out of the graphs."""

    name: str = field(default="kl_divergence", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        epsilon, one = builder.constant(_EPSILON, "kld_epsilon"), builder.constant(1.0, "kld_one")
        y = builder.node("Clip", [labels, epsilon, one])
        p = builder.node("Clip", [output, epsilon, one])
        ratio = builder.node("Sub", [builder.node("Log", [y]), builder.node("Log", [p])])
        return _mean(builder, _sum_last(builder, builder.node("Mul", [y, ratio])))


@dataclass(frozen=True)
class Poisson(Loss):
    """Keras' poisson: mean(p - y log(p + 1e-7)); the output should be a positive rate (softplus, exponential)."""

    name: str = field(default="poisson", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        log_rate = builder.node("Log", [builder.node("Add", [output, builder.constant(_EPSILON, "poisson_epsilon")])])
        return _mean(builder, builder.node("Sub", [output, builder.node("Mul", [labels, log_rate])]))


@dataclass(frozen=True)
class LogCosh(Loss):
    """Keras' log_cosh: mean(log(cosh(p - y))), as e + softplus(-2e) - log 2 so that large errors do not overflow."""

    name: str = field(default="log_cosh", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        error = builder.node("Sub", [output, labels])
        doubled = builder.node("Mul", [error, builder.constant(-2.0, "log_cosh_minus_two")])
        total = builder.node("Add", [error, _softplus(builder, doubled)])
        return _mean(builder, builder.node("Sub", [total, builder.constant(np.log(2.0), "log_cosh_log2")]))


@dataclass(frozen=True)
class MeanAbsolutePercentageError(Loss):
    """Keras' mean_absolute_percentage_error: 100 mean(|y - p| / max(|y|, 1e-7))."""

    name: str = field(default="mean_absolute_percentage_error", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        scale = builder.node("Max", [builder.node("Abs", [labels]), builder.constant(_EPSILON, "mape_epsilon")])
        error = builder.node("Div", [builder.node("Abs", [builder.node("Sub", [labels, output])]), scale])
        return _mean(builder, builder.node("Mul", [error, builder.constant(100.0, "mape_percent")]))


@dataclass(frozen=True)
class MeanSquaredLogarithmicError(Loss):
    """Keras' mean_squared_logarithmic_error: mean((log(max(p, 1e-7) + 1) - log(max(y, 1e-7) + 1))^2)."""

    name: str = field(default="mean_squared_logarithmic_error", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        epsilon, one = builder.constant(_EPSILON, "msle_epsilon"), builder.constant(1.0, "msle_one")

        def log1p_clipped(value: str) -> str:
            return builder.node("Log", [builder.node("Add", [builder.node("Max", [value, epsilon]), one])])

        error = builder.node("Sub", [log1p_clipped(output), log1p_clipped(labels)])
        return _mean(builder, builder.node("Mul", [error, error]))


@dataclass(frozen=True)
class Hinge(Loss):
    """Keras' hinge: mean(max(1 - y p, 0)), targets -1 or 1; a batch whose targets are all 0 or 1 has them
    mapped to -1 and 1 first, as Keras does per batch."""

    name: str = field(default="hinge", init=False)
    squared: bool = field(default=False, init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        signs = _hinge_signs(builder, labels)
        margin = builder.node("Sub", [builder.constant(1.0, "hinge_one"), builder.node("Mul", [signs, output])])
        violation = builder.node("Relu", [margin])
        if self.squared:
            violation = builder.node("Mul", [violation, violation])
        return _mean(builder, violation)


@dataclass(frozen=True)
class SquaredHinge(Hinge):
    """Keras' squared_hinge: mean(max(1 - y p, 0)^2), targets as `Hinge` takes them."""

    name: str = field(default="squared_hinge", init=False)
    squared: bool = field(default=True, init=False)


@dataclass(frozen=True)
class CosineSimilarity(Loss):
    """Keras' cosine_similarity loss: -sum(y / |y| * p / |p|) over the last axis (each norm at least 1e-3, as
    Keras' l2-normalize bounds the squared norm below by 1e-7), then the mean: -1 at best."""

    name: str = field(default="cosine_similarity", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        product = builder.node("Mul", [_l2_normalized(builder, labels), _l2_normalized(builder, output)])
        return builder.node("Neg", [_mean(builder, _sum_last(builder, product))], hint="loss")


_CLASSES: dict[str, type[Loss]] = {
    Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS.value: SoftmaxCrossEntropyWithLogits,
    Losses.MSE.value: MeanSquaredError,
    Losses.MAE.value: MeanAbsoluteError,
    Losses.BINARY_CROSSENTROPY.value: BinaryCrossentropy,
    Losses.HUBER.value: Huber,
    Losses.CATEGORICAL_CROSSENTROPY.value: CategoricalCrossentropy,
    Losses.KL_DIVERGENCE.value: KLDivergence,
    Losses.POISSON.value: Poisson,
    Losses.LOG_COSH.value: LogCosh,
    Losses.MAPE.value: MeanAbsolutePercentageError,
    Losses.MSLE.value: MeanSquaredLogarithmicError,
    Losses.HINGE.value: Hinge,
    Losses.SQUARED_HINGE.value: SquaredHinge,
    Losses.COSINE_SIMILARITY.value: CosineSimilarity,
}
_ALIASES = {
    "sparse_categorical_crossentropy": "softmax_cross_entropy_with_logits",
    "soft_max_cross_entropy_with_logits": "softmax_cross_entropy_with_logits",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
}

_REGISTRY = Registry("loss", Loss, _CLASSES, _ALIASES, normalize=lambda name: name.strip().lower().replace("-", "_"))


def get(identifier: str | Losses | Loss | dict[str, Any]) -> Loss:
    """Map a `Losses` member, a name ("mse"), a config dict or a Loss instance to a Loss.

    Raises:
        UnknownIdentifierError: the name is not a known loss.
    """
    if isinstance(identifier, Losses):
        identifier = identifier.value
    return _REGISTRY.get(identifier, also_accepted=", a Losses member")


_EPSILON = 1e-7  # Keras' backend.epsilon()


def _mean(builder: GraphBuilder, value: str) -> str:
    """The mean over every element: Keras' mean over the last axis, then over the examples."""
    return builder.node("ReduceMean", [value], hint="loss", keepdims=0)


def _sum_last(builder: GraphBuilder, value: str) -> str:
    return builder.node(
        "ReduceSum", [value, builder.constant(np.array([-1], np.int64), "last_axis", np.int64)], keepdims=0
    )


def _softplus(builder: GraphBuilder, x: str) -> str:
    """log(1 + exp(x)) as (x + |x|) / 2 + log(1 + exp(-|x|)): no overflow for any x, and gradient sigmoid(x)
    everywhere, 1/2 at 0 included (relu(x) in place of the first half would give 0 there)."""
    magnitude = builder.node("Abs", [x])
    positive_part = builder.node("Mul", [builder.node("Add", [x, magnitude]), builder.constant(0.5, "half")])
    tail = builder.node("Exp", [builder.node("Neg", [magnitude])])
    return builder.node(
        "Add", [positive_part, builder.node("Log", [builder.node("Add", [tail, builder.constant(1.0)])])]
    )


def _hinge_signs(builder: GraphBuilder, labels: str) -> str:
    """Targets as -1/1: where every target of the batch is 0 or 1, 2y - 1 (as Keras' hinge maps them); else y."""
    zero, one = builder.constant(0.0, "hinge_zero"), builder.constant(1.0, "hinge_one")
    each = builder.node("Or", [builder.node("Equal", [labels, zero]), builder.node("Equal", [labels, one])])
    binary = builder.node("ReduceMin", [builder.node("Cast", [each], to=TensorProto.FLOAT)], keepdims=0)  # 1.0 or 0.0
    return builder.node("Add", [labels, builder.node("Mul", [binary, builder.node("Sub", [labels, one])])])


def _l2_normalized(builder: GraphBuilder, value: str) -> str:
    squares = builder.node(
        "ReduceSum",
        [builder.node("Mul", [value, value]), builder.constant(np.array([-1], np.int64), "last_axis", np.int64)],
        keepdims=1,
    )
    bounded = builder.node("Max", [squares, builder.constant(_EPSILON, "l2_epsilon")])
    return builder.node("Div", [value, builder.node("Sqrt", [bounded])])


def _label_smoothing(owner: str, value: object) -> float:
    smoothing = as_real(value)
    if smoothing is None or not 0 <= smoothing <= 1:  # NaN fails the comparison
        raise InvalidArgumentError(
            f"{owner}(label_smoothing=...) expects a number in [0, 1]. Received: label_smoothing={value!r}"
        )
    return smoothing


def _check_unit_interval(y: np.ndarray, argument: str, loss: str) -> None:
    bad = np.flatnonzero((y < 0) | (y > 1))
    if bad.size:
        raise InvalidArgumentError(
            f"{argument} for loss {loss!r} expects targets in [0, 1]. Received: "
            f"{argument}.flat[{int(bad[0])}]={y.flat[int(bad[0])].item()!r}"
        )


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
