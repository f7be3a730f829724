"""Keras' spellings of optimizer arguments, and Keras' optimizer arguments onnxtrain has no parameter for, checked in
one place for every optimizer class (`keras_arguments`, a class decorator).

A Keras name with the same meaning as one of ours is accepted in its place (`beta_1` for `beta1`, `clipvalue` for
`clip_value`, `global_clipnorm` for `clip_norm`); giving both is refused by name. So is KotlinDL's `clip_gradient`
(its `clipGradient`), a clipping object (`ClipGradientByValue(0.1)`, `_clip_gradient.py`) that stands for
`clip_value` or `clip_norm`. Keras' arguments with no counterpart here are accepted at the values that turn them
off (`use_ema=False`, `loss_scale_factor=None`, ..., which is what Keras' `get_config()` holds; Keras' `name`, a
label, at any string) and refused otherwise, all at once, with what to do instead. None of them reaches the
dataclass, so the config holds onnxtrain's names only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from onnxtrain._checks import as_real
from onnxtrain._spelling import spelling_hint, torch_optimizer_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.optimizers._clip_gradient import ClipGradientAction

ClassT = TypeVar("ClassT", bound=type)

# Keras' name -> onnxtrain's, for every optimizer (Keras' base optimizer takes them all).
COMMON_SPELLINGS = {"clipvalue": "clip_value", "global_clipnorm": "clip_norm"}
CLIP_GRADIENT = "clip_gradient"  # KotlinDL's clipGradient: a ClipGradientAction, which stands for our clip settings


def _off(value: object) -> bool:
    """None, False or a number equal to 0 (numpy's too)."""
    return value is None or (isinstance(value, bool | np.bool_) and not value) or as_real(value) == 0.0


# Keras' arguments with no counterpart: (is this value one that asks for nothing?, why it is refused otherwise).
_KERAS_ONLY: dict[str, tuple[Callable[[object, Mapping[str, Any]], bool], str]] = {
    "clipnorm": (
        lambda v, kw: v is None,
        "Keras' clipnorm clips each variable's gradient by its own norm; onnxtrain clips the global norm of all "
        "gradients together: global_clipnorm=... (or clip_norm=...), which is Keras' global_clipnorm",
    ),
    "weight_decay": (
        lambda v, kw: _off(v),
        "decoupled weight decay is in Adam, AdamW and Nadam only: use AdamW(weight_decay=...), or penalize the weights "
        "with kernel_regularizer='l2' on the layers (PyTorch's weight_decay=wd, added to the gradient, is "
        "kernel_regularizer=L2(wd / 2) and bias_regularizer=L2(wd / 2) on every layer: docs/pytorch.md)",
    ),
    "use_ema": (lambda v, kw: _off(v), "onnxtrain keeps no moving average of the weights"),
    "ema_momentum": (lambda v, kw: _off(kw.get("use_ema")), "onnxtrain keeps no moving average of the weights"),
    "ema_overwrite_frequency": (
        lambda v, kw: _off(kw.get("use_ema")),
        "onnxtrain keeps no moving average of the weights",
    ),
    "name": (
        lambda v, kw: v is None or isinstance(v, str),
        "Keras' name is a label of the optimizer object (a string), which onnxtrain's configs do not keep",
    ),
    "loss_scale_factor": (lambda v, kw: v is None, "onnxtrain trains in float32 and scales no loss"),
    "gradient_accumulation_steps": (
        lambda v, kw: v is None,
        "onnxtrain updates after every batch: use a larger batch_size instead",
    ),
}


def keras_arguments(**spellings: str) -> Callable[[ClassT], ClassT]:
    """Class decorator, above `@dataclass`: the class's constructor also takes Keras' names for its arguments
    (`spellings`: Keras' name -> onnxtrain's, added to its bases' and to `COMMON_SPELLINGS`) and Keras' arguments
    that ask for nothing (see the module docstring). The signature shown (help, IDEs) stays the dataclass's."""

    def decorate(cls: ClassT) -> ClassT:
        names = {**COMMON_SPELLINGS, **getattr(cls, "keras_spellings", {}), **spellings}
        init = vars(cls)["__init__"]  # the dataclass's
        parameters = list(inspect.signature(init).parameters.values())[1:]  # without self
        positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
        takes = [p.name for p in parameters]

        @functools.wraps(init)
        def init_taking_keras_arguments(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs:
                kwargs = ours(type(self).__name__, names, takes, positional[: len(args)], kwargs)
            init(self, *args, **kwargs)

        setattr(cls, "__init__", init_taking_keras_arguments)  # noqa: B010 (mypy refuses assigning a method)
        setattr(cls, "keras_spellings", names)  # noqa: B010
        return cls

    return decorate


def ours(
    owner: str, spellings: Mapping[str, str], takes: list[str], positional: list[str], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """`kwargs` of `owner(...)` with Keras' names turned into ours and Keras' arguments that ask for nothing dropped.

    Raises:
        InvalidArgumentError: one argument given under both names (or positionally and under Keras' name).
        UnsupportedError: Keras' arguments with no counterpart, at values that ask for something; all of them.
        InvalidTypeError: a keyword neither the class nor Keras takes.
    """
    result: dict[str, Any] = {}
    if CLIP_GRADIENT in kwargs and CLIP_GRADIENT not in takes:
        kwargs = _clip_settings(owner, kwargs, positional)
    for name, value in kwargs.items():
        target = spellings.get(name)
        if target is None or name in takes:
            continue
        if target in kwargs or target in positional:
            mine = f"{target}={kwargs[target]!r}" if target in kwargs else f"{target} (positional)"
            raise InvalidArgumentError(
                f"{owner} takes {target} or its Keras name {name}, not both. Received: {mine}, {name}={value!r}"
            )
        result[target] = value
    refused = []
    unknown = []
    for name, value in kwargs.items():
        if name in takes:
            result[name] = value
        elif name in spellings:
            continue
        elif name in _KERAS_ONLY:
            asks_for_nothing, why = _KERAS_ONLY[name]
            if not asks_for_nothing(value, kwargs):
                refused.append(f"{name}={value!r} ({why})")
        else:
            unknown.append(name)
    if refused:
        them = "it" if len(refused) == 1 else "them"
        raise UnsupportedError(
            f"{owner} does not support Keras' {'; '.join(refused)}. Leave {them} out, or at the value that turns "
            f"{them} off in Keras."
        )
    if unknown:
        keras = sorted(name for name in spellings if name not in takes)
        hint = spelling_hint(unknown, (*takes, *spellings, CLIP_GRADIENT))
        hint += torch_optimizer_hint(owner, unknown, (*takes, *spellings))
        raise InvalidTypeError(
            f"{owner}() got an unexpected keyword argument {', '.join(map(repr, unknown))}.{hint} {owner} takes: "
            f"{', '.join(takes)}; Keras' names {', '.join(keras)}; and KotlinDL's {CLIP_GRADIENT}"
        )
    return result


def _clip_settings(owner: str, kwargs: dict[str, Any], positional: list[str]) -> dict[str, Any]:
    """`kwargs` with KotlinDL's `clip_gradient` object replaced by the settings it stands for."""
    action = kwargs[CLIP_GRADIENT]
    if not isinstance(action, ClipGradientAction):
        raise InvalidTypeError(
            f"{owner}({CLIP_GRADIENT}=...) expects KotlinDL's clipping object: ClipGradientByValue(value), "
            f"ClipGradientByNorm(norm) or NoClipGradient() (onnxtrain.optimizers), or use clip_value=... / "
            f"clip_norm=... Received: {action!r}"
        )
    settings = action.settings()
    for own in settings:
        keras = [name for name, target in COMMON_SPELLINGS.items() if target == own and name in kwargs]
        given = [name for name in (own, *keras) if name in kwargs or name in positional]
        if given:
            raise InvalidArgumentError(
                f"{owner} takes {own} or KotlinDL's {CLIP_GRADIENT}={action!r}, which sets it, not both. Received: "
                f"{given[0]}={kwargs.get(given[0], '(positional)')!r}"
            )
    return {**{k: v for k, v in kwargs.items() if k != CLIP_GRADIENT}, **settings}
