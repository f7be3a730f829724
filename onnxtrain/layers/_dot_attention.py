"""Attention (Luong's dot-product attention) and AdditiveAttention (Bahdanau's), as Keras 3 computes them: scores
of each query step against each key step, a softmax over the key steps, dropout of those weights in training, and
their average of the value steps.

Keras calls them on a list, `attention([query, value])` or `attention([query, value, key])` (the key defaults to the
value); here a call on one tensor x is `[x, x]` too, so a Sequential can hold the layer. The layer records the call
as that list, so a Functional config rebuilds it. Keras' call argument `use_causal_mask` is also a constructor
argument here (a Sequential's layer and a saved config keep it). The masks of Embedding(mask_zero=True) and Masking
apply as Keras applies them: the value's keeps masked value steps out of the softmax, the query's zeroes the output
at its masked steps and is the output's mask, the key's is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from onnxtrain import initializers
from onnxtrain._checks import check_bool
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._attention_eager import call_attention_eagerly
from onnxtrain.layers._attention_inputs import roles
from onnxtrain.layers._dropout import _rate, _seed, keep_mask, layer_key
from onnxtrain.layers._eager import is_eager_input
from onnxtrain.layers._layer import Layer, Mask, Shape, SymbolicTensor, describe, format_shape
from onnxtrain.layers._layer_checks import take_call_input_count

MASKED_SHIFT = 1e9  # Keras subtracts this from a masked score (float32: it swamps any score) before the softmax
ROLES = ("query", "value", "key")
SCORE_MODES = ("dot", "concat")


class _ScoredAttention(Layer):
    """What Attention and AdditiveAttention share: the calls, the shapes, the masks, the softmax, the dropout and the
    weighted sum of the values. A subclass says how a query step and a key step score (`_scores`) and makes the
    weights that takes (`build`)."""

    supports_masking = True  # Keras' compute_mask: the output carries the query's mask
    reads_mask = True

    def _take_settings(self, use_scale: object, dropout: object, seed: object, use_causal_mask: object) -> None:
        owner = type(self).__name__
        self.use_scale = check_bool(owner, "use_scale", use_scale)
        self.dropout = _rate(owner, dropout, "dropout")
        self.seed = _seed(owner, seed)
        self.use_causal_mask = check_bool(owner, "use_causal_mask", use_causal_mask)

    def __call__(  # Keras' call arguments beside Layer's
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor],
        *more_inputs: SymbolicTensor,
        mask: object = None,
        training: bool | None = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool | None = None,
    ) -> SymbolicTensor:
        """`layer([query, value])` or `layer([query, value, key])` (Keras' calls; the tensors may also come one by
        one), or `layer(x)`: `[x, x]`, as a Sequential calls it. `use_causal_mask=True`: query step i attends to
        key steps j <= i only; on symbolic tensors it is the layer's setting from then on, on numpy arrays (Keras'
        eager call) that call's only (`call_attention_eagerly`).

        Raises:
            UnsupportedError: return_attention_scores=True (a layer call has one output here); an explicit mask=
                list (the masks of Embedding(mask_zero=True) and Masking reach the layer by themselves).
            InvalidArgumentError: a list of more than 3 tensors; on symbolic tensors, use_causal_mask different from
                an earlier call's.
            ShapeError: an eager call on a built layer whose query, value or key shapes are not those it was built
                for.
        """
        if return_attention_scores is not False:
            raise UnsupportedError(
                f"{describe(self)}: return_attention_scores=True is not supported (a layer call has one output "
                f"here). Received: return_attention_scores={return_attention_scores!r}"
            )
        if mask is not None:
            raise UnsupportedError(
                f"{describe(self)}: an explicit mask=[query_mask, value_mask] is not supported; the masks of "
                "Embedding(mask_zero=True) and Masking reach the layer by themselves, as in Keras. Received: mask="
                f"{type(mask).__name__}"
            )
        if isinstance(inputs, list | tuple):
            if more_inputs:
                raise InvalidTypeError(
                    f"{describe(self)} takes a list [query, value, key] or the tensors one by one, not both."
                )
            tensors = list(inputs)
        else:
            tensors = [inputs, *more_inputs]
        if not 1 <= len(tensors) <= 3:
            raise InvalidArgumentError(
                f"{describe(self)} takes a list [query, value] or [query, value, key] (or one tensor, as both "
                f"query and value). Received: a list of {len(tensors)}"
            )
        if is_eager_input(tensors):  # Keras' eager call: its use_causal_mask is this call's
            causal = self.use_causal_mask if use_causal_mask is None else use_causal_mask
            causal = check_bool(type(self).__name__, "use_causal_mask", causal)
            return call_attention_eagerly(self, cast(list[np.ndarray], tensors), causal, training, "use_causal_mask")
        if use_causal_mask is not None:
            self._take_causal_call_argument(use_causal_mask)
        several = take_call_input_count(self, len(tensors))
        return super().__call__(tensors if several else tensors[0], training=training)

    def _take_causal_call_argument(self, use_causal_mask: object) -> None:
        value = check_bool(type(self).__name__, "use_causal_mask", use_causal_mask)
        if value != self.use_causal_mask:
            if self.symbolic_calls or self.model_name is not None:
                raise InvalidArgumentError(
                    f"{describe(self)} computes with use_causal_mask={self.use_causal_mask} (its constructor's or "
                    f"its first call's); a later call cannot change it. Received: use_causal_mask={value!r}. Use "
                    "another layer."
                )
            self.use_causal_mask = value

    # --- shapes -------------------------------------------------------------------------------------------
    def _shapes(self, input_shape: Shape | Sequence[Shape]) -> tuple[Shape, Shape, Shape]:
        """(query, value, key) of what `compute_output_shape` and `build` receive, checked."""
        if all(isinstance(d, int | np.integer) for d in input_shape):
            shapes = [tuple(int(d) for d in cast(Shape, input_shape))]  # one tensor: query and value
        else:
            shapes = [tuple(int(d) for d in s) for s in cast(Sequence[Shape], input_shape)]
        query, value, key, _ = roles(shapes)
        for role, shape in zip(ROLES, (query, value, key), strict=True):
            if len(shape) < 2:
                raise ShapeError(
                    f"{describe(self)} expects its {role} of shape [None, steps, features] (or more axes before the "
                    f"steps). Received: {role} shape {format_shape(shape)}"
                )
        if not len(query) == len(value) == len(key) or not query[:-2] == value[:-2] == key[:-2]:
            raise ShapeError(
                f"{describe(self)} expects query, value and key of one rank, alike but in their last two axes "
                f"(steps, features). Received: query {format_shape(query)}, value {format_shape(value)}, key "
                f"{format_shape(key)}"
            )
        if value[-2] != key[-2]:
            raise ShapeError(
                f"{describe(self)} expects value and key of the same steps (one key step per value step). "
                f"Received: value {format_shape(value)}, key {format_shape(key)}"
            )
        if query[-1] != key[-1]:
            raise ShapeError(
                f"{describe(self)} scores query steps against key steps feature by feature: they need the same "
                f"features. Received: query {format_shape(query)}, key {format_shape(key)}. Give a key of "
                f"{query[-1]} features ([query, value, key]), or project the query first (Dense)."
            )
        return query, value, key

    def compute_output_shape(self, input_shape: Shape | Sequence[Shape]) -> Shape:
        query, value, _ = self._shapes(input_shape)
        return (*query[:-1], value[-1])

    # --- ONNX ---------------------------------------------------------------------------------------------
    def emit(self, builder: GraphBuilder, x: str | list[str]) -> str:
        return self._emit(builder, x, [])

    def emit_masked(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> str:
        """Keras' masks: the value's (and the causal mask) keep steps out of the softmax, the query's zeroes the
        output at its masked steps; the key's is ignored, as Keras ignores it."""
        return self._emit(builder, x, mask if isinstance(mask, list) else [mask])

    def _emit(self, builder: GraphBuilder, x: str | list[str], masks: list[Mask]) -> str:
        assert self.output_shape is not None, "layers must be built"
        query_shape, value_shape, _ = self._shapes(self.input_shapes if self.multi_input else self.input_shape)  # type: ignore[arg-type]
        query, value, key, _ = roles(x if isinstance(x, list) else [x])
        query_mask, value_mask, _, _ = roles(masks) if masks else (None, None, None, None)
        params = self.emit_params(builder)
        rank = len(query_shape) + 1
        scores = self._scores(builder, query, key, rank, params)  # [N, ..., query steps, key steps]
        allowed = self._allowed(builder, value_mask, query_shape[-2], value_shape[-2])
        if allowed is not None:  # Keras' where(mask, scores, scores - 1e9): a fully masked row stays a softmax
            shifted = builder.node("Sub", [scores, builder.constant(np.float32(MASKED_SHIFT), "masked_shift")])
            scores = builder.node("Where", [allowed, scores, shifted], hint="masked")
        weights = builder.node("Softmax", [scores], hint="attention", axis=-1)
        if builder.training and self.dropout > 0.0:
            assert self.name is not None, "layers are named by their model"
            shape = (*query_shape[:-1], value_shape[-2])
            drop = keep_mask(builder, weights, shape, True, self.dropout, layer_key(self.name, self.seed))
            weights = builder.node("Mul", [weights, drop], hint="dropped")
        y = builder.node("MatMul", [weights, value], hint="attended")
        if query_mask is not None:  # Keras zeroes the output at the query's masked steps
            steps = builder.node("Unsqueeze", [query_mask, builder.ints([-1], "feature_axis")])
            y = builder.node("Where", [steps, y, builder.constant(np.float32(0.0))], hint="query_masked")
        return y

    def _allowed(self, builder: GraphBuilder, value_mask: Mask, query_steps: int, key_steps: int) -> str | None:
        """The bool value (True: attend) broadcasting over the scores, or None: the value's mask [N, ..., 1, key
        steps] and the causal mask [query steps, key steps] (query step i attends to key steps j <= i)."""
        parts = []
        if value_mask is not None:
            parts.append(builder.node("Unsqueeze", [value_mask, builder.ints([-2], "query_axis")], hint="value_mask"))
        if self.use_causal_mask:
            causal = np.arange(query_steps)[:, None] >= np.arange(key_steps)[None, :]
            parts.append(builder.constant(causal, "causal_mask", np.bool_))
        if len(parts) == 2:
            return builder.node("And", parts, hint="allowed")
        return parts[0] if parts else None

    def _scores(self, builder: GraphBuilder, query: str, key: str, rank: int, params: dict[str, str]) -> str:
        raise NotImplementedError  # each subclass scores its own way

    def _pairs(self, builder: GraphBuilder, query: str, key: str) -> str:
        """query step + key step for every pair of them: [N, ..., query steps, key steps, features]."""
        return builder.node(
            "Add",
            [
                builder.node("Unsqueeze", [query, builder.ints([-2], "key_axis")]),  # [N, ..., query steps, 1, f]
                builder.node("Unsqueeze", [key, builder.ints([-3], "query_axis")]),  # [N, ..., 1, key steps, f]
            ],
            hint="pairs",
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "use_scale": self.use_scale,
            "dropout": self.dropout,
            "seed": self.seed,
            "use_causal_mask": self.use_causal_mask,
            **super().get_config(),
        }


class Attention(_ScoredAttention):
    """Dot-product attention (Luong et al., 2015) as Keras 3 computes it: the scores of query step i against key
    step j are q_i . k_j ("dot") or sum(tanh(q_i + k_j)) ("concat"), softmax over j, and the output at i is the
    weighted sum of the value steps. No projections: the query and the key need the same features.

    Example:
        >>> query, value = Input(6, 8), Input(10, 8)
        >>> y = Attention(use_scale=True)([query, value])  # [None, 6, 8]; Attention()(x) in a Sequential

    Args:
        use_scale: multiply the scores by a trainable scalar `scale` (initially 1); with "concat", the sums
            inside the tanh.
        score_mode: "dot" or "concat"; "concat" multiplies the scores by a trainable scalar `concat_score_weight`
            (initially 1).
        dropout: the fraction of attention weights dropped in training, in [0, 1): the project's reproducible masks
            (`layers/_dropout.py`), drawn per example, query step and key step, on the portable engine.
        seed: with the layer's name, picks the dropout masks.
        use_causal_mask: query step i attends to key steps j <= i only (Keras' call argument; here also a
            constructor argument, so a Sequential can hold a causal layer and the config keeps it).

    Raises:
        InvalidArgumentError: an argument out of its range.
    """

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        use_causal_mask: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        if score_mode not in SCORE_MODES:
            raise InvalidArgumentError(
                f"Attention(score_mode=...) expects one of {', '.join(map(repr, SCORE_MODES))}. "
                f"Received: score_mode={score_mode!r}"
            )
        self.score_mode = score_mode
        self._take_settings(use_scale, dropout, seed, use_causal_mask)

    def build(self, input_shape: Shape | Sequence[Shape], rng: np.random.Generator) -> None:
        self._shapes(input_shape)
        if self.use_scale:  # Keras' order of get_weights(), both initially 1
            self.add_weight("scale", np.ones((), np.float32))
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", np.ones((), np.float32))

    def _scores(self, builder: GraphBuilder, query: str, key: str, rank: int, params: dict[str, str]) -> str:
        if self.score_mode == "dot":
            keys = builder.node("Transpose", [key], perm=[*range(rank - 2), rank - 1, rank - 2])
            scores = builder.node("MatMul", [query, keys], hint="scores")
            return builder.node("Mul", [scores, params["scale"]], hint="scaled") if self.use_scale else scores
        pairs = self._pairs(builder, query, key)
        if self.use_scale:
            pairs = builder.node("Mul", [params["scale"], pairs], hint="scaled")
        summed = builder.reduce("ReduceSum", builder.node("Tanh", [pairs]), [-1], keepdims=False, hint="scores")
        return builder.node("Mul", [params["concat_score_weight"], summed], hint="weighted")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {"use_scale": config.pop("use_scale"), "score_mode": self.score_mode, **config}


class AdditiveAttention(_ScoredAttention):
    """Additive attention (Bahdanau et al., 2015) as Keras 3 computes it: the scores of query step i against key
    step j are sum(scale * tanh(q_i + k_j)) over the features, softmax over j, and the output at i is the weighted
    sum of the value steps. No projections: the query and the key need the same features.

    Example:
        >>> query, value = Input(6, 8), Input(10, 8)
        >>> y = AdditiveAttention()([query, value])  # [None, 6, 8]; AdditiveAttention()(x) in a Sequential

    Args:
        use_scale: weigh each feature's tanh by a trainable vector `scale` of the query's features (drawn
            glorot_uniform, as Keras draws it); False: weight 1.
        dropout / seed / use_causal_mask: as Attention's.

    Raises:
        InvalidArgumentError: an argument out of its range.
    """

    def __init__(
        self,
        use_scale: bool = True,
        dropout: float = 0.0,
        seed: int | None = None,
        use_causal_mask: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self._take_settings(use_scale, dropout, seed, use_causal_mask)

    def build(self, input_shape: Shape | Sequence[Shape], rng: np.random.Generator) -> None:
        query, _, _ = self._shapes(input_shape)
        if self.use_scale:
            features = query[-1]
            self.add_weight("scale", initializers.get("glorot_uniform")((features,), features, features, rng))

    def _scores(self, builder: GraphBuilder, query: str, key: str, rank: int, params: dict[str, str]) -> str:
        terms = builder.node("Tanh", [self._pairs(builder, query, key)])
        if self.use_scale:
            terms = builder.node("Mul", [params["scale"], terms], hint="scaled")
        return builder.reduce("ReduceSum", terms, [-1], keepdims=False, hint="scores")
