"""Embedding: a trainable table of vectors, looked up by integer index."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain import initializers, regularizers
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import Initializer
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Shape
from onnxtrain.regularizers import Regularizer, RegularizerLike


class Embedding(Layer):
    """Maps each index in [0, input_dim) to a trainable vector of `output_dim` values: (N, ...) -> (N, ..., output_dim).

    The layer reads an int64 model input (`Input(dtype="int64")`) as it is; it casts any other input (float32, or
    int32) to int64 before the lookup. When the layer reads a model input directly, fit, evaluate and predict
    refuse ids outside [0, input_dim) and fractional ones before ONNX Runtime runs (`onnxtrain._token_ids`), and
    never scale them by the model's input_scale; ids computed in the graph (after a Reshape, a cast, ...) reach
    the Cast as they are: it truncates, and ONNX Gather reads row input_dim - k for -k and fails past the table.

    Args:
        input_dim: the number of rows (vocabulary size).
        output_dim: the length of each vector.
        embeddings_initializer: Keras' default RandomUniform(-0.05, 0.05).
        embeddings_regularizer: a penalty the loss adds for the table (`onnxtrain.regularizers`).
        mask_zero: not supported (onnxtrain's layers carry no masks); only False is accepted.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str | Initializer | type[Initializer] | dict[str, Any] = initializers.RandomUniform,
        embeddings_regularizer: RegularizerLike = None,
        mask_zero: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.input_dim = _positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = _positive_int("Embedding", "output_dim", output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer: Regularizer | None = regularizers.get(embeddings_regularizer)
        if mask_zero is not False:
            raise UnsupportedError(
                "Embedding(mask_zero=True) is not supported: onnxtrain's layers carry no masks. Reserve index 0 for "
                f"padding yourself, or pool over the sequence. Received: mask_zero={mask_zero!r}"
            )

    reads_integers = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        shape = (self.input_dim, self.output_dim)
        self.add_weight("embeddings", self.embeddings_initializer(shape, self.input_dim, self.output_dim, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        table = self.emit_params(builder)["embeddings"]
        if self.trainable:
            regularizers.add_penalty(builder, self.embeddings_regularizer, table)
        if builder.input_type(x) == TensorProto.INT64:
            indices = x
        else:
            indices = builder.node("Cast", [x], hint="indices", to=TensorProto.INT64)
        return builder.node("Gather", [table, indices], hint="embedding", axis=0)

    def get_config(self) -> dict[str, Any]:
        regularizer = self.embeddings_regularizer
        return {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": self.embeddings_initializer.get_config(),
            "embeddings_regularizer": None if regularizer is None else regularizer.get_config(),
            **super().get_config(),
        }
