"""IntegerLookup: Keras' layer that maps integer tokens to indices in a vocabulary, given or learned by `adapt`; the
vocabulary is a constant of the graph, kept in the layer's config."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._category_encoding import check_output_mode, encode, encoded_shape, integer_values
from onnxtrain.layers._layer import Layer, Shape, describe


def _token(owner: str, arg: str, value: object) -> int | None:
    if value is None or (isinstance(value, int | np.integer) and not isinstance(value, bool)):
        return None if value is None else int(value)
    raise InvalidArgumentError(f"{owner}({arg}=...) expects an int or None. Received: {arg}={value!r}")


def integer_array(owner: str, value: object) -> np.ndarray:
    """`value` as int64: integers, or floats that are whole; refuses NaN, fractions, bools and strings by name."""
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all() or (array != np.trunc(array)).any() or (np.abs(array) > 2.0**63).any():
            bad = array[~finite | (array != np.trunc(array))].ravel()
            raise InvalidArgumentError(
                f"{owner} expects integer tokens. Received: {bad[0] if bad.size else 'a value past int64'} "
                f"in an array of dtype {array.dtype}"
            )
        return array.astype(np.int64)
    raise InvalidTypeError(
        f"{owner} expects integer tokens (an int array, or whole floats). Received: dtype {array.dtype}"
        + (' (map strings to ints first: docs/layers.md, "Categorical features")' if array.dtype.kind in "USO" else "")
    )


class IntegerLookup(Layer):
    """Integer tokens -> indices: Keras 3's layer, its indices and its adapt (docs/layers.md, "Categorical features").

    Index 0 is the mask token's when `mask_token` is set (in "int" mode), then `num_oov_indices` indices for tokens
    outside the vocabulary (a token t takes oov_start + t mod num_oov_indices), then the vocabulary in order. The
    output is float32 (whole numbers, exact below 2**24), which Embedding reads as ids and Dense as numbers.

    Args:
        max_tokens: the most indices (special ones included) adapt keeps; None: no limit.
        num_oov_indices: indices for out-of-vocabulary tokens (>= 1).
        mask_token: a token that maps to index 0 ("int") or to no value (the other modes); None: none.
        oov_token: the token `get_vocabulary()` lists for the OOV indices; adapt leaves it out of the vocabulary.
        vocabulary: the tokens, most frequent first as adapt orders them; it may start with the special tokens.
        output_mode: "int", "one_hot", "multi_hot" or "count" (see CategoryEncoding).
        pad_to_max_tokens: encode into max_tokens values rather than the vocabulary size.
    """

    reads_integers = True

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: int | None = None,
        oov_token: int = -1,
        vocabulary: Iterable[int] | np.ndarray | None = None,
        vocabulary_dtype: str = "int64",
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = "IntegerLookup"
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 1
        ):
            raise InvalidArgumentError(f"{owner}(max_tokens=...) expects an int > 1 or None. Received: {max_tokens!r}")
        if not isinstance(num_oov_indices, int) or isinstance(num_oov_indices, bool) or num_oov_indices < 1:
            raise InvalidArgumentError(  # Keras' 0 makes an unknown token an error at run time, which a graph cannot
                f"{owner}(num_oov_indices=...) expects an int >= 1. Received: num_oov_indices={num_oov_indices!r}"
            )
        for arg, value in (("vocabulary_dtype", vocabulary_dtype), ("invert", invert), ("sparse", sparse)):
            if value != {"vocabulary_dtype": "int64"}.get(arg, False):
                raise UnsupportedError(f"{owner} takes Keras' default {arg} only. Received: {arg}={value!r}")
        self.max_tokens, self.num_oov_indices = max_tokens, num_oov_indices
        self.mask_token = _token(owner, "mask_token", mask_token)
        self.oov_token = _token(owner, "oov_token", oov_token)
        self.output_mode = check_output_mode(owner, output_mode)
        self.pad_to_max_tokens = check_bool(owner, "pad_to_max_tokens", pad_to_max_tokens)
        if pad_to_max_tokens and max_tokens is None:
            raise InvalidArgumentError(f"{owner}(pad_to_max_tokens=True) needs max_tokens. Received: max_tokens=None")
        self.vocabulary_dtype, self.invert, self.sparse = "int64", False, False
        self._has_input_vocabulary = vocabulary is not None
        self._tokens = np.zeros(0, np.int64)
        self.vocabulary = vocabulary

    # --- indices --------------------------------------------------------------------------------------------
    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def vocabulary_size(self) -> int:
        """Keras': the indices the layer gives, special ones included."""
        return self._token_start() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[int]:
        """Keras': the token of each index (the OOV indices list `oov_token`), or the learned ones only."""
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        tokens = [int(t) for t in self._tokens]
        return [*special, *tokens] if include_special_tokens else tokens  # type: ignore[list-item]

    @property
    def vocabulary(self) -> list[int] | None:
        """The tokens (no special ones) in index order, as the config holds them; None before adapt."""
        return self.get_vocabulary(include_special_tokens=False) if len(self._tokens) else None

    @vocabulary.setter
    def vocabulary(self, value: Iterable[int] | np.ndarray | None) -> None:
        self._tokens = np.zeros(0, np.int64) if value is None else self._checked_tokens(value)

    def _checked_tokens(self, vocabulary: object) -> np.ndarray:
        owner = f"{describe(self)}(vocabulary=...)"
        tokens = integer_array(owner, list(vocabulary) if isinstance(vocabulary, tuple) else vocabulary)
        if tokens.ndim != 1 or tokens.size == 0:
            raise InvalidArgumentError(f"{owner} expects a non-empty list of ints. Received: shape {tokens.shape}")
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        if tokens[: len(special)].tolist() == special:  # Keras: the special tokens may lead the list
            tokens = tokens[len(special) :]
        repeated = [t for t, n in Counter(tokens.tolist()).items() if n > 1]
        if repeated:
            raise InvalidArgumentError(f"{owner} expects distinct tokens. Received: repeated {repeated}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise InvalidArgumentError(
                f"{owner} holds the mask token {self.mask_token}: leave it out (the layer gives it index 0)"
            )
        if self.num_oov_indices and self.oov_token in tokens:  # Keras: "reserved OOV token at unexpected location"
            raise InvalidArgumentError(
                f"{owner} holds the OOV token {self.oov_token} after its leading special tokens {special}: leave it "
                "out, or list the special tokens first exactly"
            )
        if self.max_tokens is not None and self._token_start() + len(tokens) > self.max_tokens:
            raise InvalidArgumentError(
                f"{owner} has {self._token_start() + len(tokens)} indices with the special ones, more than "
                f"max_tokens={self.max_tokens}"
            )
        return tokens

    def _depth(self) -> int:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        if not len(self._tokens) and self.output_mode != "int":
            raise ModelStateError(
                f"{describe(self)} with output_mode={self.output_mode!r} encodes into its vocabulary size: give it "
                "vocabulary=[...] or call adapt(data) before calling it"
            )
        return self.vocabulary_size()

    def _check_vocabulary(self) -> None:
        """Refuse to compute with no vocabulary: every token would take an OOV index, which is never meant."""
        if not len(self._tokens):
            raise ModelStateError(
                f"{describe(self)} has no vocabulary (every token would map to an OOV index): give it "
                "vocabulary=[...] or call adapt(data) before calling it or using its model"
            )

    # --- adapt ----------------------------------------------------------------------------------------------
    def adapt(self, data: Any) -> None:
        """Learn the vocabulary from `data` (an array or list of tokens, or batches: arrays in a list, an iterable):
        every token but the mask and OOV tokens, most frequent first, ties larger token first (Keras' order), at
        most max_tokens indices. Call it before the layer is in a model: its graphs hold the vocabulary.

        Raises:
            InvalidArgumentError: NaN, fractional or no tokens; a layer given a vocabulary.
            InvalidTypeError: strings, bools or other non-integer data.
            ModelStateError: the layer is in a model already.
        """
        if self._has_input_vocabulary:
            raise InvalidArgumentError(
                f"{describe(self)} was given a vocabulary; adapt computes one. Create it without"
            )
        if self.model_name is not None:
            raise ModelStateError(
                f"{describe(self)} belongs to model {self.model_name!r}, whose graphs hold its vocabulary: call "
                "adapt before making the model"
            )
        listed = isinstance(data, list | tuple) and bool(data) and all(isinstance(b, np.ndarray) for b in data)
        batches = data if listed else [data] if isinstance(data, np.ndarray | list | tuple) else data
        counts: Counter[int] = Counter()
        for batch in batches:
            tokens, n = np.unique(integer_array(f"{describe(self)}.adapt", batch), return_counts=True)
            counts.update(dict(zip(tokens.tolist(), n.tolist(), strict=True)))
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)  # type: ignore[arg-type]
        if not counts:
            raise InvalidArgumentError(f"{describe(self)}.adapt expects at least one token. Received: none")
        tokens, n = np.array(list(counts), np.int64), np.array(list(counts.values()), np.int64)
        order = np.lexsort((tokens, n))[::-1]
        if self.max_tokens is not None:
            order = order[: self.max_tokens - self._token_start()]
        learned = tokens[order]
        if self.output_shape is not None and self.output_mode != "int" and not self.pad_to_max_tokens:
            if self._token_start() + len(learned) != self.output_shape[-1]:
                raise ShapeError(
                    f"{describe(self)} was called with {self.output_shape[-1]} indices; adapt learned "
                    f"{self._token_start() + len(learned)}. Call adapt before calling the layer"
                )
        self._tokens = learned

    # --- graph ----------------------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return encoded_shape(self, input_shape, 0 if self.output_mode == "int" else self._depth(), self.output_mode)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        self._check_vocabulary()
        ids = integer_values(builder, x)
        oov_start = builder.constant(np.array(self._oov_start(), np.int64), "oov_start", np.int64)
        oov = oov_start
        if self.num_oov_indices > 1:
            buckets = builder.constant(np.array(self.num_oov_indices, np.int64), "oov_buckets", np.int64)
            oov = builder.node("Add", [builder.node("Mod", [ids, buckets], hint="oov_bucket"), oov_start])
        tokens = builder.constant(self._tokens, "vocabulary", np.int64)
        positions = builder.constant(np.arange(len(self._tokens)) + self._token_start(), "indices", np.int64)
        found = builder.node("Equal", [builder.node("Unsqueeze", [ids, builder.ints([-1], "axis")]), tokens])
        none = builder.constant(np.array(-1, np.int64), "not_found", np.int64)
        hit = builder.reduce("ReduceMax", builder.node("Where", [found, positions, none]), [-1], False, "hit")
        indices = builder.node("Where", [builder.node("Equal", [hit, none]), oov, hit], hint="indices")
        if self.mask_token is not None:
            mask = builder.constant(np.array(self.mask_token, np.int64), "mask_token", np.int64)
            masked = builder.constant(np.array(0 if self.output_mode == "int" else -1, np.int64), "masked", np.int64)
            indices = builder.node("Where", [builder.node("Equal", [ids, mask]), masked, indices], hint="indices")
        depth = 0 if self.output_mode == "int" else self._depth()
        return encode(builder, indices, depth, self.output_mode, self.input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "mask_token": self.mask_token,
            "oov_token": self.oov_token,
            "vocabulary": self.vocabulary,
            "vocabulary_dtype": "int64",
            "invert": False,
            "output_mode": self.output_mode,
            "sparse": False,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            **super().get_config(),
        }
