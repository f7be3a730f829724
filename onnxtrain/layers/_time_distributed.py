"""Keras 3's TimeDistributed wrapper: one layer applied to every time step of an (N, T, ...) input, run once on the
(N * T, ...) slices with one set of weights shared over time, which the wrapper shows under the wrapped layer's
name (`time_distributed_1.dense.kernel`)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnx

from onnxtrain._layer_names import to_snake_case
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._assignments import hold
from onnxtrain.layers._core import Input
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import channels_last

_EXPECTED = "a layer instance (onnxtrain.layers) or a model of one input and one output, e.g. TimeDistributed(Dense(8))"


class TimeDistributed(Layer):
    """Applies `layer` to every time step of its input: (N, T, *step) -> (N, T, *layer's output for step): Keras 3's
    TimeDistributed, e.g. `TimeDistributed(Conv2D(8, 3))` on video frames (N, T, H, W, C).

    The time steps are folded into the batch, (N * T, *step), the layer runs once on them, and the result is
    unfolded again, so every step uses the same weights. The wrapper holds `layer` itself (`td.layer`; a model's
    graph for a model) and shows its weights under its name: `time_distributed_1.dense.kernel` for a Dense named
    "dense" (an unnamed layer is named after its class, as Keras names it), `time_distributed_1.encoder.dense_1.kernel`
    for the layers of a model named "encoder". They are the wrapped layer's arrays, not copies: training the
    wrapper trains the wrapped layer (a nested model's layers too).

    Layers that see the batch as a whole see N * T rows: BatchNormalization's training statistics are over every
    example's every time step (Keras 3 computes them per step, see docs/layers.md); Dropout draws a mask per
    (example, time step) row, numbered n * T + t, so a split or distributed step draws what an unsplit one does.

    Args:
        layer: the layer to apply, not yet built nor part of a model; or a Model/Sequential (or its Functional
            graph) of one input and one output, whose input shape is the per-step shape.

    Raises:
        InvalidTypeError: `layer` is not a layer or a model (a class, a string, an Input, ...).
        InvalidArgumentError: `layer` is built already (called, or part of a model).
        UnsupportedError: `layer` takes several inputs (a merge) or gives several outputs (a model).
        ShapeError (when called): an input without a time axis, or a step shape `layer` cannot take.
    """

    reads_integers = True  # an integer model input reaches a wrapped Embedding as integers; others get float32
    # Keras 3's: a mask of the steps passes on to the output. The wrapped layer sees none (Keras gives each step's
    # to a wrapped layer that reads masks).
    supports_masking = True

    def __init__(self, layer: Layer, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._layer = _wrapped(layer)
        # The wrapped layer's weights are the wrapper's: a view of them (see _WrappedWeights), not a copy.
        self.params = _WrappedWeights(self)  # type: ignore[assignment]
        if not trainable:
            self._layer.trainable = False  # as Keras: a frozen wrapper freezes what it wraps
        hold(self, self._layer)

    def wrapped_setting_refusal(self, layer: Layer, attribute: str, value: object) -> str | None:
        """The wrapped layer's settings are assigned as any layer's (a built one refuses other shapes; after
        compile, `settings_assigned` tells the model), but its name, which keys the wrapper's weights, is fixed once
        the wrapper is built (`_assignments.hold`)."""
        if attribute != "name" or not self.built or value == layer.name:
            return None
        return (
            f"it is the layer of {describe(self)}, which is built and keys its weights by the layer's name "
            f"({self.name}.{layer.name}.<weight>), so it cannot be renamed. Name the layer when creating it, before "
            "wrapping it."
        )

    def settings_assigned(self) -> list[str]:
        """The wrapper's, then those of the wrapped layer as `layer.<setting>`: a compiled model tells by them that
        the wrapped layer no longer computes what it compiled (`td.layer.activation = "relu"`)."""
        return [*super().settings_assigned(), *(f"layer.{a}" for a in self._layer.settings_assigned())]

    @property
    def layer(self) -> Layer:
        """The wrapped layer (a model's Functional graph, for a model)."""
        return self._layer

    @layer.setter
    def layer(self, value: object) -> None:
        raise UnsupportedError(
            f"{describe(self)} holds its layer for good: its weights and shapes are that layer's. Make a new "
            f"TimeDistributed(...) instead. Received: layer={value!r:.120}"
        )

    def emitting(self, stand_in: Layer) -> TimeDistributed:
        """A copy of the wrapper that emits `stand_in` in place of its layer: a copy of that layer sharing its name
        and weights, such as the wrapped Dense without its activation that `emit.graph_layers` emits under a loss
        on logits. The copy's weights are the wrapper's own arrays; the wrapper is not changed."""
        copied = copy.copy(self)
        copied.__dict__["_layer"] = stand_in
        return copied

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Set on the wrapped layer too, as Keras does (`Layer.__init__` sets it before there is one)."""
        self._trainable = value
        inner = self.__dict__.get("_layer")
        if inner is not None:
            inner.trainable = value

    @property
    def non_trainable(self) -> set[str]:
        """The wrapped layer's weights no optimizer updates, under the wrapper's names: its non-trainable ones
        (BatchNormalization's statistics), and all of those of a frozen wrapped layer or a frozen layer of a model."""
        inner, prefix = self._layer, f"{self._layer.name}."
        graph = _graph(inner)
        if graph is not None:
            frozen = set(graph.params_by_name()) - set(graph.trainable_params_by_name())
        else:
            frozen = {local for local in inner.params if not inner.trainable or local in inner.non_trainable}
        return {prefix + local for local in frozen}

    @non_trainable.setter
    def non_trainable(self, value: set[str]) -> None:
        """`Layer.__init__` sets an empty set; the wrapped layer decides (see the getter)."""

    # --- shapes and weights ---------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 2:
            raise ShapeError(
                f"{describe(self)} expects input of shape [None, timesteps, ...]: rank 3 or more with the batch, "
                f"the layer applied to each time step. Received: input shape {format_shape(input_shape)}"
            )
        inner, step = self._layer, tuple(input_shape[1:])
        try:
            output = inner.compute_output_shape(step)
        except ShapeError as e:
            raise ShapeError(
                f"{describe(self)} applies {describe(inner)} to each time step, of shape {format_shape(step)}: {e}"
            ) from e
        if _graph(inner) is None:  # as a call would, so the layer emits for these shapes
            inner.input_shape, inner.output_shape = step, output
        return (input_shape[0], *output)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        """Draw the wrapped layer's weights for one time step (a model has its own already)."""
        if _graph(self._layer) is None:
            self._layer.build(tuple(input_shape[1:]), rng)

    # --- graph ----------------------------------------------------------------------------------------------
    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None and self.output_shape is not None and self.name, "layers must be built"
        inner = self._layer
        steps, step_shape, step_output = self.input_shape[0], self.input_shape[1:], self.output_shape[1:]
        integers = builder.input_type(x) not in (None, onnx.TensorProto.FLOAT)
        graph = _graph(inner)
        if integers and not (inner.reads_integers and graph is None):
            x = builder.node("Cast", [x], hint="float", to=onnx.TensorProto.FLOAT)
        slices = builder.node("Reshape", [x, _ints(builder, [-1, *step_shape], "steps_shape")], hint="steps")
        with _rows_per_step(builder, steps), builder.scope(str(inner.name)):
            if graph is not None:
                y = graph.emit(builder, [slices])[0]
            else:
                y = _keyed_copy(inner, f"{self.name}.{inner.name}").emit(builder, slices)
        y = channels_last(builder, y, len(step_output) + 1)
        return builder.node("Reshape", [y, _ints(builder, [-1, steps, *step_output], "shape")], hint="time_distributed")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": self._layer.serialize()}

    @classmethod
    def from_layer_config(cls, config: dict[str, Any]) -> Layer:
        """The layer `config` describes, its `layer` rebuilt from the nested config (a model's weights are drawn
        again from its seed)."""
        config = dict(config)
        if isinstance(config.get("layer"), dict):
            config["layer"] = Layer.from_config(config["layer"])
        return cls(**config)


class _WrappedWeights(MutableMapping[str, np.ndarray]):
    """The wrapped layer's weights as the wrapper's `params`, under `<its name>.` (`dense.kernel`): a view that
    reads and writes the wrapped layer's (a model's layers') own arrays, so `set_weights`, training and the wrapped
    layer share one array per weight."""

    def __init__(self, wrapper: TimeDistributed):
        self._wrapper = wrapper

    def _own(self) -> dict[str, np.ndarray]:
        inner = self._wrapper.layer
        graph = _graph(inner)
        return inner.params if graph is None else graph.params_by_name()

    def _local(self, key: str) -> str:
        local = key.removeprefix(f"{self._wrapper.layer.name}.")
        if local == key or local not in self._own():
            raise KeyError(key)
        return local

    def __getitem__(self, key: str) -> np.ndarray:
        return self._own()[self._local(key)]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        inner, local = self._wrapper.layer, self._local(key)
        graph = _graph(inner)
        if graph is not None:
            graph.set_params_by_name({local: value})
        else:
            inner.params[local] = value

    def __delitem__(self, key: str) -> None:
        raise UnsupportedError(f"{describe(self._wrapper)} shows its layer's weights; it cannot remove {key!r}.")

    def __iter__(self) -> Iterator[str]:
        prefix = f"{self._wrapper.layer.name}."
        return iter([prefix + local for local in self._own()])

    def __len__(self) -> int:
        return len(self._own())


@runtime_checkable
class _Graph(Protocol):
    """What the wrapper reads of a model's graph, `onnxtrain.functional.Functional` (which imports this package, so
    it is known by what it has): its layers' weights by their names in it, and an emit of lists of values."""

    name: str | None
    output_shape: Shape | None

    def params_by_name(self) -> dict[str, np.ndarray]: ...

    def trainable_params_by_name(self) -> dict[str, np.ndarray]: ...

    def set_params_by_name(self, weights: dict[str, np.ndarray]) -> None: ...

    def emit(self, builder: GraphBuilder, input_values: list[str]) -> list[str]: ...


def _graph(layer: object) -> _Graph | None:
    """`layer` if it is a model's graph (a Functional), whose weights are its layers'; else None."""
    return layer if isinstance(layer, Layer) and isinstance(layer, _Graph) else None


def _wrapped(layer: object) -> Layer:
    """`layer` (a model: its graph), if TimeDistributed can wrap it; an unnamed layer is named after its class."""
    model_graph = getattr(layer, "graph", None)
    if not isinstance(layer, Layer) and isinstance(model_graph, Layer) and _graph(model_graph) is not None:
        # a Model or Sequential (which import this package): its graph, named as the model (a Sequential's has none)
        if model_graph.name is None:
            model_graph.name = getattr(layer, "name", None) or "sequential"
        layer = model_graph
    if not isinstance(layer, Layer) or isinstance(layer, Input):
        shown = f"the class {layer.__name__} (make an instance)" if isinstance(layer, type) else repr(layer)
        raise InvalidTypeError(f"TimeDistributed(layer=...) expects {_EXPECTED}. Received: layer={shown[:120]}")
    if layer.multi_input:
        raise UnsupportedError(
            "TimeDistributed(layer=...) applies a layer of one input to each time step. Received: "
            f"layer={describe(layer)}, which takes several inputs"
        )
    if _graph(layer) is not None:
        if layer.output_shape is None:
            raise UnsupportedError(
                "TimeDistributed(layer=...) applies a model of one output to each time step. Received: "
                f"layer={describe(layer)}, with several outputs"
            )
        return layer
    if layer.built or layer.model_name is not None:
        raise InvalidArgumentError(
            "TimeDistributed(layer=...) expects a new layer: the wrapper decides its shapes (one time step) and "
            f"holds its weights. Received: layer={describe(layer)}, built for input "
            f"{format_shape(layer.input_shape or ())}{f' in model {layer.model_name!r}' if layer.model_name else ''}. "
            "Pass a new layer, e.g. from type(layer).from_layer_config(layer.get_config())."
        )
    if layer.name is None:
        layer.name = to_snake_case(type(layer).__name__)
    return layer


def _keyed_copy(layer: Layer, name: str) -> Layer:
    """A shallow copy of `layer` (its weights the same dict) named `name`, the wrapper's own path to it: what
    Dropout and the noise layers key their draws by, so two wrappers of unnamed Dropouts draw different masks.
    A dotted name, which the name checks refuse for a layer of a model, is set past them."""
    keyed = copy.copy(layer)
    keyed.__dict__["name"] = name
    return keyed


@contextmanager
def _rows_per_step(builder: GraphBuilder, steps: int) -> Iterator[None]:
    """Inside, `builder.first_row()` (where a share of the batch starts, from which Dropout numbers its rows) counts
    rows of time steps: a share starting at example n starts at row n * steps. GraphBuilder has no hook for this,
    so the instance's method is shadowed for the block (nested wrappers stack) and restored after."""
    own = builder.__dict__.get("first_row")
    outer = builder.first_row

    def first_row() -> str | None:
        first = outer()
        if first is None:
            return None
        factor = _ints(builder, steps, "steps")
        return builder.shared(f"first_row_per_step:{first}:{steps}", lambda: builder.node("Mul", [first, factor]))

    builder.first_row = first_row  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del builder.first_row
        else:
            builder.first_row = own  # type: ignore[method-assign]


def _ints(builder: GraphBuilder, values: list[int] | int, hint: str) -> str:
    return builder.constant(np.array(values, np.int64), hint, np.int64)
