"""Keras' input declarations on any layer (`Dense(64, input_shape=(4,))`, Keras 2's `input_dim=4`): checked when
the layer is made and kept on it, so that a Sequential whose first layer carries one starts with that Input.

As in Keras 3, they say what the model's input is only on a Sequential's first layer (Sequential inserts the Input);
elsewhere Keras ignores them, and onnxtrain checks them instead: a layer whose declared shape contradicts the shape
it reads is refused (`check_declared_input`). Keras 2's `batch_input_shape=(None, 4)` is `input_shape=(4,)`; a fixed
batch size (`batch_size=32`, `batch_input_shape=(32, 4)`) is refused: onnxtrain's models take any batch size.
`dtype` is the Input's dtype where a shape is declared ("float32", or "int64" / "int32" token ids); elsewhere
Keras' compute dtype, taken as "float32" (what onnxtrain computes in) and refused otherwise. Keras 3's configs write it
as a dtype policy, `{"class_name": "DTypePolicy", "config": {"name": "float32"}, ...}`: the float32 policy is taken as
"float32", any other (mixed precision, float16, bfloat16, float64, quantized) is refused naming it. None of them is
in the layer's config: a built model's config holds its Input instead; a config that has them loads as the layer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError

INPUT_ARGUMENTS = ("input_shape", "input_dim", "batch_input_shape", "batch_size", "dtype")
_INPUT_DTYPES = ("float32", "int64", "int32")  # Input's (`layers._core.INPUT_DTYPES`)
_DECLARED = "_declared_input"  # in a layer's __dict__: its DeclaredInput


@dataclass(frozen=True)
class DeclaredInput:
    """What a layer's input arguments declare: the per-example shape, and the Input's dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype


def take_input_arguments(
    owner: str, kwargs: dict[str, Any], takes: tuple[str, ...]
) -> tuple[dict[str, Any], DeclaredInput | None]:
    """`kwargs` of `owner(...)` without Keras' input arguments that the layer takes no parameter for (a custom
    layer's own `dtype` stays its own), and whether they declared an input (`DeclaredInput`, or None).

    Returns:
        (the other keyword arguments, the declaration or None).

    Raises:
        InvalidArgumentError: a shape that is not a tuple of positive ints; input_shape and input_dim both.
        UnsupportedError: a fixed batch size; a dtype other than float32 where no shape is declared.
    """
    given = {name: kwargs[name] for name in INPUT_ARGUMENTS if name in kwargs and name not in takes}
    if not given:
        return kwargs, None
    rest = {name: value for name, value in kwargs.items() if name not in given}
    return rest, _declared(owner, given)


def _declared(owner: str, given: dict[str, Any]) -> DeclaredInput | None:
    batch_size = given.get("batch_size")
    if batch_size is not None:
        raise UnsupportedError(
            f"{owner}(batch_size=...) is not supported: onnxtrain's models take any batch size (the batch axis is "
            f"dynamic). Leave it out and give the batch size to fit (fit(x, y, batch_size=...)). "
            f"Received: batch_size={batch_size!r}"
        )
    shapes = [name for name in ("input_shape", "input_dim", "batch_input_shape") if given.get(name) is not None]
    if len(shapes) > 1:
        listed = ", ".join(f"{name}={given[name]!r}" for name in shapes)
        raise InvalidArgumentError(
            f"{owner} takes one of input_shape, input_dim and batch_input_shape (they say the same). Received: {listed}"
        )
    dtype = given.get("dtype")
    policy = policy_name(dtype)
    if policy is not None:  # Keras' compute dtype, a policy in any case: float32 or refused
        _check_float32_policy(owner, dtype, policy)
        dtype = "float32"
    if not shapes:
        if dtype is not None and not _is_float32(dtype):
            raise UnsupportedError(_compute_dtype_refusal(owner, dtype, "without input_shape is Keras' compute dtype"))
        return None
    name = shapes[0]
    value = given[name]
    shape: tuple[int, ...]
    if name == "input_dim":
        shape = (_positive(owner, "input_dim", value),)
    else:
        if not isinstance(value, tuple | list):
            example = "(None, 4)" if name == "batch_input_shape" else "(4,)"
            raise InvalidArgumentError(
                f"{owner}({name}=...) expects a tuple of dimensions, e.g. {name}={example} (or input_dim=4). "
                f"Received: {name}={value!r}"
            )
        dims = list(value)
        if name == "batch_input_shape":
            if not dims or dims[0] is not None:
                raise UnsupportedError(
                    f"{owner}(batch_input_shape=...) takes the batch axis as None: onnxtrain's models take any batch "
                    f"size. Use batch_input_shape=(None, *shape), or input_shape=shape. Received: "
                    f"batch_input_shape={value!r}"
                )
            dims = dims[1:]
        if not dims:
            raise InvalidArgumentError(
                f"{owner}({name}=...) expects at least one dimension. Received: {name}={value!r}"
            )
        if None in dims:
            raise InvalidArgumentError(
                f"{owner}({name}={value!r}) has a dimension of no size (None): onnxtrain's models have a fixed shape "
                "per example (only the batch size is free). Pad sequences to one length and give it, e.g. "
                f"input_shape=(40,). Received: {name}={value!r}"
            )
        shape = tuple(_positive(owner, f"{name}[{i}]", d) for i, d in enumerate(dims))
    return DeclaredInput(shape, _input_dtype(owner, "float32" if dtype is None else dtype))


def _input_dtype(owner: str, value: object) -> np.dtype:
    """`value` as one of the dtypes an Input takes (`Input(dtype=...)`'s rule, `layers._core.input_dtype`)."""
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, KeyError):
        dtype = None
    if isinstance(value, bool) or dtype is None or dtype.name not in _INPUT_DTYPES:
        raise InvalidArgumentError(
            f"{owner}(dtype=...) beside input_shape is the Input's: one of {list(_INPUT_DTYPES)}, float32 for "
            f"features, int64 or int32 for token ids that Embedding layers read. Received: dtype={value!r}"
        )
    return dtype


def _is_float32(value: object) -> bool:
    """Whether `value` names float32 (a policy such as "mixed_float16" names no numpy dtype: not float32)."""
    try:
        return bool(np.dtype(value) == np.float32)  # type: ignore[call-overload]
    except (TypeError, ValueError, KeyError):  # np.dtype reads a dict as a structured dtype's fields
        return False


def policy_name(value: object) -> str | None:
    """The name of the Keras dtype policy `value` is, or None when it is none: a policy as Keras' configs write it
    (`{"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}, ...}`; Keras 2's "Policy" and Keras 3.0's
    "FloatDTypePolicy" alike; a quantized one, `{"mode": "int8", "source_name": "float32"}`, is "int8_from_float32"),
    a Keras policy object (its `name`), or a policy's name that no numpy dtype has ("mixed_float16"). A policy that
    names nothing readable is "" (still a policy, never float32)."""
    if isinstance(value, str):
        return value if value.startswith("mixed_") or "_from_" in value else None
    if isinstance(value, dict):
        class_name = value.get("class_name")
        if not isinstance(class_name, str) or not class_name.endswith("Policy"):
            return None
        config = value.get("config")
        config = config if isinstance(config, dict) else {}
        name, mode, source = config.get("name"), config.get("mode"), config.get("source_name")
        if isinstance(mode, str) and isinstance(source, str):
            return f"{mode}_from_{source}"
        return name if isinstance(name, str) else ""
    if type(value).__name__.endswith("DTypePolicy"):  # keras.DTypePolicy("float32"), never imported here
        name = getattr(value, "name", None)
        return name if isinstance(name, str) else ""
    return None


def _check_float32_policy(owner: str, value: object, policy: str) -> None:
    if policy != "float32":
        what = f"is Keras' dtype policy {policy!r}" if policy else "is a Keras dtype policy naming no dtype"
        raise UnsupportedError(_compute_dtype_refusal(owner, value, what))


def _compute_dtype_refusal(owner: str, value: object, what: str) -> str:
    return (
        f"{owner}(dtype=...) {what}, and onnxtrain computes and keeps its weights in float32 only: it takes "
        "'float32' or the float32 policy (Keras' default, "
        "{'class_name': 'DTypePolicy', 'config': {'name': 'float32'}}); mixed precision, float16, bfloat16, float64 "
        "and quantized policies are not supported. Leave dtype out, or give 'float32'. For integer inputs (token "
        "ids) declare the input: Input(shape=(40,), dtype='int64'), or input_shape=(40,) with dtype='int64' on a "
        f"Sequential's first layer. Received: dtype={value!r}"
    )


def _positive(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InvalidArgumentError(f"{owner}({name}=...) expects a positive int. Received: {name}={value!r}")
    return int(value)


def declare_input(layer: Any, declared: DeclaredInput) -> None:
    """Keep `declared` on `layer` (see `declared_input`)."""
    layer.__dict__[_DECLARED] = declared


def declared_input(layer: Any) -> DeclaredInput | None:
    """What `layer`'s input arguments declared (`Dense(8, input_shape=(4,))`), or None."""
    declared = getattr(layer, "__dict__", {}).get(_DECLARED)
    return declared if isinstance(declared, DeclaredInput) else None


def check_declared_input(layer: Any, shape: tuple[int, ...], reads: str) -> None:
    """Refuse `layer` reading inputs of `shape` (`reads` says from where) when its input arguments declared
    another shape (Keras ignores them there; a contradiction is a mistake).

    Raises:
        ShapeError: the declared and the real input shape differ.
    """
    declared = declared_input(layer)
    if declared is None or tuple(shape) == declared.shape:
        return
    kind = type(layer).__name__
    raise ShapeError(
        f"{kind}(input_shape={declared.shape}) declares inputs of shape {declared.shape}, but the layer reads "
        f"{reads}, of shape {tuple(shape)}. Received: input_shape={declared.shape}. Give the shape it reads, or "
        "leave input_shape out (only a Sequential's first layer needs it)."
    )
