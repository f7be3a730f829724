"""Loss functions: the ONNX nodes each emits, and the labels each expects (checked before ONNX Runtime sees them).
The names (`Losses`, the registry's aliases) and `get` are here; the classes live in `_classification_losses` and
`_regression_losses`, on the base of `_loss_base`.

Every loss is a mean over the batch, emitted through the GraphBuilder from operators that ONNX Runtime can
differentiate, so the same definition serves training, evaluation and any engine.
"""

from __future__ import annotations

import enum
from typing import Any

from onnxtrain._classification_losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Hinge,
    SoftmaxCrossEntropyWithLogits,
    SquaredHinge,
)
from onnxtrain._loss_base import Loss, Shape
from onnxtrain._registry import Registry
from onnxtrain._regression_losses import (
    CosineSimilarity,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
)

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "Losses",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "Shape",
    "SoftmaxCrossEntropyWithLogits",
    "SquaredHinge",
    "get",
]


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
