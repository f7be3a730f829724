"""The base of every activation (`Activation`: how it is emitted and configured) and the channels axis an activation
along the last axis reads (`channel_axis`): below `onnxtrain.activations` and `onnxtrain._keras_activations`, which
both build on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from onnxtrain.graph import GraphBuilder


@dataclass(frozen=True)
class Activation:
    """Base activation: subclasses implement `emit`. `name` is the registry key used in configs.

    Most are elementwise. One that reads across the last (channels) axis sets `along_last_axis` (softmax): a layer
    hands it channels-last values, or channels-first ones (a convolution's output), which it reads along axis 1
    (`channel_axis`); one that changes the shape (glu) says so in `output_shape`.
    """

    name: str = field(default="", init=False)
    along_last_axis: ClassVar[bool] = False

    def emit(self, builder: GraphBuilder, x: str) -> str:
        raise NotImplementedError

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The per-example shape (channels last) of the output for an input of `shape`: the same, for all but glu."""
        return shape

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **{k: v for k, v in self.__dict__.items() if k != "name"}}


def channel_axis(builder: GraphBuilder, x: str) -> int:
    """The axis of `x`'s channels (Keras' last axis): 1 where a layer hands channels-first values (a convolution's
    output, `layers._layout`), else -1."""
    from onnxtrain.layers._layout import is_channels_first  # the layers import this module

    return 1 if is_channels_first(builder, x) else -1
