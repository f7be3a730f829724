"""What the trainer reads and writes of the model it trains (`TrainedModel`), typed by use so that the training
modules sit below `onnxtrain.model` and never import it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from onnxtrain.callbacks import CallbackModel
from onnxtrain.functional import Functional
from onnxtrain.layers import Layer, Shape


class TrainedModel(CallbackModel, Protocol):
    """What the trainer reads and writes of the model it trains (a `Sequential`), besides what callbacks use."""

    @property
    def layers(self) -> Sequence[Layer]: ...

    @property
    def graph(self) -> Functional: ...

    @property
    def seed(self) -> int: ...

    @property
    def input_shape(self) -> Shape: ...

    @property
    def output_shape(self) -> Shape: ...

    # fit adopts the training data's class names and input scale (`Trainer._adopt`)
    class_names: tuple[str, ...] | None
    input_scale: float

    def sync_weights(self) -> None: ...

    def inference_model(self, opset: int | None = None, ir_version: int | None = None) -> Any: ...
