"""The losses over classes: softmax cross-entropy (class indices, or one-hot / probability targets), binary
cross-entropy (from probabilities or logits) and the hinge losses. Registered by name in `onnxtrain.losses`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain._checks import as_real, check_bool
from onnxtrain._loss_base import (
    Loss,
    Shape,
    check_finite_labels,
    check_unit_interval,
    hinge_signs,
    input_rank,
    label_smoothing_value,
    numeric_labels,
    softplus,
    sum_last,
)
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder


@dataclass(frozen=True)
class SoftmaxCrossEntropyWithLogits(Loss):
    """Softmax over the last axis, then cross-entropy with integer class labels: one per example (int64 [batch]) for
    an output [batch, classes], or one per position (int64 [batch, *positions]) for an output [batch, *positions,
    classes] (a tagger's (T, C), a segmentation's (H, W, C)), averaged over every position, as Keras' sparse
    categorical cross-entropy takes them."""

    name: str = field(default="softmax_cross_entropy_with_logits", init=False)
    classification: bool = field(default=True, init=False)

    @property
    def trains_on_logits(self) -> bool:
        return True

    @property
    def probability_op(self) -> str | None:
        return "Softmax"

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        return self._cross_entropy(builder, output, labels, "mean")

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        return self._cross_entropy(builder, output, labels, "none")

    @staticmethod
    def _cross_entropy(builder: GraphBuilder, output: str, labels: str, reduction: str) -> str:
        if input_rank(builder, labels) == 1:  # a class per example: the op reads [batch, classes] and [batch]
            return _softmax_cross_entropy(builder, output, labels, reduction)
        # A class per position (or labels the graph derives, of any rank): each position a row of the op, whose
        # class axis is its second, then the values back in the labels' shape.
        scores = builder.node("Flatten", [output], hint="position_scores", axis=-1)
        classes = builder.node("Reshape", [labels, builder.ints([-1], "flat")], hint="position_labels")
        loss = _softmax_cross_entropy(builder, scores, classes, reduction)
        if reduction == "none":
            loss = builder.node("Reshape", [loss, builder.node("Shape", [labels])], hint="loss")
        return loss

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        if not output_shape:
            raise ShapeError(
                f"Loss {self.name!r} takes class indices for an output of shape [None, classes] (or [None, "
                "*positions, classes], a class per position). Received: an output of shape [None], which has no "
                "class axis. End the model in Dense(classes)."
            )
        return np.int64, (None, *output_shape[:-1])

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        """Class indices, int64 of shape (N, *positions) for an output (*positions, classes); (N, *positions, 1) is
        taken too, as Keras squeezes it."""
        return class_indices(numeric_labels(y, argument), output_shape, argument, self.name)

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.argmax(axis=-1)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


def _softmax_cross_entropy(builder: GraphBuilder, scores: str, labels: str, reduction: str) -> str:
    # The second output (log-probabilities) is what ORT's gradient of this op reads.
    loss, _ = builder.multi_output_node(
        "SoftmaxCrossEntropyLoss", [scores, labels], 2, hint="loss", reduction=reduction
    )
    return loss


def class_indices(y: np.ndarray, output_shape: Shape, argument: str, loss: str) -> np.ndarray:
    """`y` as the int64 class indices of an output of `output_shape` (*positions, classes): shape (N, *positions).

    Raises:
        InvalidArgumentError: another shape (one-hot targets named as such), fractional or out-of-range indices.
    """
    positions, num_classes = tuple(output_shape[:-1]), output_shape[-1]
    if y.shape[1:] == (*positions, 1):  # a trailing axis of one, as Keras squeezes it
        y = y[..., 0]
    if not positions and y.ndim != 1:
        raise InvalidArgumentError(
            f"{argument} for loss {loss!r} expects class indices of shape (N,). Received: {argument}.shape={y.shape}"
            + (" (one-hot labels? pass y.argmax(axis=1))" if y.ndim == 2 else "")
        )
    if y.shape[1:] != positions:
        hint = ""
        if y.shape[1:] == tuple(output_shape):
            hint = f" (one-hot labels? pass {argument}.argmax(axis=-1), or use loss='categorical_crossentropy')"
        elif y.ndim == 1:
            hint = (
                " (one class per example? the output has the positions "
                f"{positions} before its classes: reduce them first, with Flatten or GlobalAveragePooling1D)"
            )
        raise InvalidArgumentError(
            f"{argument} for loss {loss!r} expects one class index per position of the output (shape "
            f"{tuple(output_shape)}: positions {positions}, then {num_classes} classes), an array of shape "
            f"(N, {', '.join(map(str, positions))}). Received: {argument}.shape={y.shape}{hint}"
        )
    if y.dtype.kind == "f":
        check_finite_labels(y, argument)
        fractional = np.flatnonzero(y != np.round(y))
        if fractional.size:
            raise InvalidArgumentError(
                f"{argument} for loss {loss!r} expects integral class indices. Received: "
                f"{argument}[{_index(y, int(fractional[0]))}]={y.flat[int(fractional[0])].item()!r}"
            )
    labels = y.astype(np.int64)  # ORT's SoftmaxCrossEntropyLoss takes int64 labels
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgumentError(
            f"{argument} for loss {loss!r} expects class indices in [0, {num_classes - 1}] (the last layer has "
            f"{num_classes} units). Received: {argument}[{_index(y, i)}]={y.flat[i].item()!r} ({bad.size} labels out "
            "of range)"
        )
    return labels


def _index(y: np.ndarray, flat: int) -> str:
    """The index of `y`'s element `flat` as a message writes it: "3", or "3, 1" for labels per position."""
    return ", ".join(str(int(k)) for k in np.unravel_index(flat, y.shape))


@dataclass(frozen=True)
class SparseCategoricalCrossentropy(SoftmaxCrossEntropyWithLogits):
    """Keras' SparseCategoricalCrossentropy: softmax cross-entropy with class indices (int, shape [batch]; or
    [batch, *positions] for an output with positions before its classes, a tagger's (T, C), averaged over every
    position as Keras averages them), the loss of `compile(loss="sparse_categorical_crossentropy")` (KotlinDL's
    "softmax_cross_entropy_with_logits" computes the same, under its own name).

    It applies the softmax itself, to logits, as KotlinDL's `SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS` does: a last
    softmax (`Dense(10, activation="softmax")`, `Softmax()`) is left out of the graphs and a last Dense at its
    default activation is emitted linear (`emit.graph_layers`), so training sees logits and the export adds
    `probabilities`. `from_logits` is Keras' argument, kept in the config: False (the default) says the model ends
    in that softmax, True that it ends in logits; both compute the same, stable log-softmax (Keras' value wherever
    its clip of probabilities to [1e-7, 1 - 1e-7] does not bind), and a softmax is never applied twice.

    Args:
        from_logits: whether the model ends in logits rather than a softmax (the same computation, see above).
        ignore_class: Keras' class index to leave out of the loss; only None (every class counts) is supported.

    Raises:
        InvalidArgumentError: `from_logits` is not a bool.
        UnsupportedError: `ignore_class` is not None.
    """

    from_logits: bool = False
    ignore_class: int | None = None
    name: str = field(default="sparse_categorical_crossentropy", init=False)

    def __post_init__(self) -> None:
        flag = check_bool("SparseCategoricalCrossentropy", "from_logits", self.from_logits)
        object.__setattr__(self, "from_logits", flag)
        if self.ignore_class is not None:
            raise UnsupportedError(
                "SparseCategoricalCrossentropy(ignore_class=...) leaves a class index out of the loss in Keras; "
                f"onnxtrain counts every class. Received: ignore_class={self.ignore_class!r}. Drop those examples "
                "from the data, or give them sample_weight=0 (fit(..., sample_weight=w))."
            )

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "from_logits": self.from_logits}


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
        object.__setattr__(
            self, "label_smoothing", label_smoothing_value("CategoricalCrossentropy", self.label_smoothing)
        )

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        per_example = self._log_likelihood(builder, output, labels)
        return builder.node("Neg", [builder.node("ReduceMean", [per_example], keepdims=0)], hint="loss")

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        return builder.node("Neg", [self._log_likelihood(builder, output, labels)])

    def _log_likelihood(self, builder: GraphBuilder, output: str, labels: str) -> str:
        """sum(y log softmax(z)) over the last axis, the targets smoothed first."""
        if self.label_smoothing:
            classes = builder.node("Cast", [builder.node("Shape", [labels], start=-1)], to=TensorProto.FLOAT)
            kept = builder.node("Mul", [labels, builder.constant(1.0 - self.label_smoothing, "cce_kept")])
            spread = builder.node("Div", [builder.constant(self.label_smoothing, "cce_smoothing"), classes])
            labels = builder.node("Add", [kept, spread])
        log_probabilities = builder.node("LogSoftmax", [output], axis=-1)
        return sum_last(builder, builder.node("Mul", [labels, log_probabilities]))

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        return np.float32, (None, *output_shape)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        """One-hot or probability targets shaped like the output; class indices get a hint to the sparse loss."""
        array = numeric_labels(y, argument)
        if array.shape[1:] != tuple(output_shape):
            indices = array.shape[1:] in (tuple(output_shape[:-1]), (*output_shape[:-1], 1))
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects one-hot or probability targets of shape "
                f"(N, {', '.join(map(str, output_shape))}) like the model output. Received: {argument}.shape="
                f"{array.shape}"
                + (" (class indices? use loss='sparse_categorical_crossentropy', or one-hot them)" if indices else "")
            )
        targets = Loss.prepare_labels(self, array, output_shape, argument)
        check_unit_interval(targets, argument, self.name)
        return targets

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


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
        object.__setattr__(self, "label_smoothing", label_smoothing_value("BinaryCrossentropy", self.label_smoothing))

    @property
    def trains_on_logits(self) -> bool:
        return self.from_logits

    @property
    def reads_probabilities(self) -> bool:
        return not self.from_logits

    @property
    def probability_op(self) -> str | None:
        return "Sigmoid" if self.from_logits else None

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        one = builder.constant(1.0, "bce_one")
        if self.label_smoothing:
            kept = builder.node("Mul", [labels, builder.constant(1.0 - self.label_smoothing, "bce_kept")])
            labels = builder.node("Add", [kept, builder.constant(0.5 * self.label_smoothing, "bce_smoothing")])
        if self.from_logits:
            return builder.node("Sub", [softplus(builder, output), builder.node("Mul", [output, labels])])
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
        return builder.node("Neg", [builder.node("Add", [positive, negative])])

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        y = super().prepare_labels(y, output_shape, argument)
        check_unit_interval(y, argument, self.name)
        return y

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """One sigmoid unit is a binary classifier: its class per example (int64, shape (N,)). Several units (an
        autoencoder's reconstruction, multi-label scores) are returned as they are, as Keras' predict returns them;
        `probabilities` gives the sigmoid of logits."""
        if outputs.ndim != 2 or outputs.shape[1] != 1:
            return outputs
        return (outputs[:, 0] > (0.0 if self.from_logits else 0.5)).astype(np.int64)

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
class Hinge(Loss):
    """Keras' hinge: mean(max(1 - y p, 0)), targets -1 or 1; a batch whose targets are all 0 or 1 has them
    mapped to -1 and 1 first, as Keras does per batch."""

    name: str = field(default="hinge", init=False)
    squared: bool = field(default=False, init=False)

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        signs = hinge_signs(builder, labels)
        margin = builder.node("Sub", [builder.constant(1.0, "hinge_one"), builder.node("Mul", [signs, output])])
        violation = builder.node("Relu", [margin])
        if self.squared:
            violation = builder.node("Mul", [violation, violation])
        return violation


@dataclass(frozen=True)
class SquaredHinge(Hinge):
    """Keras' squared_hinge: mean(max(1 - y p, 0)^2), targets as `Hinge` takes them."""

    name: str = field(default="squared_hinge", init=False)
    squared: bool = field(default=True, init=False)
