"""Embedding: a trainable table of vectors, looked up by integer index."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain import initializers, regularizers
from onnxtrain._checks import check_bool
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import Initializer
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Mask, Shape
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
        mask_zero: id 0 is padding: the output carries the mask ids != 0, which the layers after it use as Keras'
            do (docs/layers.md, "Masking"); input_dim counts id 0, as in Keras.
        input_length: Keras 2's sequence length, which Keras 3 takes with a deprecation warning and ignores: so
            here (the Input's shape gives the length).
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
        *,
        input_length: object = None,
    ):
        super().__init__(name=name, trainable=trainable)
        if input_length is not None:  # as Keras 3 (layers/core/embedding.py): warned about, and not kept
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", UserWarning, stacklevel=4)
        self.input_dim = _positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = _positive_int("Embedding", "output_dim", output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer: Regularizer | None = regularizers.get(embeddings_regularizer)
        self.mask_zero = check_bool("Embedding", "mask_zero", mask_zero)

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
        return builder.node("Gather", [table, self._indices(builder, x)], hint="embedding", axis=0)

    def _indices(self, builder: GraphBuilder, x: str) -> str:
        if builder.input_type(x) == TensorProto.INT64:
            return x
        return builder.shared(
            f"embedding_indices:{id(self)}:{x}", lambda: builder.node("Cast", [x], hint="indices", to=TensorProto.INT64)
        )

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        """With mask_zero, ids != 0 (Keras' mask, whatever mask the ids had); else none."""
        if not self.mask_zero:
            return None
        zero = builder.constant(np.array(0, np.int64), "padding_id", np.int64)
        return builder.node("Not", [builder.node("Equal", [self._indices(builder, x), zero])], hint="mask")

    def get_config(self) -> dict[str, Any]:
        regularizer = self.embeddings_regularizer
        return {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": self.embeddings_initializer.get_config(),
            "embeddings_regularizer": None if regularizer is None else regularizer.get_config(),
            "mask_zero": self.mask_zero,
            **super().get_config(),
        }
