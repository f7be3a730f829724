"""The table of gradient rules: one per (domain, op_type), filled by the `@rule` decorator of the rule modules.

A rule reads a `GradientContext` (the forward node, its attributes, the gradient of each output) and returns the
gradient of each input, None where none flows (shapes, indices, an input that needs none).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnxtrain.autodiff._context import GradientContext

Rule = Callable[["GradientContext"], Sequence[str | None]]
"""(context) -> the gradient of each node input, in input order (a shorter list: None for the rest)."""

RULES: dict[tuple[str, str], Rule] = {}

# The package modules that only hold machinery; every other module of the package holds rules.
_MACHINERY = {"_rules", "_context", "_broadcast", "_backward", "_fold", "_missing_rules", "_model_argument"}


def rule(*op_types: str, domain: str = "") -> Callable[[Rule], Rule]:
    """Register the decorated function as the gradient rule of `op_types` (default ONNX domain).

    Example:
        >>> @rule("Neg")
        ... def _neg(ctx: GradientContext) -> list[str | None]:
        ...     return [ctx.emit("Neg", [ctx.dy])]
    """

    def register(function: Rule) -> Rule:
        for op_type in op_types:
            key = (domain, op_type)
            if key in RULES and RULES[key] is not function:
                raise ValueError(f"Gradient rule for {op_type!r} (domain {domain!r}) registered twice.")
            RULES[key] = function
        return function

    return register


def lookup(domain: str, op_type: str) -> Rule | None:
    """The rule of the op, None when there is none; imports every rule module of the package the first time."""
    load_rule_modules()
    return RULES.get(("" if domain == "ai.onnx" else domain, op_type))


_loaded = False


def load_rule_modules() -> None:
    """Import every module of this package (each one's `@rule`s fill the table): a new rule module needs no list."""
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("onnxtrain.autodiff")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _MACHINERY:
            importlib.import_module(f"onnxtrain.autodiff.{module.name}")
    _loaded = True
