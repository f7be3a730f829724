"""A model of several outputs: one loss, weight and set of metrics per output, and how engines see them as one.

Engines train one loss over one labels array and return one outputs array per batch. A model of several outputs
keeps that interface: `OutputLosses` is the model's Loss (the weighted sum of one loss per output); its labels are
every output's labels packed into one float32 array [batch, width] (class indices are exact in float32 below 2**24)
and unpacked inside the graph; the outputs an engine returns are every output flattened into one array, followed
by one column per output holding that output's loss (`pack_outputs`).

An output may have no loss (Keras' `loss=[..., None]`, or a loss dict that leaves it out): it takes no labels,
adds nothing to the loss and logs nothing, and is still predicted and exported (`NoLoss`). One output's settings
are `_output_spec.py`'s; compile's per-output arguments are resolved into them by `_output_arguments.py`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain import losses
from onnxtrain._metric_base import Metric, Sums
from onnxtrain._output_arguments import output_specs
from onnxtrain._output_spec import NO_LOSS, NoLoss, OutputSpec, Shape, output_spec
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.losses import Loss

__all__ = ["NO_LOSS", "NoLoss", "OutputLosses", "OutputSpec", "pack_outputs", "packed_width", "resolve"]


@dataclass(frozen=True)
class OutputLosses(Loss):
    """The loss of a model of several outputs: sum over outputs of weight * loss (each a mean over the batch)."""

    outputs: tuple[OutputSpec, ...] = ()
    name: str = field(default="output_losses", init=False)
    # A dict of outputs' order in the logs, as Keras 3's evaluate lists them: the outputs' losses in this order
    # (the loss dict's, else the keys sorted), then the metrics sorted by key; () for a list of outputs: the
    # losses, then the metrics, in the outputs' order.
    log_order: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    @property
    def label_width(self) -> int:
        return sum(spec.label_width for spec in self.outputs)

    @property
    def _logged(self) -> tuple[OutputSpec, ...]:
        """The outputs whose loss the logs show as `<output>_loss`: as in Keras 3, every output with a loss where
        two or more have one; none where only one has (its loss is the model's `loss`)."""
        with_loss = tuple(spec for spec in self.outputs if spec.has_loss)
        if self.log_order:
            rank = {name: index for index, name in enumerate(self.log_order)}
            with_loss = tuple(sorted(with_loss, key=lambda spec: rank.get(spec.name, len(rank))))
        return with_loss if len(with_loss) > 1 else ()

    @property
    def packed_width(self) -> int:
        """Columns of the outputs array an engine returns: each output flattened, then one loss per output."""
        return packed_width([spec.shape for spec in self.outputs])

    def emit(self, builder: GraphBuilder, output: str, labels: str) -> str:
        raise InvalidArgumentError(
            f"The loss of a model of several outputs ({self.names}) is emitted from every output: emit_outputs."
        )

    def emit_outputs(
        self, builder: GraphBuilder, outputs: Sequence[str], labels: str, sample_weights: str | None = None
    ) -> tuple[str, list[str]]:
        """The weighted total and each output's own loss, reading each output's columns of the packed `labels`;
        with `sample_weights` ([batch, outputs]: one column per output), each output's loss weighs its examples by
        its column (`Loss.emit_weighted`)."""
        per_output: list[str] = []
        total = ""
        start = 0
        for index, (spec, output) in enumerate(zip(self.outputs, outputs, strict=True)):
            if not spec.has_loss:
                with builder.scope(spec.name):
                    value = spec.loss.emit(builder, output, labels)  # 0, reading no labels: `NoLoss`
                per_output.append(value)
                total = value if not total else builder.node("Add", [total, value], hint="total")
                continue
            with builder.scope(spec.name):
                columns = builder.node(
                    "Slice",
                    [
                        labels,
                        builder.constant(np.array([start], np.int64), "start", np.int64),
                        builder.constant(np.array([start + spec.label_width], np.int64), "end", np.int64),
                        builder.constant(np.array([1], np.int64), "axis", np.int64),
                    ],
                    hint="labels",
                )
                start += spec.label_width
                if spec.loss.classification:
                    # one class index per example, or per position of an output (T, C): [batch, *positions]
                    positions = builder.constant(np.array([-1, *spec.shape[:-1]], np.int64), "positions", np.int64)
                    flat = builder.node("Reshape", [columns, positions])
                    own_labels = builder.node("Cast", [flat], hint="labels", to=TensorProto.INT64)
                else:
                    shape = builder.constant(np.array([-1, *spec.shape], np.int64), "shape", np.int64)
                    own_labels = builder.node("Reshape", [columns, shape], hint="labels")
                if sample_weights is None:
                    value = spec.loss.emit(builder, output, own_labels)
                else:
                    column = builder.node(
                        "Slice",
                        [
                            sample_weights,
                            builder.constant(np.array([index], np.int64), "start", np.int64),
                            builder.constant(np.array([index + 1], np.int64), "end", np.int64),
                            builder.constant(np.array([1], np.int64), "axis", np.int64),
                        ],
                        hint="sample_weight",
                    )
                    value = spec.loss.emit_weighted(builder, output, own_labels, column)
                per_output.append(value)
                weighted = builder.node("Mul", [value, builder.constant(spec.weight, "weight")], hint="weighted")
            total = weighted if not total else builder.node("Add", [total, weighted], hint="total")
        return total, per_output

    def label_spec(self, output_shape: Shape) -> tuple[type, tuple[int | None, ...]]:
        return np.float32, (None, self.label_width)

    def prepare_labels(self, y: Any, output_shape: Shape, argument: str = "y") -> np.ndarray:
        """The labels of each output that has a loss (`targets`), each checked by its output's loss, packed into
        one float32 array."""
        given = self.targets(y, argument)
        prepared = {
            spec.name: spec.loss.prepare_labels(value, spec.shape, f"{argument}[{spec.name!r}]")
            for spec, value in zip(self.outputs, given, strict=True)
            if spec.has_loss
        }
        counts = {name: len(value) for name, value in prepared.items()}
        if len(set(counts.values())) > 1:
            raise InvalidArgumentError(f"{argument} expects as many labels for every output. Received: {counts}")
        return np.concatenate([value.reshape(len(value), -1).astype(np.float32) for value in prepared.values()], axis=1)

    def targets(self, y: Any, argument: str = "y") -> list[Any]:
        """fit's and evaluate's `y`, one entry per output in the outputs' order (None for an output without a
        loss, whose target is not read): a dict keyed by output name, which may leave those outputs out; a list
        of one array per output (any value, None included, where an output has no loss), or, as Keras takes it,
        of one array per output that has a loss."""
        with_loss = [spec.name for spec in self.outputs if spec.has_loss]
        if len(with_loss) == len(self.outputs):
            return self.per_output(y, argument)
        if isinstance(y, Mapping):
            self._check_keys(
                y,
                [name for name in with_loss if y.get(name) is None],
                f"{argument} expects one entry per output that has a loss ({with_loss}), keyed by output name "
                f"(outputs: {self.names})",
            )
            return [y[spec.name] if spec.has_loss else None for spec in self.outputs]
        if isinstance(y, list | tuple):
            if len(y) == len(with_loss):
                given = iter(y)
                return [next(given) if spec.has_loss else None for spec in self.outputs]
            if len(y) != len(self.outputs):
                raise InvalidArgumentError(
                    f"{argument} expects one array per output ({len(self.outputs)}: {self.names}; None where an "
                    f"output has no loss), or one per output that has a loss ({len(with_loss)}: {with_loss}). "
                    f"Received: a list of {len(y)}"
                )
            missing = [
                spec.name for spec, value in zip(self.outputs, y, strict=True) if spec.has_loss and value is None
            ]
            if missing:
                raise InvalidArgumentError(
                    f"{argument} expects an array for every output that has a loss ({with_loss}). Received: None for "
                    f"{missing}"
                )
            return [value if spec.has_loss else None for spec, value in zip(self.outputs, y, strict=True)]
        if len(with_loss) == 1:  # as Keras: one array, the targets of the one output that has a loss
            return [y if spec.has_loss else None for spec in self.outputs]
        return self.per_output(y, argument)  # its message for what is neither

    def _check_keys(self, value: Mapping[str, Any], missing: list[str], expects: str) -> None:
        """Refuse a dict given per output that holds a key naming no output, or lacks the `missing` ones."""
        unknown = [key for key in value if key not in self.names]
        if unknown or missing:
            raise InvalidArgumentError(
                f"{expects}. Received keys: {list(value)}"
                + (f" (unknown: {unknown})" if unknown else "")
                + (f" (missing: {missing})" if missing else "")
            )

    def per_output(self, value: Any, argument: str) -> list[Any]:
        """`value` given per output, as a list in the outputs' order or a dict keyed by output name, as a list."""
        if isinstance(value, Mapping):
            self._check_keys(
                value,
                [name for name in self.names if name not in value],
                f"{argument} expects one entry per output, keyed by the output names {self.names}",
            )
            return [value[name] for name in self.names]
        if isinstance(value, list | tuple):
            if len(value) != len(self.outputs):
                raise InvalidArgumentError(
                    f"{argument} expects one array per output ({len(self.outputs)}: {self.names}). Received: "
                    f"{len(value)}"
                )
            return list(value)
        raise InvalidTypeError(
            f"{argument} for a model of several outputs expects a list of arrays (one per output, in order) or a dict "
            f"{{output name: array}} ({self.names}). Received: {type(value).__name__}"
        )

    def unpack_outputs(self, packed: np.ndarray) -> list[np.ndarray]:
        """Each output's values, shaped as the output, from an engine's outputs array."""
        arrays, start = [], 0
        for spec in self.outputs:
            arrays.append(packed[:, start : start + spec.size].reshape(len(packed), *spec.shape))
            start += spec.size
        return arrays

    def unpack_labels(self, packed: np.ndarray) -> list[np.ndarray]:
        """Each output's labels as its loss takes them (int64 class indices, or float targets)."""
        arrays, start = [], 0
        for spec in self.outputs:
            columns = packed[:, start : start + spec.label_width]
            start += spec.label_width
            indices = columns.reshape(len(columns), *spec.shape[:-1]) if spec.loss.classification else None
            arrays.append(columns if indices is None else indices.astype(np.int64))
        return arrays

    def batch_sums(
        self, packed: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> dict[str, Sums]:
        """Sums over the batch's examples of each output's loss and metrics, keyed as Keras names them
        (`<output>_loss`, `<output>_accuracy`): divided by the example count, the losses' are the means. Each
        output's weighted metrics weigh its examples by its column of `sample_weight` ([batch, outputs])."""
        losses_start = packed.shape[1] - len(self.outputs)
        # Each row carries the mean loss of the rows its run saw (the batch's, or a split step's share's): the sum
        # down the column is the batch's loss sum either way.
        logged = {spec.name for spec in self._logged}
        sums: dict[str, Sums] = {
            f"{spec.name}_loss": float(np.sum(packed[:, losses_start + i], dtype=np.float64))
            for i, spec in enumerate(self.outputs)
            if spec.name in logged
        }
        if any(spec.figures for spec in self.outputs):
            unpacked = zip(self.outputs, self.unpack_outputs(packed), self.unpack_labels(labels), strict=True)
            for index, (spec, out, lab) in enumerate(unpacked):
                for metric in spec.metrics:
                    sums[f"{spec.name}_{metric.value}"] = metric.batch_sum(out, lab, spec.loss)
                column = None if sample_weight is None else sample_weight[:, index]
                for metric in spec.weighted_metrics:
                    sums[f"{spec.name}_{metric.value}"] = metric.batch_sum(out, lab, spec.loss, column)
        return sums

    def metric_keys(self) -> dict[str, Metric]:
        """The keys of `batch_sums` that are metrics (not losses), with their metric, in the logs' order."""
        keyed = {f"{spec.name}_{metric.value}": metric for spec in self.outputs for metric in spec.metrics} | {
            f"{spec.name}_{metric.value}": metric for spec in self.outputs for metric in spec.weighted_metrics
        }
        return dict(sorted(keyed.items())) if self.log_order else keyed

    def keys(self) -> list[str]:
        """The keys of `batch_sums`, in Keras 3's order: each output's loss, then each output's metrics and each
        output's weighted metrics (a dict of outputs: see `log_order`)."""
        return [f"{spec.name}_loss" for spec in self._logged] + list(self.metric_keys())

    def zeros(self) -> dict[str, Sums]:
        """The sums before the first batch, in the order of `keys` (evaluate's list follows it)."""
        sums: dict[str, Sums] = {f"{spec.name}_loss": 0.0 for spec in self._logged}
        shapes = {f"{spec.name}_{m.value}": spec.shape for spec in self.outputs for m in spec.figures}
        sums.update({key: metric.zeros(shapes[key]) for key, metric in self.metric_keys().items()})
        return sums

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "outputs": [spec.get_config() for spec in self.outputs]}
        if self.log_order:
            config["log_order"] = list(self.log_order)
        return config

    def ordered_as(self, names: Sequence[str]) -> OutputLosses:
        """These losses with their outputs in the order of `names`, the same names in any order (a save of a dict
        of outputs from before they were sorted); itself where they are in that order or are other names."""
        if list(names) == self.names or sorted(names) != sorted(self.names) or len(set(names)) != len(names):
            return self
        by_name = {spec.name: spec for spec in self.outputs}
        return dataclasses.replace(self, outputs=tuple(by_name[name] for name in names))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutputLosses:
        """The OutputLosses `get_config` describes. The outputs of a dict of outputs (whose config has a
        `log_order`) are read in sorted order, the model's (`Functional`): a save from before dict outputs were
        sorted listed them in the dict's."""
        specs = config.get("outputs")
        if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
            raise InvalidArgumentError(f"An output_losses config expects a list of outputs. Received: {specs!r}")
        built = cls(
            tuple(
                output_spec(
                    str(spec["name"]),
                    tuple(int(d) for d in spec["shape"]),
                    NO_LOSS if spec["loss"] is None else losses.get(spec["loss"]),
                    float(spec.get("weight", 1.0)),
                    spec.get("metrics", []),
                    spec.get("weighted_metrics", []),
                )
                for spec in specs
            ),
            tuple(str(name) for name in config.get("log_order", [])),
        )
        return built.ordered_as(sorted(built.names)) if built.log_order else built


def packed_width(shapes: Sequence[Shape]) -> int:
    """Columns of the outputs array of a model with outputs of `shapes` (see the module docstring)."""
    return sum(math.prod(shape) for shape in shapes) + len(shapes)


def pack_outputs(builder: GraphBuilder, outputs: Sequence[str], output_losses: Sequence[str]) -> str:
    """[batch, width]: each output flattened, then each output's loss repeated down its column."""
    flat = [builder.node("Flatten", [value], hint="flat", axis=1) for value in outputs]
    batch = builder.node("Shape", [flat[0]], hint="batch", start=0, end=1)
    one = builder.constant(np.array([1], np.int64), "one", np.int64)
    column_shape = builder.node("Concat", [batch, one], hint="column_shape", axis=0)
    square = builder.constant(np.array([1, 1], np.int64), "square", np.int64)
    columns = [
        builder.node("Expand", [builder.node("Reshape", [value, square]), column_shape], hint="loss_column")
        for value in output_losses
    ]
    return builder.node("Concat", [*flat, *columns], hint="outputs", axis=1)


def resolve(
    names: Sequence[str],
    shapes: Sequence[Shape],
    loss: Any,
    loss_weights: Any,
    metrics: Any,
    weighted_metrics: Any = None,
) -> OutputLosses:
    """compile's arguments for a model of several outputs as one OutputLosses (`_output_arguments.output_specs`
    says what each takes and refuses)."""
    return OutputLosses(output_specs(names, shapes, loss, loss_weights, metrics, weighted_metrics))
