"""Discretization: Keras' layer that buckets numbers by bin boundaries, given or learned by `adapt` from
approximate quantiles (Keras 3's own numpy summaries, ported as they are so the boundaries match)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._category_encoding import check_output_mode, encode, encoded_shape
from onnxtrain.layers._layer import Layer, Shape, describe


class Discretization(Layer):
    """x -> the index of its bin: i where bin_boundaries[i - 1] <= x < bin_boundaries[i] (numpy's digitize, as
    Keras), then encoded as `output_mode` says ("int": float32 indices; "one_hot", "multi_hot", "count": as
    CategoryEncoding, into len(bin_boundaries) + 1 values).

    Args:
        bin_boundaries: increasing numbers; or None with `num_bins`, then `adapt(data)` learns num_bins - 1 of them
            from quantiles of the data (Keras' approximation, `epsilon` its precision).
    """

    def __init__(
        self,
        bin_boundaries: Iterable[float] | None = None,
        num_bins: int | None = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = "Discretization"
        if (num_bins is None) == (bin_boundaries is None):
            raise InvalidArgumentError(
                f"{owner} expects either bin_boundaries or num_bins. Received: bin_boundaries={bin_boundaries!r}, "
                f"num_bins={num_bins!r}"
            )
        if num_bins is not None and (not isinstance(num_bins, int) or isinstance(num_bins, bool) or num_bins < 1):
            raise InvalidArgumentError(f"{owner}(num_bins=...) expects an int >= 1. Received: num_bins={num_bins!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, float | int) or not 0 < epsilon < 1:
            raise InvalidArgumentError(f"{owner}(epsilon=...) expects a number in (0, 1). Received: {epsilon!r}")
        if sparse is not False:
            raise UnsupportedError(f"{owner}(sparse=...) takes False only (dense). Received: sparse={sparse!r}")
        self.num_bins, self.epsilon, self.sparse = num_bins, float(epsilon), False
        self.output_mode = check_output_mode(owner, output_mode)
        self._boundaries = None if bin_boundaries is None else _boundaries(bin_boundaries)

    @classmethod
    def from_layer_config(cls, config: dict[str, Any]) -> Layer:
        """As Keras: a config of an adapted layer holds num_bins and the boundaries it learned."""
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            layer = cls(**{**config, "bin_boundaries": None})
            assert isinstance(layer, Discretization)
            layer._boundaries = _boundaries(config["bin_boundaries"])
            return layer
        return cls(**config)

    @property
    def bin_boundaries(self) -> list[float] | None:
        """The boundaries, given or learned (float32 values); None before adapt."""
        return None if self._boundaries is None else self._boundaries.tolist()

    @bin_boundaries.setter
    def bin_boundaries(self, value: Iterable[float] | None) -> None:
        self._boundaries = None if value is None else _boundaries(value)

    def adapt(self, data: np.ndarray | Iterable[Any]) -> None:
        """Learn num_bins - 1 boundaries from quantiles of `data` (an array, or batches: a list, an iterable), as
        Keras (its approximation, batch by batch).

        Raises:
            InvalidArgumentError: NaN or infinite values, no values, a layer given bin_boundaries.
            InvalidTypeError: strings or other non-numbers.
            ModelStateError: the layer is in a model already (its boundaries are constants of the model's graphs).
        """
        if self.num_bins is None:
            raise InvalidArgumentError(f"{describe(self)} was given bin_boundaries; create it with num_bins to adapt")
        if self.model_name is not None:
            raise ModelStateError(f"{describe(self)} belongs to model {self.model_name!r}: adapt before making it")
        summary = np.array([[], []], dtype="float32")
        for batch in [data] if isinstance(data, np.ndarray) else data:  # as Keras: a list is a list of batches
            array = np.asarray(batch)
            if array.dtype.kind not in "fiu":
                raise InvalidTypeError(f"{describe(self)}.adapt expects numbers. Received: dtype {array.dtype}")
            if not np.all(np.isfinite(array)):
                raise InvalidArgumentError(f"{describe(self)}.adapt expects finite numbers. Received: NaN or inf")
            summary = _merge_summaries(_summarize(array.astype("float32"), self.epsilon), summary, self.epsilon)
        if summary.shape[1] == 0:
            raise InvalidArgumentError(f"{describe(self)}.adapt expects at least one value. Received: none")
        boundaries = _boundaries(_compress_summary(summary, 1.0 / self.num_bins)[0, :-1])
        if self.output_shape is not None and self.output_mode != "int" and len(boundaries) + 1 != self._depth():
            raise ShapeError(f"{describe(self)} was called with {self._depth()} bins: adapt before calling it")
        self._boundaries = boundaries

    def _depth(self) -> int:
        if self._boundaries is None:
            assert self.num_bins is not None
            return self.num_bins
        return len(self._boundaries) + 1

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return encoded_shape(self, input_shape, self._depth(), self.output_mode)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        if self._boundaries is None:
            raise ModelStateError(f"{describe(self)} has no bin boundaries: call adapt(data) before using it")
        boundaries = builder.constant(self._boundaries, "bin_boundaries")
        unsqueezed = builder.node("Unsqueeze", [x, builder.ints([-1], "new_axis")], hint="values")
        below = builder.node("Cast", [builder.node("Less", [unsqueezed, boundaries])], to=TensorProto.INT64)
        bins = builder.constant(np.array(len(self._boundaries), np.int64), "boundary_count", np.int64)
        indices = builder.node("Sub", [bins, builder.reduce("ReduceSum", below, [-1], False)], hint="bins")
        return encode(builder, indices, self._depth(), self.output_mode, self.input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": False,
            **super().get_config(),
        }


def _boundaries(value: object) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.array([np.nan])
    if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(np.diff(array) < 0):
        raise InvalidArgumentError(
            f"Discretization(bin_boundaries=...) expects a list of finite, increasing numbers. Received: {value!r}"
        )
    return array.astype(np.float32)


# Keras 3's (keras/src/layers/preprocessing/discretization.py), unchanged but for names: the boundaries match.
def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    values = np.sort(np.reshape(values, [-1]))
    step = max(np.size(values) / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1) :: int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _merge_summaries(prev_summary: np.ndarray, next_summary: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate((prev_summary, next_summary), axis=1)
    merged = np.take(merged, np.argsort(merged[0]), axis=1)
    return _compress_summary(merged, epsilon)


def _compress_summary(summary: np.ndarray, epsilon: float) -> np.ndarray:
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_weight_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_weight_percents, summary[0])
    cum_weights = np.interp(percents, cum_weight_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")
