"""Keras' masking: the `Masking` layer, which of this package's layers pass a mask on as Keras 3's do, and how a
layer call is emitted beside the mask of its input (`emit_call`, what `Functional.emit` calls). The rules a layer
class follows are in `Layer`'s docstring."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain._checks import as_real
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._activation import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
from onnxtrain.layers._core import Dense
from onnxtrain.layers._dropout import Dropout
from onnxtrain.layers._emitted import check_emitted
from onnxtrain.layers._group_normalization import GroupNormalization
from onnxtrain.layers._layer import Layer, Mask, Shape, describe, format_shape
from onnxtrain.layers._layout import channels_last, emit_layer, emit_multi_input_layer
from onnxtrain.layers._noise import GaussianDropout, GaussianNoise
from onnxtrain.layers._normalization import BatchNormalization, LayerNormalization, UnitNormalization
from onnxtrain.layers._preprocessing import Normalization, Rescaling

# The layers defined elsewhere in this package that Keras 3 gives `supports_masking = True` without a compute_mask
# of their own (ThresholdedReLU: Keras 2's did; Keras 3's is ReLU(threshold=...)). Set here, in one place, beside the
# two that Keras makes read the mask (`_refusal`); the layers of this module's siblings that make, change or read a
# mask set it in their own class.
KERAS_PASSES_MASK: tuple[type[Layer], ...] = (
    Dense,
    Activation,
    ReLU,
    ThresholdedReLU,
    LeakyReLU,
    ELU,
    PReLU,
    Softmax,
    Dropout,  # and SpatialDropout2D, its subclass, as in Keras
    GaussianNoise,
    GaussianDropout,
    BatchNormalization,
    LayerNormalization,
    GroupNormalization,
    UnitNormalization,
    Normalization,
    Rescaling,
)
for _passing in KERAS_PASSES_MASK:
    _passing.supports_masking = True


class Masking(Layer):
    """Masks the steps whose features all equal `mask_value`: Keras 3's Masking, e.g. `Masking(mask_value=0.0)`
    before an LSTM, over (N, timesteps, features) inputs (any shape: the last axis holds the features).

    The output is the input with the masked steps set to 0, and carries the mask any(x != mask_value) over the last
    axis, which the layers after it use as Keras' do (docs/layers.md, "Masking"). A step may be masked anywhere:
    before the data (pre-padding), after it, or between (holes).

    Args:
        mask_value: a number; a step whose every feature equals it is masked.

    Raises:
        InvalidArgumentError: `mask_value` is not a number.
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        value = as_real(mask_value)
        if value is None:
            raise InvalidArgumentError(f"Masking(mask_value=...) expects a number. Received: mask_value={mask_value!r}")
        self.mask_value = value

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if not input_shape:
            raise ShapeError(
                f"{describe(self)} expects input of shape [None, ..., features]. Received: input shape "
                f"{format_shape(input_shape)}"
            )
        return input_shape

    def _kept(self, builder: GraphBuilder, x: str) -> str:
        """bool [batch, ..., 1]: whether any feature of a step differs from mask_value (emitted once per input)."""

        def make() -> str:
            value = builder.constant(np.float32(self.mask_value), "mask_value")
            differs = builder.node(
                "Cast", [builder.node("Not", [builder.node("Equal", [x, value])])], to=TensorProto.FLOAT
            )
            any_feature = builder.reduce("ReduceMax", differs, [-1], keepdims=True, hint="any_feature")
            return builder.node("Cast", [any_feature], hint="kept", to=TensorProto.BOOL)

        return builder.shared(f"masking:{id(self)}:{x}", make)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Where", [self._kept(builder, x), x, builder.constant(np.float32(0.0))], hint="masked")

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        return builder.node("Squeeze", [self._kept(builder, x), builder.ints([-1], "axes")], hint="mask")

    def get_config(self) -> dict[str, Any]:
        return {"mask_value": self.mask_value, **super().get_config()}


def emit_call(builder: GraphBuilder, layer: Layer, xs: list[str], masks: list[Mask]) -> tuple[str, Mask]:
    """Emit `layer`'s call on `xs` (one value, or one per input of a multi-input layer) whose masks are `masks`;
    returns its output and the output's mask (`Layer.compute_mask`). A layer that reads masks emits `emit_masked`
    where a mask reaches it; every other call emits exactly what it would without masks (`_layout.emit_layer`).

    Raises:
        UnsupportedError: a mask reaches a layer that reads masks in Keras 3 but not here (`_refusal`).
    """
    mask: Mask | list[Mask] = masks if layer.multi_input else masks[0]
    masked = any(m is not None for m in masks)
    if masked:
        refusal = _refusal(layer, builder)
        if refusal:
            raise UnsupportedError(
                f"{describe(layer)} receives a mask (Embedding(mask_zero=True) or Masking): {refusal}"
            )
    accepted = xs
    if not getattr(layer, "accepts_channels_first", False):  # as `emit_layer` converts them (cached: no new node)
        shapes = layer.input_shapes if layer.multi_input else [layer.input_shape]
        assert shapes is not None and None not in shapes, "layers must be built"
        accepted = [channels_last(builder, x, len(s) + 1) for x, s in zip(xs, shapes, strict=True)]  # type: ignore[arg-type]
    x: Any = accepted if layer.multi_input else accepted[0]
    if masked and layer.reads_mask:
        with builder.scope(layer.name or type(layer).__name__.lower()):
            y = layer.emit_masked(builder, x, mask)
    elif layer.multi_input:
        y = emit_multi_input_layer(builder, layer, xs)
    else:
        y = emit_layer(builder, layer, xs[0])
    y = check_emitted(builder, layer, y)
    with builder.scope(layer.name or type(layer).__name__.lower()):
        return y, layer.compute_mask(builder, x, mask)


def _refusal(layer: Layer, builder: GraphBuilder) -> str:
    """Why `layer` cannot take a mask in this graph ("" where it can): the layers Keras 3 makes read one that read
    none here."""
    if isinstance(layer, Softmax):
        return (
            "Keras 3's Softmax layer sets the masked positions to -1e9 before its softmax, which onnxtrain's does not "
            "(and Keras raises unless the mask's shape broadcasts against the values, which a mask over the steps "
            "of (steps, classes) values does not). Use Dense(..., activation='softmax'), or drop the mask first."
        )
    if isinstance(layer, BatchNormalization) and builder.training and layer.trainable:
        return (
            "Keras 3's BatchNormalization takes its batch statistics in training over the unmasked steps only, which "
            "onnxtrain's does not. Put it before the layer that makes the mask, or use LayerNormalization (which "
            "needs no batch statistics)."
        )
    return ""
