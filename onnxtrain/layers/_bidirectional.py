"""Keras 3's Bidirectional wrapper of a recurrent layer (LSTM, GRU, SimpleRNN): a forward and a backward copy with
weights of their own, run as one ONNX node with direction="bidirectional" when the two share their settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxtrain._layer_names import to_snake_case
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._assignments import hold
from onnxtrain.layers._layer import Layer, Mask, Shape, describe, format_shape
from onnxtrain.layers._masked_recurrence import Compaction, compact
from onnxtrain.layers._recurrent_base import ZERO_OUTPUT_FOR_MASK, _Recurrent, built_features, reversed_time

MERGE_MODES = ("concat", "sum", "mul", "ave")
_WRAPPED = "an LSTM, GRU or SimpleRNN instance (onnxtrain.layers), e.g. Bidirectional(LSTM(32))"


class Bidirectional(Layer):
    """Runs a recurrent layer over the sequence in both directions and merges the two outputs: Keras 3's
    Bidirectional, e.g. `Bidirectional(LSTM(32, return_sequences=True))`.

    The forward layer is a copy of `layer` named `forward_<its name>`, the backward one a copy with
    `go_backwards=True` named `backward_<its name>` (or `backward_layer`, copied), each with weights of its own,
    stored as the wrapped layer stores them under its name (`bidirectional_1.forward_lstm.kernel`, ...). Where both
    are of one class with the same units, bias, activations (and GRU's reset_after), they run as one ONNX node with
    direction="bidirectional" (their weights concatenated on ONNX's num_directions axis); otherwise as two nodes.
    The backward outputs are put back in time order before merging, as Keras does.

    Args:
        layer: an LSTM, GRU or SimpleRNN; its `return_sequences` decides the output: (timesteps, merged) or (merged,).
        merge_mode: how the two outputs combine: "concat" (default; units of both side by side), "sum", "mul" or
            "ave". Keras' None (two outputs) is refused: a layer here has one output.
        weights: Keras' initial weights, None only (set them on the model: `model.set_weights`).
        backward_layer: the layer for the backward direction, instead of a copy of `layer`: as Keras checks it, its
            go_backwards must differ from `layer`'s and its return_sequences equal it.

    Raises:
        InvalidTypeError: `layer` or `backward_layer` is not a recurrent layer instance.
        InvalidArgumentError: an unknown merge_mode, or a backward_layer that does not pair with `layer`.
        UnsupportedError: merge_mode=None, weights, or a wrapped layer with trainable=False (freeze the wrapper).
    """

    reads_mask = True  # the steps' mask, as Keras reads it: `emit_masked`

    def __init__(
        self,
        layer: Layer,
        merge_mode: str | None = "concat",
        weights: list[np.ndarray] | None = None,
        backward_layer: Layer | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        layer = _wrapped("layer", layer)
        backward_layer = None if backward_layer is None else _wrapped("backward_layer", backward_layer)
        self.merge_mode = _merge_mode(merge_mode)
        if weights is not None:
            raise UnsupportedError(
                "Bidirectional(weights=...) supports only weights=None: set the weights on the model instead "
                f"(model.set_weights; docs/layers.md maps Keras'). Received: weights of type {type(weights).__name__}"
            )
        base = layer.name or to_snake_case(type(layer).__name__)
        self.forward_layer = _copy(layer, name=f"forward_{base.removeprefix('forward_')}")
        if backward_layer is None:
            backward = _copy(layer, name=f"backward_{base.removeprefix('backward_')}", go_backwards=True)
        else:
            own = backward_layer.name or f"backward_{to_snake_case(type(backward_layer).__name__)}"
            backward = _copy(backward_layer, name=own)
        self.backward_layer = backward
        _check_pair(self.forward_layer, self.backward_layer, self.merge_mode)
        hold(self, self.forward_layer)
        hold(self, self.backward_layer)

    def wrapped_setting_refusal(self, layer: Layer, attribute: str, value: object) -> str:
        """Every setting of the two directions is refused: they are the wrapper's copies, checked as a pair, and
        its config, weights and graph are made from them (`_assignments.hold`)."""
        role = "forward_layer" if layer is self.forward_layer else "backward_layer"
        return (
            f"it is the {role} of {describe(self)}, a copy that the wrapper made, checked against the other "
            "direction, and holds (its config, weights and graph come from it), so its settings are fixed. Make a "
            "new Bidirectional of a layer with that setting instead, e.g. "
            f"Bidirectional({type(layer).__name__}(..., {attribute}={value!r:.40}))."
        )

    @property
    def return_sequences(self) -> bool:
        """The wrapped layer's (and so both directions'): whether the output has a time axis."""
        return self.forward_layer.return_sequences

    # --- shapes and weights ---------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise ShapeError(
                f"{describe(self)} expects input of shape [None, timesteps, features]. "
                f"Received: input shape {format_shape(input_shape)}"
            )
        forward = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode != "concat":
            return forward
        backward = self.backward_layer.compute_output_shape(input_shape)
        return (*forward[:-1], forward[-1] + backward[-1])

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        """Draw the forward layer's weights, then the backward one's (Keras' order), kept here under their names."""
        for direction in (self.forward_layer, self.backward_layer):
            direction.build(input_shape, rng)
            for local, value in direction.params.items():
                self.add_weight(f"{direction.name}.{local}", value)
            direction.params.clear()  # the wrapper holds them: one copy, which set_weights and training update

    def from_keras_weights(self, keras_weights: Sequence[Any]) -> list[np.ndarray]:
        """Keras' weights of the same Bidirectional (`keras_layer.get_weights()`: the forward layer's, then the
        backward one's) as this layer's, in its `get_weights()` order: each direction's converted as the wrapped
        layer's `from_keras_weights` converts them (ONNX's layout and gate order).

        Example:
            >>> bi = model.get_layer("bidirectional_1")
            >>> bi.set_weights(bi.from_keras_weights(keras_model.get_layer("bidirectional").get_weights()))

        Raises:
            InvalidArgumentError: the layer has no weights yet, or the arrays are not Keras' of its shapes.
        """
        owner = f"Bidirectional layer {self.name!r}.from_keras_weights"
        forward, backward = self.forward_layer, self.backward_layer
        features = built_features(self, f"{forward.name}.kernel", owner)
        if not isinstance(keras_weights, list | tuple):
            raise InvalidArgumentError(
                f"{owner} expects a list of Keras' arrays. Received: {type(keras_weights).__name__}"
            )
        split = len(forward.keras_weight_shapes(features))
        return forward.keras_to_onnx(keras_weights[:split], features, f"{owner} (forward)") + backward.keras_to_onnx(
            keras_weights[split:], features, f"{owner} (backward)"
        )

    def to_keras_weights(self) -> list[np.ndarray]:
        """This layer's weights as Keras' same Bidirectional holds them: the forward layer's, then the backward
        one's, each in Keras' layout and gate order (`from_keras_weights` undone)."""
        weights = self.current_weights()
        return [
            value
            for direction in (self.forward_layer, self.backward_layer)
            for value in direction.onnx_to_keras(
                {name.partition(".")[2]: w for name, w in weights.items() if name.startswith(f"{direction.name}.")}
            )
        ]

    def fused(self) -> bool:
        """Whether the two directions run as one ONNX node (direction="bidirectional"): one class, the same node
        settings, and the forward layer reading the sequence forwards."""
        forward, backward = self.forward_layer, self.backward_layer
        return (
            type(forward) is type(backward)
            and not forward.go_backwards
            and (forward.units, forward.use_bias, forward.onnx_activations(), forward.op_attributes())
            == (backward.units, backward.use_bias, backward.onnx_activations(), backward.op_attributes())
        )

    # --- graph ----------------------------------------------------------------------------------------------
    def emit(self, builder: GraphBuilder, x: str) -> str:
        return self._emit(builder, x, None)

    def emit_masked(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> str:
        """Keras' masked recurrence in both directions (`_masked_recurrence.py`); with return_sequences, a masked
        step's outputs are zeros (Keras' Bidirectional sets zero_output_for_mask then)."""
        assert isinstance(mask, str)
        return self._emit(builder, x, mask)

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        """Keras': the input's mask with return_sequences, none without."""
        return mask if self.return_sequences and isinstance(mask, str) else None

    def _emit(self, builder: GraphBuilder, x: str, mask: str | None) -> str:
        names = self.emit_params(builder)
        directions = (self.forward_layer, self.backward_layer)
        if self.trainable:  # Keras leaves out a frozen layer's penalties
            for direction in directions:
                direction.add_penalties(builder, names, prefix=f"{direction.name}.")
        steps = builder.node("Transpose", [x], hint="time_major", perm=[1, 0, 2])  # ONNX's layout 0
        compaction = None
        if mask is not None:
            assert self.input_shape is not None
            compaction = compact(builder, steps, mask, self.input_shape[0])
            steps = compaction.steps
        lengths = compaction.lengths if compaction else ""
        if self.fused():
            y, y_h = self._node(builder, steps, directions, names, "bidirectional", lengths)
            if self.merge_mode == "concat" and compaction is None:  # [T, 2, B, U] -> [B, T, 2U]; [2, B, U] -> [B, 2U]
                perm, shape = ([2, 0, 1, 3], [0, 0, -1]) if self.return_sequences else ([1, 0, 2], [0, -1])
                stacked = builder.node("Transpose", [y if self.return_sequences else y_h], hint="stacked", perm=perm)
                return builder.node("Reshape", [stacked, builder.ints(shape, "shape")], hint="concatenated")
            axis = 1 if self.return_sequences else 0  # the num_directions axis
            parts = builder.multi_output_node(
                "Split", [y if self.return_sequences else y_h, builder.ints([1, 1], "split")], 2, "part", axis=axis
            )
            pairs = list(zip(parts, directions, strict=True))
        else:
            pairs = []
            for direction in directions:
                y, y_h = self._node(builder, steps, [direction], names, direction.onnx_direction(), lengths)
                pairs.append((y if self.return_sequences else y_h, direction))
        outputs = [
            self._placed(builder, output, compaction, direction.go_backwards)
            if compaction
            else self._batch_major(builder, output)
            for output, direction in pairs
        ]
        merged = _merge(builder, self.merge_mode, outputs[0], outputs[1])
        if self.return_sequences and self.forward_layer.go_backwards:
            # Keras returns the forward layer's outputs as it computed them, last step first, and flips the
            # backward layer's (then in time order too): both come last step first. ONNX gives time order.
            merged = reversed_time(builder, merged, 1, "reversed")
        return merged

    def _node(
        self,
        builder: GraphBuilder,
        steps: str,
        directions: Sequence[_Recurrent],
        names: dict[str, str],
        direction: str,
        lengths: str = "",
    ) -> list[str]:
        """One ONNX node for `directions` (one layer, or the forward and backward ones): its Y and Y_h, their
        weights stacked on ONNX's num_directions axis; `lengths`: its sequence_lens (a masked call)."""
        per_direction = [layer.onnx_inputs(builder, names, prefix=f"{layer.name}.") for layer in directions]
        weights = zip(*per_direction, strict=True)  # each direction's W, then R, then B (with use_bias)
        hints = ("kernel", "recurrent_kernel", "bias")
        inputs = [_stacked(builder, list(values), hint) for values, hint in zip(weights, hints, strict=False)]
        if lengths:
            inputs = [*inputs, *[""] * (3 - len(inputs)), lengths]  # sequence_lens after B
        activations = [name for layer in directions for name in layer.onnx_activations()]
        return directions[0].onnx_node(builder, [steps, *inputs], direction, activations)

    def _placed(self, builder: GraphBuilder, value: str, compaction: Compaction, reverse: bool) -> str:
        """One direction's Y [T, 1, B, U] of a compacted sequence at its time steps, zeros at the masked ones, as
        [B, T, U]; or its Y_h [1, B, U], zeros for an example with no unmasked step, as [B, U]."""
        axis = 1 if self.return_sequences else 0
        squeezed = builder.node("Squeeze", [value, builder.ints([axis], "axes")], hint="direction")
        if not self.return_sequences:
            return compaction.last(builder, squeezed)
        sequence = compaction.spread(builder, squeezed, reverse, zero_masked=True)
        return builder.node("Transpose", [sequence], hint="batch_major", perm=[1, 0, 2])

    def _batch_major(self, builder: GraphBuilder, value: str) -> str:
        """One direction's Y [T, 1, B, U] as [B, T, U] (in time order), or its Y_h [1, B, U] as [B, U]."""
        axis = 1 if self.return_sequences else 0
        squeezed = builder.node("Squeeze", [value, builder.ints([axis], "axes")], hint="direction")
        if not self.return_sequences:
            return squeezed
        return builder.node("Transpose", [squeezed], hint="batch_major", perm=[1, 0, 2])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": self.forward_layer.serialize(),
            "backward_layer": self.backward_layer.serialize(),
        }

    @classmethod
    def from_layer_config(cls, config: dict[str, Any]) -> Layer:
        """The layer `config` describes, its `layer` and `backward_layer` rebuilt from their nested configs."""
        config = dict(config)
        for key in ("layer", "backward_layer"):
            if isinstance(config.get(key), dict):
                config[key] = Layer.from_config(config[key])
        return cls(**config)


def _wrapped(arg: str, layer: object) -> _Recurrent:
    """`layer`, if Bidirectional can wrap it."""
    if not isinstance(layer, _Recurrent):
        shown = f"the class {layer.__name__} (make an instance)" if isinstance(layer, type) else repr(layer)
        raise InvalidTypeError(f"Bidirectional({arg}=...) expects {_WRAPPED}. Received: {arg}={shown[:120]}")
    if not layer.trainable:
        raise UnsupportedError(
            f"Bidirectional({arg}=...) trains or freezes both directions together: leave the wrapped layer "
            f"trainable and freeze the wrapper, Bidirectional(..., trainable=False). Received: {arg} with "
            "trainable=False"
        )
    return layer


def _merge_mode(value: object) -> str:
    if value is None:
        raise UnsupportedError(
            "Bidirectional(merge_mode=None) returns the two directions' outputs as two tensors in Keras, and a layer "
            f"here has one output. Use one of {list(MERGE_MODES)} (with 'concat', the forward units come first). "
            "Received: merge_mode=None"
        )
    if value not in MERGE_MODES:
        raise InvalidArgumentError(
            f"Bidirectional(merge_mode=...) expects one of {list(MERGE_MODES)}. Received: {value!r}"
        )
    return str(value)


def _copy(layer: _Recurrent, name: str, **changes: object) -> _Recurrent:
    """A fresh layer of `layer`'s class and config (no weights, no model), with `name` and `changes`; without
    `zero_output_for_mask`, which the wrapper decides as Keras' does (zeros at masked steps with return_sequences,
    whatever the layer said: Keras' Bidirectional sets it so, and writes it so in its config)."""
    config = {**layer.get_config(), "name": name, **changes}
    config.pop(ZERO_OUTPUT_FOR_MASK, None)
    copy = type(layer).from_layer_config(config)
    assert isinstance(copy, _Recurrent)
    return copy


def _check_pair(forward: _Recurrent, backward: _Recurrent, merge_mode: str) -> None:
    """Keras' checks of a backward layer against the forward one, and the names and shapes a merge needs."""
    if forward.go_backwards == backward.go_backwards:
        raise InvalidArgumentError(
            "Bidirectional's forward and backward layers must have different go_backwards values. Received: "
            f"layer go_backwards={forward.go_backwards}, backward_layer go_backwards={backward.go_backwards}"
        )
    if forward.return_sequences != backward.return_sequences:
        raise InvalidArgumentError(
            "Bidirectional's forward and backward layers must have the same return_sequences. Received: layer "
            f"return_sequences={forward.return_sequences}, backward_layer return_sequences={backward.return_sequences}"
        )
    if forward.name == backward.name:
        raise InvalidArgumentError(
            "Bidirectional's forward and backward layers name their weights and need different names. Received: "
            f"both named {forward.name!r}"
        )
    if merge_mode != "concat" and forward.units != backward.units:
        raise InvalidArgumentError(
            f"Bidirectional(merge_mode={merge_mode!r}) combines outputs of one shape, so both layers need the same "
            f"units (or use merge_mode='concat'). Received: layer units={forward.units}, backward_layer "
            f"units={backward.units}"
        )


def _stacked(builder: GraphBuilder, values: list[str], hint: str) -> str:
    """Per-direction weights [1, ...] stacked on ONNX's num_directions axis."""
    return values[0] if len(values) == 1 else builder.node("Concat", values, hint=hint, axis=0)


def _merge(builder: GraphBuilder, mode: str, forward: str, backward: str) -> str:
    if mode == "concat":
        return builder.node("Concat", [forward, backward], hint="concatenated", axis=-1)
    if mode == "mul":
        return builder.node("Mul", [forward, backward], hint="multiplied")
    total = builder.node("Add", [forward, backward], hint="summed")
    if mode == "sum":
        return total
    return builder.node("Div", [total, builder.constant(np.array(2.0, np.float32), "two")], hint="averaged")
