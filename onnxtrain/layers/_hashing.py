"""Hashing: integer tokens -> one of num_bins bins by a salted hash that standard ONNX integer ops compute exactly,
so training, the export and numpy (`hash_bins`) agree. Keras hashes the token's decimal string with FarmHash (or
SipHash with a salt), which ONNX cannot: the bins differ from Keras', their use (and their spread) does not."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._category_encoding import check_output_mode, encode, encoded_shape, integer_values
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Shape

PRIME = 2**31 - 1
"""The Mersenne prime of the polynomial hash: every product of two residues fits int64."""

Salt = int | tuple[int, int] | list[int] | None


def _splitmix64(seed: int) -> int:
    z = (seed + 0x9E3779B97F4A7C15) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return z ^ (z >> 31)


def hash_keys(salt: Salt) -> tuple[int, int]:
    """The hash's multiplier a in [1, PRIME) and offset b in [0, PRIME), drawn from `salt` (None: salt 0)."""
    first, second = (0, 0) if salt is None else (salt, salt) if isinstance(salt, int) else salt
    return 1 + _splitmix64(first) % (PRIME - 1), _splitmix64(second + 1) % PRIME


def hash_bins(values: Any, num_bins: int, salt: Salt = None, mask_value: int | None = None) -> np.ndarray:
    """The bins `Hashing(num_bins, mask_value, salt)` gives integer `values`, in numpy (docs/layers.md): with x =
    hi * 2**31 + lo (0 <= lo < 2**31), h = ((hi mod p) * a**2 + (lo mod p) * a + b) mod p, p = 2**31 - 1, then
    h mod num_bins; with a mask_value, 0 for it and 1 + h mod (num_bins - 1) for the others."""
    x = np.asarray(values, dtype=np.int64)
    a, b = (np.int64(k) for k in hash_keys(salt))
    lo = np.mod(x, np.int64(2**31))
    hi = (x - lo) // np.int64(2**31)
    h = np.mod(np.mod(hi, PRIME) * a + np.mod(lo, PRIME), PRIME)
    h = np.mod(h * a + b, PRIME)
    if mask_value is None:
        return np.mod(h, num_bins)
    return np.where(x == mask_value, 0, 1 + np.mod(h, num_bins - 1))


class Hashing(Layer):
    """Integer tokens -> bins in [0, num_bins) (Keras' layer, onnxtrain's hash: `hash_bins`), then encoded as
    `output_mode` says (see CategoryEncoding). No vocabulary: unseen tokens spread over the bins as seen ones do.

    Args:
        num_bins: the number of bins, the mask's bin 0 included.
        mask_value: a token that takes bin 0 (the others then hash into 1..num_bins - 1); None: none.
        salt: an int or a pair of ints that picks another hash (Keras' key of its strong hash); None: the default.
    """

    reads_integers = True

    def __init__(
        self,
        num_bins: int,
        mask_value: int | None = None,
        salt: Salt = None,
        output_mode: str = "int",
        sparse: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.num_bins = _positive_int("Hashing", "num_bins", num_bins)
        if mask_value is not None and (not isinstance(mask_value, int) or isinstance(mask_value, bool) or num_bins < 2):
            raise InvalidArgumentError(
                f"Hashing(mask_value=...) expects an int, with num_bins >= 2. Received: mask_value={mask_value!r}, "
                f"num_bins={num_bins}"
            )
        pair = isinstance(salt, tuple | list) and len(salt) == 2
        parts = list(salt) if pair else [salt]  # type: ignore[arg-type]
        if salt is not None and not all(isinstance(s, int) and not isinstance(s, bool) for s in parts):
            raise InvalidArgumentError(f"Hashing(salt=...) expects an int or a pair of ints. Received: salt={salt!r}")
        if sparse is not False:
            raise UnsupportedError(f"Hashing(sparse=...) takes False only (dense). Received: sparse={sparse!r}")
        self.mask_value, self.sparse = mask_value, False
        self.salt: Salt = list(salt) if pair else salt  # type: ignore[arg-type]
        self.output_mode = check_output_mode("Hashing", output_mode)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return encoded_shape(self, input_shape, self.num_bins, self.output_mode)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        ids = integer_values(builder, x)
        a, b = hash_keys(self.salt)

        def const(value: int, hint: str) -> str:
            return builder.constant(np.array(value, np.int64), hint, np.int64)

        prime, a_value = const(PRIME, "prime"), const(a, "multiplier")
        lo = builder.node("Mod", [ids, const(2**31, "low_base")], hint="low")
        hi = builder.node("Div", [builder.node("Sub", [ids, lo]), const(2**31, "high_base")], hint="high")
        h = builder.node(
            "Add", [builder.node("Mul", [builder.node("Mod", [hi, prime]), a_value]), builder.node("Mod", [lo, prime])]
        )
        h = builder.node(
            "Mod",
            [
                builder.node(
                    "Add", [builder.node("Mul", [builder.node("Mod", [h, prime]), a_value]), const(b, "offset")]
                ),
                prime,
            ],
            hint="hash",
        )
        if self.mask_value is None:
            bins = builder.node("Mod", [h, const(self.num_bins, "num_bins")], hint="bins")
        else:
            hashed = builder.node("Add", [builder.node("Mod", [h, const(self.num_bins - 1, "bins")]), const(1, "one")])
            masked = builder.node("Equal", [ids, const(self.mask_value, "mask_value")])
            bins = builder.node("Where", [masked, const(0, "mask_bin"), hashed], hint="bins")
        return encode(builder, bins, self.num_bins, self.output_mode, self.input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            "num_bins": self.num_bins,
            "mask_value": self.mask_value,
            "salt": self.salt,
            "output_mode": self.output_mode,
            "sparse": False,
            **super().get_config(),
        }
