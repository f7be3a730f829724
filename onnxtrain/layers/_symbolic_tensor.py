"""A value in a graph of layers (the Functional API), recording the layer call that computes it:
`onnxtrain.functional.Functional` walks these records back from a model's outputs (`_layer.py` says how a call
makes one). Its class here is `_layer.SymbolicTensor`'s base, which types its `layer` as the `Layer` that module
defines (this one imports nothing of it: `_layer.py` imports this)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from onnxtrain.layers._layer_checks import describe
from onnxtrain.layers._shapes import Shape, format_shape


class SymbolicTensorBase:
    """A value in a graph of layers: its per-example shape and the layer call that computes it.

    `Input(28, 28, 1)` is one itself (its own layer), so layers can be called on it directly.

    Attributes:
        shape: the per-example shape, channels last, without the batch dimension (as layers describe shapes).
        layer: the layer whose call computes it; an Input is its own layer.
        call_index: which call of `layer` made it (0 for the first); a layer called again shares its weights.
        inputs: the tensors that call read, in order (empty for an Input).
        training: Keras' `training=` argument of that call: None (the graph's mode), or False (inference mode in
            every graph: `Functional.emit` emits the call so; `check_training_argument`).
        output_index: which output of that call it is: 0, but for a call of a model of several outputs (a nested
            Functional), which returns one tensor per output (Keras' `[layer name, call index, tensor index]`).
    """

    takes_input_declarations: ClassVar[bool] = False
    """An Input is its own tensor: Keras' input_shape=... is for the other layers (`_keras_arguments.py`)."""

    def __init__(
        self,
        shape: Shape,
        layer: Any,
        call_index: int,
        inputs: Sequence[SymbolicTensorBase],
        training: bool | None = None,
        output_index: int = 0,
    ):
        self.shape: Shape = tuple(shape)
        self.layer = layer
        self.call_index = call_index
        self.inputs: tuple[SymbolicTensorBase, ...] = tuple(inputs)
        self.training = training
        self.output_index = output_index

    def __repr__(self) -> str:
        which = f", output_index={self.output_index}" if self.output_index else ""
        return (
            f"SymbolicTensor(shape={format_shape(self.shape)}, layer={describe(self.layer)}, "
            f"call_index={self.call_index}{which})"
        )
