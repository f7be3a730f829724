"""The `Loss` base class, what every loss shares (how targets are checked, how sample weights weigh it: per example,
or per position of an output with steps, `weight_steps`), and the small ONNX pieces several losses emit (a mean, a
weighted mean, a stable softplus, L2 normalisation). The losses themselves: `_classification_losses`,
`_regression_losses`; their names and `get`: `onnxtrain.losses`; loss classes of one's own, recorded as they are
defined: `_own_losses`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
from onnx import TensorProto

from onnxtrain import _own_losses
from onnxtrain._checks import as_real
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.graph import GraphBuilder

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Loss:
    """Base class: `elements` adds the values the loss averages, `emit` their mean (the scalar loss),
    `emit_weighted` their mean weighted by example (Keras' `sample_weight`); `prepare_labels` validates and
    converts user labels.

    A loss defines `elements` (or overrides `emit`, and then takes no sample weights).

    A loss class of one's own is recorded when it is defined, as a layer class is, so that `load_model` rebuilds it
    from the name its save gives it: its class's `name` (`name: str = field(default="softmax_mse", init=False)`),
    or where it gives none (its instances then take Keras' name, "softmax_mse" for SoftmaxMSE) its module and class
    name, "__main__.SoftmaxMSE". Its config (`get_config`) holds its dataclass fields besides: a class with other
    arguments overrides `get_config` to return them.

    What a class of one's own emits is checked where the graph is made (`_own_losses.check_emitted`): its methods
    must return a value of the graph (`emit` a scalar, `elements` one or more values per example), and every node
    they add must be one ONNX takes at the graph's opset; the mistake is reported naming the class and the node.

    `averages_examples` says whether the loss is a mean of per-example values, so that the rows-weighted mean of
    its value over parts of a batch is its value over the batch: the portable engine's split step
    (docs/portable.md) relies on it. True for onnxtrain's losses and for a class that defines `elements` and keeps
    `Loss.emit`; a class of one's own that overrides `emit` or `emit_weighted` is taken as a loss of the whole
    batch (an RMSE, sqrt(mean((p - y)^2)) over the batch, is not the mean of its parts' RMSEs), whose step is not
    split, unless it sets `averages_examples = True` on its class (a plain class attribute, not a field)."""

    averages_examples: ClassVar[bool] = True
    name: str = field(default="", init=False)
    # Class-index labels (int64 [batch]) rather than float targets shaped like the output.
    classification: bool = field(default=False, init=False)
    # Each output unit is a probability of its own, against a 0/1 target (binary cross-entropy): accuracy
    # thresholds every unit at 0.5, as Keras' binary accuracy does, instead of comparing argmaxes.
    binary: bool = field(default=False, init=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _own_losses.record(cls)

    def __post_init__(self) -> None:
        if not self.name:  # the class's `name` (a plain class attribute), else Keras' name: "softmax_mse"
            cls = type(self)
            object.__setattr__(self, "name", _own_losses.class_name(cls) or _own_losses.default_name(cls))

    @property
    def trains_on_logits(self) -> bool:
        """Whether the outputs the engines return are logits (`probabilities` turns them into what the model
        predicts): softmax cross-entropy, whose graphs leave a last softmax out, and binary cross-entropy
        from logits. Metrics that compare values read the probabilities then."""
        return False

    @property
    def reads_probabilities(self) -> bool:
        """Whether the model's output holds probabilities that the loss reads as they are (binary cross-entropy
        not from logits, after a sigmoid): the export names such an output `probabilities`, not `logits`."""
        return False

    @property
    def probability_op(self) -> str | None:
        """The ONNX op that turns the outputs into probabilities in the export (its `probabilities` output):
        Softmax for softmax cross-entropy, Sigmoid for binary cross-entropy from logits; None where the outputs
        are what the model predicts."""
        return None

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        """The scalar loss of the batch: the mean of `elements`."""
        return mean_loss(builder, self.elements(builder, output, labels))

    def elements(self, builder: GraphBuilder, output: str, labels: str) -> str:
        """The values `emit` averages, [batch, ...]: Keras' per-sample losses (after the loss's own reduction over
        the last axis, where it has one), which sample weights multiply."""
        raise UnsupportedError(
            f"Loss {self.name!r} ({type(self).__name__}) gives no per-example values (`Loss.elements`), which "
            "sample_weight and class_weight multiply. Define elements() to train it with sample weights."
        )

    def emit_weighted(self, builder: GraphBuilder, output: str, labels: str, weights: str) -> str:
        """The scalar loss with each example's `elements` times its weight, averaged over every element as `emit`
        averages them: sum(w l) / elements, Keras' "sum_over_batch_size". `weights` (`weight_rows`): [batch, 1],
        one per example, or [batch, steps], one per position of an output with steps (Keras' (N, T) weights)."""
        return weighted_mean(builder, self.elements(builder, output, labels), weights)

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        """(numpy dtype, batched shape) of the labels graph input."""
        return np.float32, (None, *output_shape)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        """Float targets shaped like the model output; (N,) is accepted for a one-unit output."""
        y = numeric_labels(y, argument)
        if output_shape == (1,) and y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.shape[1:] != output_shape:
            raise InvalidArgumentError(
                f"{argument} for loss {self.name!r} expects float targets of shape "
                f"(N, {', '.join(map(str, output_shape))})"
                f" like the model output. Received: {argument}.shape={y.shape}"
            )
        y = y.astype(np.float32, copy=False)
        check_finite_labels(y, argument)
        return y

    def get_config(self) -> dict[str, Any]:
        """{"name": ..., **arguments}, what `onnxtrain.losses.get` rebuilds the loss from. A loss of one's own is
        named so that its class is found again (`_own_losses.saved_name`), with its dataclass fields as arguments
        (a numpy number as the Python number it holds, as Keras serializes one, so that a save can write it)."""
        if not _own_losses.is_own(type(self)):
            return {"name": self.name}
        arguments = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.init and f.name != "name"}
        return {"name": _own_losses.saved_name(self), **arguments}

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict` returns for a batch of model outputs: raw outputs for regression losses."""
        return outputs

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict_softly` returns; regression losses have no probabilities."""
        raise InvalidArgumentError(
            f"predict_softly needs a classification loss (softmax cross-entropy or binary cross-entropy). "
            f"Received: loss {self.name!r}; use predict() for regression outputs."
        )


EPSILON = 1e-7  # Keras' backend.epsilon()


def _plain(value: Any) -> Any:
    """`value` with numpy numbers (also inside tuples and lists) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (tuple, list):  # not a namedtuple, whose fields a generator does not fill
        return type(value)(_plain(item) for item in value)
    return value


def mean_loss(builder: GraphBuilder, value: str) -> str:
    """The mean over every element: Keras' mean over the last axis, then over the examples."""
    return builder.node("ReduceMean", [value], hint="loss", keepdims=0)


def weighted_mean(builder: GraphBuilder, value: str, weights: str) -> str:
    """The mean over every element of `value` ([batch, ...]) times its weight: `weights` [batch, 1] weighs each
    example's elements, [batch, steps] each position's (its elements [batch, *steps, ...], as Keras multiplies
    (N, T) sample weights into (N, T) losses); any [batch, ...] is read as `weight_rows` flattens it. The divisor
    is the element count whatever the weights, Keras' "sum_over_batch_size"."""
    rows = weight_rows(builder, weights)
    return builder.node("ReduceMean", [per_weight(builder, value, rows)], hint="loss", keepdims=0)


def weight_steps(output_shape: Shape) -> Shape:
    """The positions at which an output of `output_shape` (without the batch axis) takes a sample weight each, as
    Keras 3 multiplies (N, *steps) weights into the per-position losses: all its axes but the last ((T, C): (T,),
    a tagger's time steps; (H, W, C): (H, W)); () for an output of one axis, which takes one weight per example.
    A weighted graph of one output reads its `sample_weight` input as [batch, *weight_steps]."""
    return tuple(output_shape[:-1])


def weight_rows(builder: GraphBuilder, sample_weights: str) -> str:
    """The `sample_weight` input as [batch, 1] (one weight per example: [batch]) or [batch, steps] (one per
    position: [batch, *steps], flattened), the weights `Loss.emit_weighted` and a masked loss multiply in."""
    return builder.node("Flatten", [sample_weights], hint="sample_weight", axis=1)


def per_weight(builder: GraphBuilder, value: str, rows: str) -> str:
    """`value` ([batch, *steps, ...], or [batch, ...] for one weight per example) times `rows` (`weight_rows`),
    as [batch, weights, rest]: each weight broadcasts over the values of its example or its position."""
    weights = builder.node("Slice", [builder.node("Shape", [rows]), builder.ints([1]), builder.ints([2])])
    shape = builder.node("Concat", [builder.ints([0]), weights, builder.ints([-1])], hint="per_weight_shape", axis=0)
    grouped = builder.node("Reshape", [value, shape], hint="per_weight")
    columns = builder.node("Unsqueeze", [rows, builder.ints([2], "axes")], hint="weight_columns")
    return builder.node("Mul", [grouped, columns], hint="weighted")


def input_rank(builder: GraphBuilder, name: str) -> int | None:
    """The rank `name` was declared with where it is an input of the graph (`GraphBuilder.add_input`: the labels
    of a graph of one output), else None (a value the graph computes, such as one output's labels of several)."""
    declared = next((v for v in builder._inputs if v.name == name), None)  # (GraphBuilder has no getter of shapes)
    return None if declared is None else len(declared.type.tensor_type.shape.dim)


def sum_last(builder: GraphBuilder, value: str) -> str:
    return builder.node(
        "ReduceSum", [value, builder.constant(np.array([-1], np.int64), "last_axis", np.int64)], keepdims=0
    )


def softplus(builder: GraphBuilder, x: str) -> str:
    """log(1 + exp(x)) as (x + |x|) / 2 + log(1 + exp(-|x|)): no overflow for any x, and gradient sigmoid(x)
    everywhere, 1/2 at 0 included (relu(x) in place of the first half would give 0 there)."""
    magnitude = builder.node("Abs", [x])
    positive_part = builder.node("Mul", [builder.node("Add", [x, magnitude]), builder.constant(0.5, "half")])
    tail = builder.node("Exp", [builder.node("Neg", [magnitude])])
    return builder.node(
        "Add", [positive_part, builder.node("Log", [builder.node("Add", [tail, builder.constant(1.0)])])]
    )


def hinge_signs(builder: GraphBuilder, labels: str) -> str:
    """Targets as -1/1: where every target of the batch is 0 or 1, 2y - 1 (as Keras' hinge maps them); else y."""
    zero, one = builder.constant(0.0, "hinge_zero"), builder.constant(1.0, "hinge_one")
    each = builder.node("Or", [builder.node("Equal", [labels, zero]), builder.node("Equal", [labels, one])])
    binary = builder.node("ReduceMin", [builder.node("Cast", [each], to=TensorProto.FLOAT)], keepdims=0)  # 1.0 or 0.0
    return builder.node("Add", [labels, builder.node("Mul", [binary, builder.node("Sub", [labels, one])])])


def l2_normalized(builder: GraphBuilder, value: str) -> str:
    squares = builder.node(
        "ReduceSum",
        [builder.node("Mul", [value, value]), builder.constant(np.array([-1], np.int64), "last_axis", np.int64)],
        keepdims=1,
    )
    bounded = builder.node("Max", [squares, builder.constant(EPSILON, "l2_epsilon")])
    return builder.node("Div", [value, builder.node("Sqrt", [bounded])])


def label_smoothing_value(owner: str, value: object) -> float:
    smoothing = as_real(value)
    if smoothing is None or not 0 <= smoothing <= 1:  # NaN fails the comparison
        raise InvalidArgumentError(
            f"{owner}(label_smoothing=...) expects a number in [0, 1]. Received: label_smoothing={value!r}"
        )
    return smoothing


def check_unit_interval(y: np.ndarray, argument: str, loss: str) -> None:
    bad = np.flatnonzero((y < 0) | (y > 1))
    if bad.size:
        raise InvalidArgumentError(
            f"{argument} for loss {loss!r} expects targets in [0, 1]. Received: "
            f"{argument}.flat[{int(bad[0])}]={y.flat[int(bad[0])].item()!r}"
        )


def numeric_labels(y: Any, argument: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{argument} expects numeric labels. Received: dtype {y.dtype}")
    if y.ndim == 0:
        raise InvalidArgumentError(f"{argument} expects one label per example. Received: a scalar {y!r}")
    return y


def check_finite_labels(y: np.ndarray, argument: str) -> None:
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgumentError(
            f"{argument} expects finite values. Received: {argument}.flat[{i}]={y.flat[i].item()!r} "
            f"({bad.size} non-finite values)"
        )
