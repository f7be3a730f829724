"""One output of a model of several outputs as compile fixed it (`OutputSpec`: its loss, weight and metrics), and
`NoLoss`, the loss of an output compile gave none. `multi_output.OutputLosses` is made of these."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from onnxtrain import metrics as metrics_module
from onnxtrain._metric_base import Metric, unique_names, weighted_slots
from onnxtrain.errors import ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.losses import Loss

Shape = tuple[int, ...]


@dataclass(frozen=True)
class NoLoss(Loss):
    """The loss of an output compile gave none (None in a loss list, or left out of a loss dict): the output takes
    no labels and adds 0 to the model's loss (`OutputLosses.emit_outputs`), and is predicted as it is."""

    name: str = field(default="none", init=False)

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        # 0 * sum(output) rather than no node at all: the output's own weights stay on the loss's graph, with a
        # zero gradient, as ONNX Runtime's gradient builder refuses a parameter the loss does not reach ("as it's
        # unreachable from the output node(s)"). Only an output holding inf or NaN would make it NaN.
        total = builder.node("ReduceSum", [output], hint="unused", keepdims=0)
        return builder.node("Mul", [total, builder.constant(0.0, "no_loss")], hint="no_loss")


NO_LOSS = NoLoss()


@dataclass(frozen=True)
class OutputSpec:
    """What compile fixed for one output: its name (the layer's), shape, loss, loss weight, metrics and weighted
    metrics (`WeightedMetric`s, keyed as Keras keys them)."""

    name: str
    shape: Shape
    loss: Loss
    weight: float = 1.0
    metrics: tuple[Metric, ...] = ()
    weighted_metrics: tuple[Metric, ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def has_loss(self) -> bool:
        """Whether the output has a loss, and so takes labels (see `NoLoss`)."""
        return not isinstance(self.loss, NoLoss)

    @property
    def label_width(self) -> int:
        if not self.has_loss:
            return 0
        return math.prod(self.shape[:-1]) if self.loss.classification else self.size  # class indices: one per position

    def get_config(self) -> dict[str, Any]:
        config = {
            "name": self.name,
            "shape": list(self.shape),
            "loss": self.loss.get_config() if self.has_loss else None,
            "weight": self.weight,
            "metrics": [m.get_config() for m in self.metrics],
        }
        if self.weighted_metrics:
            config["weighted_metrics"] = [m.get_config() for m in self.weighted_metrics]
        return config

    @property
    def figures(self) -> tuple[Metric, ...]:
        """The metrics, then the weighted metrics."""
        return (*self.metrics, *self.weighted_metrics)


def output_spec(name: str, shape: Shape, loss: Loss, weight: float, metrics: Any, weighted_metrics: Any) -> OutputSpec:
    """One output's spec, its metrics keyed as Keras keys them (a second "precision" as "precision_1", a weighted
    metric named like a metric as "weighted_<name>"), each checked against the output's shape, as is its loss.

    Raises:
        ShapeError: a loss that cannot take an output of this shape (sparse categorical cross-entropy on an output
            of more than one axis: `Loss.label_spec`), naming the output.
    """
    if not isinstance(loss, NoLoss):
        try:
            loss.label_spec(shape)
        except ShapeError as e:
            raise ShapeError(f"Output {name!r}: {e}") from e
    own = unique_names([metrics_module.named(m) for m in as_list(metrics)])
    weighted = weighted_slots(tuple(metrics_module.named(m) for m in as_list(weighted_metrics)), [m.name for m in own])
    for metric in (*own, *weighted):
        metric.size(shape)
    return OutputSpec(name, shape, loss, weight, own, weighted)


def as_list(value: Any) -> list[Any]:
    """None as [], a list or tuple as a list, anything else as a list of it."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
