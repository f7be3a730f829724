"""MultiHeadAttention: Keras 3's scaled dot-product attention of several heads, as MatMul, Softmax and Where.

Called on one tensor it is self-attention (query = key = value: what a Sequential holds); in the Functional API
`mha(query, value)`, `mha(query, value, key)` and `attention_mask=` add inputs. The layer records every call as the
list [query, value], [query, value, key] or [query, value, key, mask] (key is value when only a mask is given), so
a Functional config, which stores the tensors a call read, rebuilds the same call.

Weights are Keras' EinsumDense kernels and biases, under Keras' names (`query.kernel` [features, heads, key_dim],
...): Keras' `get_weights()` loads one to one. Each projection is a MatMul by the kernel reshaped to 2-D; inputs of
more than one sequence axis ([batch, *axes, features]) attend over all those axes together, as Keras' default
`attention_axes`, flattened into one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import onnx

from onnxtrain import initializers, regularizers
from onnxtrain._checks import check_bool
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._attention_eager import call_attention_eagerly
from onnxtrain.layers._attention_inputs import (
    INPUT_ROLES,
    attention_axes_argument,
    call_inputs,
    output_shape_argument,
    refuse_another_call_form,
    roles,
    steps_mask,
)
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._dropout import _rate, _seed, keep_mask, layer_key
from onnxtrain.layers._eager import is_eager_input
from onnxtrain.layers._keras_arguments import refuse_activity_regularizer
from onnxtrain.layers._layer import (
    Layer,
    Mask,
    Shape,
    SymbolicTensor,
    check_training_argument,
    describe,
    format_shape,
)
from onnxtrain.layers._layer_checks import take_call_input_count
from onnxtrain.layers._merge import _reshaped
from onnxtrain.regularizers import Regularizer, RegularizerLike

MASKED_SCORE = -1e9  # Keras' Softmax sets masked scores to this (float32), then zeroes their probabilities


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017) as Keras 3 computes it: query, key and value projected per head,
    softmax(query . key / sqrt(key_dim)) over the key positions, dropout of those scores in training, their average
    of the values, and an output projection of the heads' concatenation.

    Example:
        >>> x = Input(10, 16)
        >>> y = MultiHeadAttention(num_heads=4, key_dim=8)(x)  # self-attention; or mha(query, value[, key])

    Args:
        num_heads / key_dim: the heads, and the size of each head's query and key: positive ints.
        value_dim: each head's value size (None: key_dim).
        dropout: the fraction of attention scores dropped in training, in [0, 1): the project's reproducible masks
            (`layers/_dropout.py`), drawn per example, head, query and key position.
        use_bias: add a bias to each projection.
        output_shape: the output's feature shape, an int or a tuple (None: the query's feature size).
        attention_axes: None (Keras' default: every axis but the batch and the features), or those axes given
            explicitly; other axes are refused.
        use_causal_mask: query position i attends to key positions j <= i only (Keras' call argument; here also a
            constructor argument, so a Sequential can hold a causal layer and the config keeps it).
        sliding_window: None, or a positive int w: query i attends to key positions j with |i - j| < w.
        use_gate: multiply each head's output by a sigmoid gate projected from the query (Keras' `use_gate`).
        kernel_initializer / bias_initializer: drawn in Keras' shapes with Keras' fans.
        kernel_regularizer / bias_regularizer: a penalty on every kernel / bias (`onnxtrain.regularizers`).
        activity_regularizer: None only (Keras' argument; onnxtrain penalizes weights only).
        seed: with the layer's name, picks the dropout masks.

    Raises:
        InvalidArgumentError: an argument out of its range; UnsupportedError: a value Keras takes that is not
            supported here (attention_axes other than the default, an activity_regularizer).
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        use_causal_mask: bool = False,
        sliding_window: int | None = None,
        use_gate: bool = False,
        kernel_initializer: InitializerLike = "glorot_uniform",
        bias_initializer: InitializerLike = "zeros",
        kernel_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        activity_regularizer: RegularizerLike = None,
        seed: int | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = "MultiHeadAttention"
        self.num_heads = _positive_int(owner, "num_heads", num_heads)
        self.key_dim = _positive_int(owner, "key_dim", key_dim)
        self.value_dim = self.key_dim if value_dim is None else _positive_int(owner, "value_dim", value_dim)
        self.dropout = _rate(owner, dropout, "dropout")
        self.use_bias = check_bool(owner, "use_bias", use_bias)
        self.projection_shape = output_shape_argument(output_shape)
        self.attention_axes = attention_axes_argument(attention_axes)
        self.use_causal_mask = check_bool(owner, "use_causal_mask", use_causal_mask)
        self.sliding_window = None if sliding_window is None else _positive_int(owner, "sliding_window", sliding_window)
        self.use_gate = check_bool(owner, "use_gate", use_gate)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer: Regularizer | None = regularizers.get(kernel_regularizer)
        self.bias_regularizer: Regularizer | None = regularizers.get(bias_regularizer)
        refuse_activity_regularizer(type(self), activity_regularizer)
        self.seed = _seed(owner, seed)

    def __setattr__(self, attribute: str, value: Any) -> None:
        if attribute == "output_shape":  # Layer's computed shape; Keras' argument of that name is projection_shape
            object.__setattr__(self, attribute, value)
        else:
            super().__setattr__(attribute, value)

    def __call__(  # type: ignore[override]  # query, value, key: three named inputs, not Layer's *more_inputs
        self,
        query: SymbolicTensor | Sequence[SymbolicTensor],
        value: SymbolicTensor | None = None,
        key: SymbolicTensor | None = None,
        *,
        attention_mask: SymbolicTensor | None = None,
        use_causal_mask: bool | None = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
    ) -> SymbolicTensor:
        """`mha(x)` (self-attention), `mha(query, value)`, `mha(query, value, key)`, with `attention_mask=` a
        tensor of shape [batch, query length, key length] (nonzero: attend), or the recorded list form
        `mha([query, value, key, mask])`. Called on numpy arrays in any of these forms, it computes at once
        (`Layer.__call__`): with `training=True` its training graph (dropout on the attention weights); as in
        Keras, such a call's attention_mask and use_causal_mask are its own: a built layer takes them or not at
        each call (`call_attention_eagerly`).

        Raises:
            UnsupportedError: return_attention_scores=True; training=True on symbolic tensors
                (`check_training_argument`).
            InvalidArgumentError: a key without a value; a list of more than 4 tensors; on symbolic tensors,
                use_causal_mask different from an earlier call's (a layer computes one thing in a graph).
            ShapeError: an eager call on a built layer whose query, value or key shapes are not those it was built
                for.
        """
        tensors = call_inputs(self, query, value, key, attention_mask)
        eager = is_eager_input(tensors)
        if not eager:  # before the settings below change; an eager call takes training=True
            check_training_argument(self, training)
        if return_attention_scores is not False:
            raise UnsupportedError(
                f"{describe(self)}: return_attention_scores=True is not supported (a layer call has one output). "
                f"Received: return_attention_scores={return_attention_scores!r}"
            )
        if eager:  # Keras' eager call: its masks are this call's
            causal = self.use_causal_mask if use_causal_mask is None else use_causal_mask
            causal = check_bool("MultiHeadAttention", "use_causal_mask", causal)
            masks = "attention_mask and use_causal_mask"
            return call_attention_eagerly(self, cast(list[np.ndarray], tensors), causal, training, masks)
        if use_causal_mask is not None and use_causal_mask != self.use_causal_mask:
            if self.symbolic_calls or self.model_name is not None:
                raise InvalidArgumentError(
                    f"{describe(self)} computes with use_causal_mask={self.use_causal_mask} (its constructor's or its "
                    f"first call's); a later call cannot change it. Received: use_causal_mask={use_causal_mask!r}. "
                    "Use another layer."
                )
            self.use_causal_mask = use_causal_mask
        several = take_call_input_count(self, len(tensors))
        if self.built:
            refuse_another_call_form(self, [tensor.shape for tensor in tensors])
        return super().__call__(tensors if several else tensors[0], training=training)

    # --- shapes -------------------------------------------------------------------------------------------
    def _shapes(self, input_shape: Shape | Sequence[Shape]) -> tuple[Shape, Shape, Shape, Shape | None]:
        """(query, value, key, mask or None) of what `compute_output_shape` and `build` receive, checked."""
        if all(isinstance(d, int | np.integer) for d in input_shape):
            shapes = [tuple(int(d) for d in cast(Shape, input_shape))]  # self-attention
        else:
            shapes = [tuple(int(d) for d in s) for s in cast(Sequence[Shape], input_shape)]
            if not 1 <= len(shapes) <= 4:
                raise InvalidArgumentError(
                    f"{describe(self)} takes 1 to 4 inputs ({', '.join(INPUT_ROLES)}). Received: {len(shapes)} "
                    f"({', '.join(format_shape(s) for s in shapes)})"
                )
        query, value, key, mask = roles(shapes)
        for role, shape in zip(INPUT_ROLES, (query, value, key), strict=False):
            if len(shape) < 2:
                raise ShapeError(
                    f"{describe(self)} expects its {role} of shape [None, sequence, features] (or more sequence "
                    f"axes). Received: {role} shape {format_shape(shape)}"
                )
        if not len(query) == len(value) == len(key):
            raise ShapeError(
                f"{describe(self)} expects query, value and key of one rank. Received: query {format_shape(query)}, "
                f"value {format_shape(value)}, key {format_shape(key)}"
            )
        if value[:-1] != key[:-1]:
            raise ShapeError(
                f"{describe(self)} expects value and key of the same shape except the features (the last axis). "
                f"Received: value {format_shape(value)}, key {format_shape(key)}"
            )
        self._check_options(query, value, mask)
        return query, value, key, mask

    def _check_options(self, query: Shape, value: Shape, mask: Shape | None) -> None:
        default = tuple(range(1, len(query)))  # every axis between the batch and the features
        if self.attention_axes is not None:
            resolved = tuple(a if a >= 0 else len(query) + 1 + a for a in self.attention_axes)
            if resolved != default:
                raise UnsupportedError(
                    f"{describe(self)} attends over Keras' default axes only, {list(default)} for inputs of shape "
                    f"{format_shape(query)}. Received: attention_axes={list(self.attention_axes)}"
                )
        if len(query) > 2 and (self.use_causal_mask or self.sliding_window is not None):
            raise UnsupportedError(
                f"{describe(self)}: use_causal_mask and sliding_window take inputs of one sequence axis, [None, "
                f"sequence, features]. Received: query shape {format_shape(query)}"
            )
        if mask is not None:
            expected = (*query[:-1], *value[:-1])
            fits = len(mask) == len(expected) and all(m in (1, e) for m, e in zip(mask, expected, strict=True))
            if not fits or (len(query) > 2 and mask != expected):
                raise ShapeError(
                    f"{describe(self)} expects attention_mask of shape {format_shape(expected)} (query positions, "
                    f"then key positions; size-1 axes broadcast for one sequence axis). Received: "
                    f"{format_shape(mask)}"
                )

    def compute_output_shape(self, input_shape: Shape | Sequence[Shape]) -> Shape:
        query = self._shapes(input_shape)[0]
        return (*query[:-1], *(self.projection_shape or (query[-1],)))

    # --- weights ------------------------------------------------------------------------------------------
    def build(self, input_shape: Shape | Sequence[Shape], rng: np.random.Generator) -> None:
        query, value, key, _ = self._shapes(input_shape)
        heads = self.num_heads
        output = self.projection_shape or (query[-1],)
        projections = [("query", query[-1], self.key_dim), ("key", key[-1], self.key_dim)]
        if self.use_gate:
            projections.append(("gate", query[-1], self.value_dim))
        projections.append(("value", value[-1], self.value_dim))
        for part, features, size in projections:  # Keras' order of get_weights()
            self._add_kernel_and_bias(part, (features, heads, size), (heads, size), rng)
        self._add_kernel_and_bias("attention_output", (heads, self.value_dim, *output), tuple(output), rng)

    def _add_kernel_and_bias(self, part: str, kernel: Shape, bias: Shape, rng: np.random.Generator) -> None:
        self.add_weight(f"{part}.kernel", self.kernel_initializer(kernel, *initializers.keras_fans(kernel), rng))
        if self.use_bias:
            self.add_weight(f"{part}.bias", self.bias_initializer(bias, *initializers.keras_fans(bias), rng))

    # --- ONNX ---------------------------------------------------------------------------------------------
    supports_masking = True  # Keras 3's: the output carries the query's mask
    reads_mask = True

    def emit(self, builder: GraphBuilder, x: str | list[str]) -> str:
        return self._emit(builder, x, [])

    def emit_masked(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> str:
        """Keras 3's masks of the inputs (Embedding(mask_zero=True), Masking): query position i attends to key
        position j only where both are unmasked (and the key's and value's masks agree), with any attention_mask,
        causal mask or sliding window as well."""
        return self._emit(builder, x, mask if isinstance(mask, list) else [mask])

    def _emit(self, builder: GraphBuilder, x: str | list[str], masks: list[Mask]) -> str:
        assert self.output_shape is not None, "layers must be built"
        shape_given = self.input_shapes if self.multi_input else self.input_shape
        query_shape, value_shape, key_shape, mask_shape = self._shapes(shape_given)  # type: ignore[arg-type]
        query_value, value_value, key_value, mask_value = roles(x if isinstance(x, list) else [x])
        xs = [query_value, value_value, key_value] + ([] if mask_value is None else [mask_value])
        t, s = math.prod(query_shape[:-1]), math.prod(value_shape[:-1])
        heads, params = self.num_heads, self.emit_params(builder)
        if self.trainable:  # Keras leaves out a frozen layer's penalties
            for local, value in params.items():
                penalty = self.kernel_regularizer if local.endswith(".kernel") else self.bias_regularizer
                regularizers.add_penalty(builder, penalty, value)

        def project(part: str, x: str, features: int, size: int) -> str:
            """x [N, length, features] times the kernel as a [features, size] matrix (Keras' [heads, key_dim] are
            heads first), plus the bias."""
            y = builder.node("MatMul", [x, _reshaped(builder, params[f"{part}.kernel"], [features, size])], part)
            if self.use_bias:
                y = builder.node("Add", [y, _reshaped(builder, params[f"{part}.bias"], [size])])
            return y

        def split_heads(x: str, length: int, size: int, perm: list[int]) -> str:
            """[N, length, heads * size] as [N, heads, length, size] (perm [0, 2, 1, 3]) or its transpose."""
            return builder.node("Transpose", [_reshaped(builder, x, [0, length, heads, size])], perm=perm)

        if len(query_shape) > 2:  # several sequence axes attend together: flattened into one
            features = (query_shape[-1], value_shape[-1], key_shape[-1])
            flat = [_reshaped(builder, v, [0, n, f]) for v, n, f in zip(xs, (t, s, s), features, strict=False)]
            xs = flat + xs[3:]
        query = project("query", xs[0], query_shape[-1], heads * self.key_dim)
        query = builder.node("Mul", [query, builder.constant(np.float32(1.0 / math.sqrt(self.key_dim)))], "scaled")
        key = project("key", xs[2], key_shape[-1], heads * self.key_dim)
        value = project("value", xs[1], value_shape[-1], heads * self.value_dim)
        scores = builder.node(
            "MatMul",
            [split_heads(query, t, self.key_dim, [0, 2, 1, 3]), split_heads(key, s, self.key_dim, [0, 2, 3, 1])],
            hint="scores",
        )  # [N, heads, t, s]
        mask, rows_may_be_empty = self._mask(builder, xs[3] if len(xs) > 3 else None, mask_shape, t, s)
        steps = steps_mask(builder, masks, t, s)
        if steps is not None:
            mask, rows_may_be_empty = steps if mask is None else builder.node("And", [mask, steps]), True
        if mask is not None:
            scores = builder.node("Where", [mask, scores, builder.constant(np.float32(MASKED_SCORE))], "masked")
        probabilities = builder.node("Softmax", [scores], hint="attention", axis=-1)
        if mask is not None and rows_may_be_empty:  # Keras' Softmax: a fully masked row attends to nothing
            probabilities = builder.node("Where", [mask, probabilities, builder.constant(np.float32(0.0))])
        if builder.training and self.dropout > 0.0:
            assert self.name is not None, "layers are named by their model"
            drop = keep_mask(builder, probabilities, (heads, t, s), True, self.dropout, layer_key(self.name, self.seed))
            probabilities = builder.node("Mul", [probabilities, drop], hint="dropped")
        context = builder.node("MatMul", [probabilities, split_heads(value, s, self.value_dim, [0, 2, 1, 3])])
        context = builder.node("Transpose", [context], perm=[0, 2, 1, 3])  # [N, t, heads, value_dim]
        context = _reshaped(builder, context, [0, t, heads * self.value_dim])
        if self.use_gate:
            gate = project("gate", xs[0], query_shape[-1], heads * self.value_dim)
            context = builder.node("Mul", [context, builder.node("Sigmoid", [gate])], hint="gated")
        size = math.prod(self.projection_shape or (query_shape[-1],))
        y = project("attention_output", context, heads * self.value_dim, size)
        return y if self.output_shape == (t, size) else _reshaped(builder, y, [0, *self.output_shape])

    def _mask(
        self, builder: GraphBuilder, mask_input: str | None, mask_shape: Shape | None, t: int, s: int
    ) -> tuple[str | None, bool]:
        """The bool mask (True: attend) broadcasting over the scores [N, heads, t, s], or None; and whether a query
        row may have no key to attend to."""
        allowed = np.ones((t, s), bool)
        rows, columns = np.arange(t)[:, None], np.arange(s)[None, :]
        if self.use_causal_mask:
            allowed &= rows >= columns
        if self.sliding_window is not None:
            allowed &= np.abs(rows - columns) < self.sliding_window
        constant = None if allowed.all() else builder.constant(allowed, "allowed", np.bool_)
        if mask_input is None:
            return constant, constant is not None and not allowed.any(axis=1).all()
        assert mask_shape is not None
        given = mask_input if len(mask_shape) == 2 else _reshaped(builder, mask_input, [0, t, s])
        given = builder.node("Cast", [given], hint="attention_mask", to=onnx.TensorProto.BOOL)  # nonzero: attend
        given = builder.node("Unsqueeze", [given, builder.ints([1], "head_axis")])
        return (given if constant is None else builder.node("And", [given, constant])), True

    def get_config(self) -> dict[str, Any]:
        penalties = {
            f"{weight}_regularizer": None if regularizer is None else regularizer.get_config()
            for weight, regularizer in (("kernel", self.kernel_regularizer), ("bias", self.bias_regularizer))
        }
        return {
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": None if self.projection_shape is None else list(self.projection_shape),
            "attention_axes": None if self.attention_axes is None else list(self.attention_axes),
            "use_causal_mask": self.use_causal_mask,
            "sliding_window": self.sliding_window,
            "use_gate": self.use_gate,
            "kernel_initializer": self.kernel_initializer.get_config(),
            "bias_initializer": self.bias_initializer.get_config(),
            **penalties,
            "seed": self.seed,
            **super().get_config(),
        }
