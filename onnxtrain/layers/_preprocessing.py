"""Preprocessing layers in the graph: Rescaling (x * scale + offset) and Normalization ((x - mean) / std, with
mean and variance given or computed from data by `adapt`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, check_bool
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import same_layout

EPSILON = 1e-7  # Keras' backend.epsilon(): the smallest standard deviation Normalization divides by

ArrayLike = float | int | list[Any] | tuple[Any, ...] | np.ndarray


def _finite_array(owner: str, arg: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype == object or not np.all(np.isfinite(array)) or np.any(np.abs(array) > FLOAT32_MAX):
        raise InvalidArgumentError(
            f"{owner}({arg}=...) expects a finite number or an array of them. Received: {arg}={value!r}"
        )
    return array


def _config_value(array: np.ndarray) -> float | list[Any]:
    return float(array) if array.ndim == 0 else array.tolist()


class Rescaling(Layer):
    """x * scale + offset: e.g. `Rescaling(1 / 255)` for pixels, `Rescaling(1 / 127.5, offset=-1)` for [-1, 1].

    `scale` and `offset` are numbers, or arrays that broadcast against each example (one value per channel).
    """

    def __init__(self, scale: ArrayLike, offset: ArrayLike = 0.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.scale = _finite_array("Rescaling", "scale", scale)
        self.offset = _finite_array("Rescaling", "offset", offset)

    @property
    def accepts_channels_first(self) -> bool:
        return self.scale.ndim == 0 and self.offset.ndim == 0  # per-channel arrays broadcast channels last

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        try:
            shape = np.broadcast_shapes(input_shape, self.scale.shape, self.offset.shape)
        except ValueError:
            shape = None
        if shape != tuple(input_shape):
            raise ShapeError(
                f"{describe(self)} has scale of shape {self.scale.shape} and offset of shape "
                f"{self.offset.shape}, which do not broadcast against examples of shape {format_shape(input_shape)}"
            )
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        y = builder.node("Mul", [x, builder.constant(self.scale, "scale")])
        if np.any(self.offset != 0):
            y = builder.node("Add", [y, builder.constant(self.offset, "offset")])
        return same_layout(builder, x, y)

    def get_config(self) -> dict[str, Any]:
        return {"scale": _config_value(self.scale), "offset": _config_value(self.offset), **super().get_config()}


class Normalization(Layer):
    """(x - mean) / max(sqrt(variance), 1e-7), one mean and variance per position along `axis` (Keras' layer).

    Either give `mean` and `variance` (constants in the graph), or call `adapt(data)` before compiling: it computes
    them from the data in numpy and stores them as non-trainable weights (`normalization_1.mean`, `.variance`),
    which training never changes and which are saved and exported with the model.

    Args:
        axis: the axes, numbered as Keras does with the batch axis 0, that keep their own statistics (default -1:
            per feature or channel); None: one mean and variance for everything.
        mean / variance: the statistics, broadcast against the kept axes (aligned from the right); both or neither.
        invert: undo a normalization instead: mean + x * std.
    """

    def __init__(
        self,
        axis: int | tuple[int, ...] | list[int] | None = -1,
        mean: ArrayLike | None = None,
        variance: ArrayLike | None = None,
        invert: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        axes = () if axis is None else (axis,) if isinstance(axis, int | np.integer) else axis
        if not isinstance(axes, tuple | list) or not all(
            isinstance(a, int | np.integer) and not isinstance(a, bool) for a in axes
        ):
            raise InvalidArgumentError(
                f"Normalization(axis=...) expects an int, a tuple of ints or None. Received: axis={axis!r}"
            )
        self.axis: tuple[int, ...] = tuple(int(a) for a in axes)
        if (mean is None) != (variance is None):
            raise InvalidArgumentError(
                "Normalization expects both mean and variance, or neither (then call adapt(data)). "
                f"Received: mean={mean!r}, variance={variance!r}"
            )
        self.input_mean = None if mean is None else _finite_array("Normalization", "mean", mean)
        self.input_variance = None if variance is None else _finite_array("Normalization", "variance", variance)
        if self.input_mean is not None and self.input_variance is not None:
            if self.input_mean.shape != self.input_variance.shape or self.input_mean.ndim > len(self.axis):
                raise InvalidArgumentError(
                    "Normalization expects mean and variance of the same shape, of rank at most the number of axes "
                    f"({len(self.axis)}). Received: mean shape {self.input_mean.shape}, "
                    f"variance shape {self.input_variance.shape}"
                )
            if np.any(self.input_variance < 0):
                raise InvalidArgumentError(f"Normalization expects variance >= 0. Received: variance={variance!r}")
        self.invert = check_bool("Normalization", "invert", invert)
        self._adapted: tuple[np.ndarray, np.ndarray] | None = None  # adapt() before the layer is built

    # --- shapes ---------------------------------------------------------------------------------------------
    def _kept_axes(self, input_shape: Shape) -> tuple[int, ...]:
        """The kept axes of a batched input (1-based per-example positions), sorted."""
        rank = len(input_shape) + 1
        kept = sorted({a + rank if a < 0 else a for a in self.axis})
        if any(not 1 <= a < rank for a in kept):
            if rank == 1:
                raise ShapeError(
                    f"{describe(self)} with axis={self.axis} keeps a mean and variance per position along those axes "
                    "of each example, so its examples need an axis besides the batch axis 0. Received: input shape "
                    f"{format_shape(input_shape)}, one number per example. Use Normalization(axis=None) for one "
                    "mean and variance, or give the data a feature axis (x[:, None])."
                )
            raise ShapeError(
                f"{describe(self)} with axis={self.axis} expects axes of its input other than the batch axis 0: "
                f"in 1..{rank - 1} or -{rank - 1}..-1. Received: input shape {format_shape(input_shape)}"
            )
        return tuple(kept)

    def _statistics_shape(self, input_shape: Shape) -> Shape:
        """The shape of mean and variance as Keras stores them: the sizes of the kept axes."""
        return tuple(input_shape[a - 1] for a in self._kept_axes(input_shape))

    def _broadcast_shape(self, input_shape: Shape) -> Shape:
        """Mean and variance as the graph broadcasts them against a batch: 1 for the batch and every reduced axis."""
        kept = self._kept_axes(input_shape)
        return (1, *(d if i + 1 in kept else 1 for i, d in enumerate(input_shape)))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._kept_axes(input_shape)
        if self.input_mean is not None:
            self._given_statistics(input_shape)
        return input_shape

    def _given_statistics(self, input_shape: Shape) -> tuple[np.ndarray, np.ndarray]:
        """The given mean and variance, shaped to broadcast against a batch (Keras aligns them from the right)."""
        assert self.input_mean is not None and self.input_variance is not None
        kept, shape = self._kept_axes(input_shape), [1] * (len(input_shape) + 1)
        for i, size in enumerate(reversed(self.input_mean.shape)):
            shape[kept[-1 - i]] = size
        try:
            broadcast = self._broadcast_shape(input_shape)
            return tuple(np.broadcast_to(a.reshape(shape), broadcast) for a in (self.input_mean, self.input_variance))  # type: ignore[return-value]
        except ValueError as e:
            raise ShapeError(
                f"{describe(self)} has mean and variance of shape {self.input_mean.shape}, which "
                f"do not match the axes {self.axis} of input {format_shape(input_shape)}"
            ) from e

    # --- statistics -----------------------------------------------------------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        if self.input_mean is not None:
            return  # constants, not weights
        shape = self._statistics_shape(input_shape)
        # Read-only views that allocate nothing: add_weight checks the shape against a loaded model.onnx
        # (`initializers.weights_declared_by`) before it copies them, so a forged input size is never allocated.
        mean, variance = np.broadcast_to(np.float32(0), shape), np.broadcast_to(np.float32(1), shape)
        if self._adapted is not None:
            if self._adapted[0].shape != shape:
                raise ShapeError(
                    f"{describe(self)} was adapted to data whose axes {self.axis} have sizes "
                    f"{self._adapted[0].shape}; the model gives it input {format_shape(input_shape)}, sizes {shape}"
                )
            mean, variance = self._adapted
        self.add_weight("mean", mean, trainable=False)
        self.add_weight("variance", variance, trainable=False)

    def adapt(self, data: np.ndarray | Iterable[np.ndarray]) -> None:
        """Compute mean and variance from `data`: an array of examples (N, ...) or an iterable of such batches.

        As in Keras, the statistics apply at once wherever the layer is: before or after its model is compiled
        (a compiled model's engine, predict, fit, save and export get them; the optimizer state is kept).

        Raises:
            InvalidArgumentError: the layer was given mean and variance, or `data` is empty or not finite.
            ShapeError: the data's shape does not match the model's input of the layer.
        """
        if self.input_mean is not None:
            raise InvalidArgumentError(
                f"{describe(self)} was given mean and variance; adapt computes them. Create it "
                "without mean and variance to adapt it."
            )
        batches = [data] if isinstance(data, np.ndarray) else data
        count, mean, m2 = 0, None, None
        example_shape: Shape | None = None
        for batch in batches:
            values = np.asarray(batch, dtype=np.float64)
            if values.ndim < 1 or not np.all(np.isfinite(values)):
                raise InvalidArgumentError(
                    f"Normalization.adapt expects batches of finite numbers with a batch axis. Received: a batch of "
                    f"shape {values.shape}"
                )
            if example_shape is None:
                if values.ndim == 1 and self.axis:
                    raise ShapeError(
                        f"Normalization.adapt of {describe(self)} with axis={self.axis} expects examples with those "
                        f"axes: a batch of shape (N, ...) whose axes 1, 2, ... are the example's. Received: data of "
                        f"shape {values.shape}, one number per example. Use Normalization(axis=None) for one mean "
                        "and variance, or pass a column (x[:, None])."
                    )
                example_shape = values.shape[1:]
                reduced = tuple(a for a in range(values.ndim) if a not in self._kept_axes(example_shape))
            elif values.shape[1:] != example_shape:
                raise ShapeError(
                    f"Normalization.adapt expects batches of one example shape. Received: {example_shape}, then "
                    f"{values.shape[1:]}"
                )
            n = int(np.prod([values.shape[a] for a in reduced]))
            if n == 0:
                continue
            batch_mean, batch_m2 = values.mean(axis=reduced), values.var(axis=reduced) * n
            if mean is None or m2 is None:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            delta, total = batch_mean - mean, count + n  # Chan et al.'s pairwise update of mean and squared error
            mean, m2, count = mean + delta * n / total, m2 + batch_m2 + delta**2 * count * n / total, total
        if mean is None or m2 is None or example_shape is None:
            raise InvalidArgumentError("Normalization.adapt expects at least one example. Received: no data")
        statistics = (mean.astype(np.float32), (m2 / count).astype(np.float32))
        if not self.built:
            self._adapted = statistics
            return
        assert self.input_shape is not None
        if statistics[0].shape != self._statistics_shape(self.input_shape):
            raise ShapeError(
                f"{describe(self)} takes examples of shape {format_shape(self.input_shape)}. "
                f"Received: data of examples of shape {format_shape(example_shape)}"
            )
        self.add_weight("mean", statistics[0], trainable=False)
        self.add_weight("variance", statistics[1], trainable=False)
        model = self._model() if self._model is not None else None
        if model is not None:  # a compiled model's engine holds its own copy of the weights
            model.layer_params_changed(self)

    # --- weights before a model makes them ---------------------------------------------------------------------
    # As in Keras, get_weights() after adapt() gives [mean, variance] at once, and set_weights sets them, before the
    # layer is in a model (then build makes them weights). Keras' third weight, `count`, is always 0 in Keras 3
    # ("for backwards compatibility"): not kept.
    def _own_weights(self) -> Mapping[str, np.ndarray]:
        if self.params or self._adapted is None:
            return self.params
        return {"mean": self._adapted[0], "variance": self._adapted[1]}

    def _write_weights(self, arrays: dict[str, np.ndarray]) -> None:
        if self.params or self._adapted is None:
            super()._write_weights(arrays)
        else:
            self._adapted = (arrays["mean"], arrays["variance"])

    def _weights_made(self) -> bool:
        return bool(self.params) or self._adapted is not None

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Keras' `layer.set_weights([mean, variance])`; Keras' own list `[mean, variance, count]` too (its
        `get_weights()`), whose count is dropped.

        Raises:
            InvalidArgumentError: a third array that is not a count (a scalar whole number >= 0); see
                `Layer.set_weights` for the rest.
        """
        if isinstance(weights, list | tuple) and len(weights) == 3 and len(self._own_weights()) == 2:
            if not is_keras_count(weights[2]):
                raise InvalidArgumentError(
                    f"{self._weights_owner()}.set_weights expects [mean, variance], or Keras' [mean, variance, count] "
                    "whose count is a scalar whole number >= 0 (dropped: onnxtrain keeps no count). Received: "
                    f"a third array {describe_array(weights[2])}"
                )
            weights = list(weights[:2])
        super().set_weights(weights)

    # --- graph ----------------------------------------------------------------------------------------------
    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        if self.input_mean is not None:
            mean_value, variance_value = self._given_statistics(self.input_shape)
            mean = builder.constant(mean_value, "mean")
            std = builder.constant(np.maximum(np.sqrt(variance_value), EPSILON), "std")
        else:
            params = self.emit_params(builder)
            mean, variance = params["mean"], params["variance"]
            broadcast = self._broadcast_shape(self.input_shape)
            stored = self.params["mean"].shape
            if (1,) * (len(broadcast) - len(stored)) + stored != broadcast:  # kept axes not the last ones
                shape = builder.constant(np.array(broadcast, np.int64), "broadcast_shape", np.int64)
                mean, variance = (builder.node("Reshape", [v, shape]) for v in (mean, variance))
            std = builder.node("Max", [builder.node("Sqrt", [variance]), builder.constant(EPSILON, "epsilon")])
        if self.invert:
            return builder.node("Add", [mean, builder.node("Mul", [x, std])], hint="denormalized")
        return builder.node("Div", [builder.node("Sub", [x, mean]), std], hint="normalized")

    def get_config(self) -> dict[str, Any]:
        given = self.input_mean is not None and self.input_variance is not None
        return {
            "axis": list(self.axis),
            "mean": _config_value(self.input_mean) if given else None,  # type: ignore[arg-type]
            "variance": _config_value(self.input_variance) if given else None,  # type: ignore[arg-type]
            "invert": self.invert,
            **super().get_config(),
        }


def is_keras_count(value: object) -> bool:
    """Whether `value` is Keras' third Normalization weight, `count`: a scalar whole number >= 0 (0 in Keras 3)."""
    array = np.asarray(value) if isinstance(value, int | float | np.generic | np.ndarray) else None
    if array is None or array.shape != () or array.dtype.kind not in "iuf":
        return False
    number = float(array)
    return bool(np.isfinite(number)) and number >= 0 and number.is_integer()


def describe_array(value: object) -> str:
    array = np.asarray(value) if isinstance(value, int | float | np.generic | np.ndarray) else None
    if array is None:
        return f"of type {type(value).__name__}"
    return f"of shape {array.shape}, dtype {array.dtype}" + (f": {array.item()!r}" if array.size == 1 else "")


def without_keras_counts(
    named: Sequence[tuple[str, Layer, str]], weights: Mapping[str, Any] | Sequence[Any]
) -> Mapping[str, Any] | Sequence[Any]:
    """Keras' `model.get_weights()` list for the parameters `named` ((graph name, layer, local name), in order),
    without Keras' count after each adapted Normalization's variance; `weights` as it is unless it holds exactly one
    count there for each of them (then it is another list, which `set_weights` refuses as it stands)."""
    slots = [i for i, (_, layer, local) in enumerate(named) if isinstance(layer, Normalization) and local == "variance"]
    if not slots or not isinstance(weights, list | tuple) or len(weights) != len(named) + len(slots):
        return weights
    counts = {slot + k + 1 for k, slot in enumerate(slots)}  # their places in Keras' list
    if not all(is_keras_count(weights[i]) for i in counts):
        return weights
    return [value for i, value in enumerate(weights) if i not in counts]
