"""compile's per-output arguments of a model of several outputs (loss, loss_weights, metrics, weighted_metrics:
one for all outputs, a list, or a dict keyed by output name), checked and resolved into one `OutputSpec` each."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from onnxtrain import losses
from onnxtrain._output_spec import NO_LOSS, NoLoss, OutputSpec, Shape, as_list, output_spec
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.losses import Loss


def output_specs(
    names: Sequence[str],
    shapes: Sequence[Shape],
    loss: Any,
    loss_weights: Any,
    metrics: Any,
    weighted_metrics: Any = None,
) -> tuple[OutputSpec, ...]:
    """compile's arguments for a model of several outputs as one OutputSpec per output.

    Args:
        loss: one loss for every output, a list (one per output) or a dict keyed by output name. None in the list,
            or an output left out of the dict, gives that output no loss (`NoLoss`); at least one needs one.
        loss_weights: None (1 each), a list or a dict keyed by output name (missing names weigh 1, as in Keras).
        metrics: None; one metric or a flat list of them, for every output (that has a loss); a list of lists (one
            per output, None for none); or a dict keyed by output name (one metric or a list each).
        weighted_metrics: as `metrics`; each weighs an output's examples by that output's sample weights.

    Raises:
        InvalidArgumentError: a list of the wrong length, a dict key that names no output, no output with a loss,
            or metrics given for an output without one.
    """
    names = list(names)
    if isinstance(loss, list | tuple):
        per_loss = _listed(loss, names, "loss")
    elif isinstance(loss, Mapping) and "name" not in loss:
        per_loss = _keyed(loss, names, "loss", default=None)
    else:
        per_loss = [loss] * len(names)
    if all(each is None or isinstance(each, NoLoss) for each in per_loss):
        raise InvalidArgumentError(
            f"compile(loss=...) expects a loss for at least one output of {names}; an output without one (None in "
            f"a list, or left out of a dict) is only predicted. Received: loss={loss!r}"
        )
    if loss_weights is None:
        weights: list[Any] = [1.0] * len(names)
    elif isinstance(loss_weights, list | tuple):
        weights = _listed(loss_weights, names, "loss_weights")
    elif isinstance(loss_weights, Mapping):
        weights = _keyed(loss_weights, names, "loss_weights", default=1.0)
    else:
        raise InvalidTypeError(
            f"loss_weights expects a list (one per output) or a dict keyed by output name {names}. "
            f"Received: {loss_weights!r}"
        )
    for name, weight in zip(names, weights, strict=True):
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise InvalidArgumentError(
                f"loss_weights expects non-negative finite numbers. Received: {weight!r} for output {name!r}"
            )
    owns = [NO_LOSS if each is None else losses.get(each) for each in per_loss]
    per_metrics = _without_loss_metrics(metrics, names, owns, "metrics")
    per_weighted = _without_loss_metrics(weighted_metrics, names, owns, "weighted_metrics")
    return tuple(
        output_spec(name, tuple(shape), own, float(weight), each_metrics, each_weighted)
        for name, shape, own, weight, each_metrics, each_weighted in zip(
            names, shapes, owns, weights, per_metrics, per_weighted, strict=True
        )
    )


def _without_loss_metrics(metrics: Any, names: list[str], owns: list[Loss], argument: str) -> list[Any]:
    """Each output's metrics (`_per_output_metrics`), none for an output without a loss: metrics given for every
    output skip it, and metrics given for it by name or position are refused, as it takes no labels."""
    per_output = _per_output_metrics(metrics, names, argument)
    for_each = not _given_per_output(metrics)
    result = []
    for name, own, each in zip(names, owns, per_output, strict=True):
        if isinstance(own, NoLoss):
            if as_list(each) and not for_each:
                raise InvalidArgumentError(
                    f"{argument} for output {name!r}, which has no loss: it takes no targets, so no metric can "
                    f"compare it with them. Give it a loss, or leave its {argument} out. Received: {each!r}"
                )
            each = []
        result.append(each)
    return result


def _per_output_metrics(metrics: Any, names: list[str], argument: str) -> list[Any]:
    if metrics is None:
        return [[]] * len(names)
    if isinstance(metrics, Mapping) and "class_name" not in metrics:
        return _keyed(metrics, names, argument, default=[])
    if _given_per_output(metrics):
        return _listed(metrics, names, argument)
    return [metrics] * len(names)


def _given_per_output(metrics: Any) -> bool:
    """Whether compile's metrics are given per output (a dict by name, or a list of lists), not for every output."""
    if isinstance(metrics, Mapping):
        return "class_name" not in metrics
    return isinstance(metrics, list | tuple) and any(isinstance(m, list | tuple | type(None)) for m in metrics)


def _listed(values: Sequence[Any], names: list[str], argument: str) -> list[Any]:
    if len(values) != len(names):
        raise InvalidArgumentError(
            f"{argument} given as a list expects one entry per output: {len(names)} ({names}). Received: a list of "
            f"{len(values)}"
        )
    return list(values)


def _keyed(values: Mapping[str, Any], names: list[str], argument: str, default: Any) -> list[Any]:
    unknown = [key for key in values if key not in names]
    if unknown:
        raise InvalidArgumentError(
            f"{argument} given as a dict expects output names as keys: {names}. Received unknown key(s): {unknown}"
        )
    return [values.get(name, default) for name in names]
