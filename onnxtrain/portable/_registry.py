"""The lookup every gradient and update rule table shares: class -> rule, with safe inheritance.

A subclass inherits its base's rule only while it keeps the base's forward (the methods that emit ONNX): a
subclass that overrides `emit` computes something else, and a borrowed gradient would be silently wrong.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from onnxtrain.errors import InvalidTypeError, UnsupportedError

Rule = TypeVar("Rule")


class RuleRegistry(Generic[Rule]):
    """Rules keyed by class.

    Args:
        kind: what the classes are, for messages ("layer", "activation", ...).
        base: the base class every registered class derives from.
        forward_methods: methods a subclass must not override to inherit a rule.
        register_function: the public function that registers a rule, for messages.
        rule_name: what a rule is called in messages.
    """

    def __init__(
        self,
        kind: str,
        base: type,
        forward_methods: tuple[str, ...],
        register_function: str,
        rule_name: str = "gradient rule",
    ):
        self.kind = kind
        self.rule_name = rule_name
        self.base = base
        self.forward_methods = forward_methods
        self.register_function = register_function
        self._rules: dict[type, Rule] = {}

    def register(self, cls: type, rule: Rule) -> None:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise InvalidTypeError(
                f"{self.register_function} expects a {self.base.__name__} subclass. Received: {cls!r}"
            )
        self._rules[cls] = rule

    def lookup(self, instance: object) -> Rule:
        """The rule of `instance`'s class, or of the nearest registered base whose forward it keeps."""
        cls = type(instance)
        overridden = ""
        for candidate in cls.__mro__:
            if candidate not in self._rules:
                continue
            if candidate is cls or all(
                getattr(cls, m, None) is getattr(candidate, m, None) for m in self.forward_methods
            ):
                return self._rules[candidate]
            overridden = f" (it overrides the forward of {candidate.__name__}, so that rule does not apply)"
            break
        raise UnsupportedError(
            f"The portable engine has no {self.rule_name} for {self.kind} {cls.__name__}{overridden}. "
            "Register one "
            f"with onnxtrain.portable.{self.register_function}({cls.__name__}, rule), or train with "
            "engine='ort-training'."
        )

    def __contains__(self, cls: type) -> bool:
        return cls in self._rules
