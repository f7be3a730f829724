"""The initializers of fixed values: Zeros, Ones and Constant (a number, or an array such as pretrained embeddings,
which its config holds as base64)."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from onnxtrain._initializer_base import Initializer, Shape, _check_float32, kotlindl_names
from onnxtrain.errors import InvalidArgumentError


@dataclass(frozen=True)
class Zeros(Initializer):
    name: str = field(default="zeros", init=False)
    elementwise: ClassVar[bool] = True

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(shape, np.float32)


@dataclass(frozen=True)
class Ones(Initializer):
    name: str = field(default="ones", init=False)
    elementwise: ClassVar[bool] = True

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.ones(shape, np.float32)


@kotlindl_names(constant_value="value")
@dataclass(frozen=True)
class Constant(Initializer):
    """`value` in every element: a number, or, as Keras 3 takes it (`Embedding(..., embeddings_initializer=
    Constant(embedding_matrix))`: pretrained embeddings), an array of the weight's shape in Keras' layout (a
    convolution kernel's (*window, in, filters), moved into onnxtrain's as a drawn one is: `onnx_conv_kernel`).
    KotlinDL's name of `value`, `constant_value`, works too.

    The config holds an array as its float32 bytes in base64 (`{"dtype", "shape", "base64"}`), a few bytes a value;
    Keras' `{"class_name": "__numpy__", "config": {"value": [...]}}` is read too. A large matrix makes the layer's
    config (and a saved model's config.json, which holds at most 64 MiB) as large: `layer.set_weights([matrix])` on
    the built layer keeps it small.
    """

    value: float | np.ndarray = 0.0
    name: str = field(default="constant", init=False)
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _constant_value(self.value))

    def draws_elementwise(self) -> bool:
        return not isinstance(self.value, np.ndarray)  # an array is in Keras' layout, so a kernel is moved

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(self.value, np.ndarray):
            return np.full(shape, self.value, np.float32)
        if self.value.shape != tuple(shape):
            raise InvalidArgumentError(
                f"Constant(value=...) holds an array of shape {self.value.shape}, and the weight it initializes has "
                f"shape {tuple(shape)} (in Keras' layout: a convolution kernel is (*window, in, filters)). Give an "
                "array of the weight's shape, or a number."
            )
        return self.value.copy()

    def get_config(self) -> dict[str, Any]:
        if not isinstance(self.value, np.ndarray):
            return {"value": self.value, "name": self.name}
        encoded = base64.b64encode(self.value.astype("<f4").tobytes()).decode("ascii")
        return {"value": {"dtype": "float32", "shape": list(self.value.shape), "base64": encoded}, "name": self.name}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Constant):
            return NotImplemented
        mine, theirs = self.value, other.value
        if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
            return bool(np.shape(mine) == np.shape(theirs) and np.array_equal(mine, theirs))
        return mine == theirs

    def __hash__(self) -> int:
        value = self.value
        return hash(("constant", value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value)

    def __repr__(self) -> str:
        value = self.value
        shown = f"<float32 array of shape {value.shape}>" if isinstance(value, np.ndarray) else repr(value)
        return f"Constant(value={shown})"


def _constant_value(value: object) -> float | np.ndarray:
    """Constant's `value` as a float (a number) or a read-only float32 array (an array, a nested list, or a config's
    encoded one), every element finite in float32."""
    if isinstance(value, dict):
        value = _decoded_array(value)
    if not isinstance(value, np.ndarray | list | tuple):
        return _check_float32("Constant", "value", value)
    array = np.asarray(value)
    if array.ndim == 0:
        return _check_float32("Constant", "value", array.item())
    if array.dtype.kind not in "fiu" or array.size == 0:
        what = "an empty array" if array.size == 0 else f"an array of dtype {array.dtype}"
        raise InvalidArgumentError(
            f"Constant(value=...) expects a finite number or a non-empty array of numbers. Received: {what} of shape "
            f"{array.shape}"
        )
    with np.errstate(over="ignore"):
        values = array.astype(np.float32)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise InvalidArgumentError(
            f"Constant(value=...) expects finite float32 values (|value| <= 3.4e38). Received: value{list(where)}="
            f"{array[where]} ({len(bad)} of {values.size} not finite in float32)"
        )
    values.flags.writeable = False
    return values


def _decoded_array(config: dict[str, Any]) -> np.ndarray:
    """The array a Constant config holds: ours ({"dtype": "float32", "shape": [...], "base64": "..."}) or Keras'
    ({"class_name": "__numpy__", "config": {"value": [...], "dtype": ...}})."""
    if config.get("class_name") == "__numpy__" and isinstance(config.get("config"), dict):
        return np.asarray(config["config"].get("value"))
    shape, encoded = config.get("shape"), config.get("base64")
    if (
        config.get("dtype") == "float32"
        and isinstance(shape, list)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        and isinstance(encoded, str)
    ):
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError as e:
            raise InvalidArgumentError(f"Constant(value=...) holds base64 that does not decode: {e}") from e
        if len(data) == 4 * math.prod(shape):
            return np.frombuffer(data, "<f4").reshape(shape)
        raise InvalidArgumentError(
            f"Constant(value=...) holds {len(data)} bytes, and shape {shape} takes {4 * math.prod(shape)} (float32)."
        )
    raise InvalidArgumentError(
        "Constant(value=...) expects a number, an array, or an encoded array as its config writes it "
        f"({{'dtype': 'float32', 'shape': [...], 'base64': ...}}). Received a dict with keys {sorted(config)}"
    )
