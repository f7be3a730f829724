"""Registry: the one place that turns a user's identifier ("adam", a class, a config dict, an instance) into an
object of one kind (activation, initializer, loss, optimizer), with the same error wording for every kind; and
`Registered`, the classes and functions of one's own that a kind's `register` decorator records for `load_model`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError

T = TypeVar("T")


def snake_case(name: str) -> str:
    """ "HeNormal", "he-normal" and " he_normal " all become "he_normal"."""
    name = name.strip().replace("-", "_").replace(" ", "_")
    if name.lower() != name:
        name = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return name.replace("__", "_")


class Registry(Generic[T]):
    """Named classes of one kind, with aliases.

    Args:
        kind: what the names name ("optimizer"), for messages.
        base: the base class; instances pass through `get`, subclasses are instantiated.
        classes: canonical name -> class.
        aliases: other spelling -> canonical name; the message for an unknown name lists them too.
        normalize: how a user's string becomes a key (default: snake_case).
        hints: a name this registry does not know but users reach for (another library's) -> what to do
            instead, added to the message for it.
    """

    def __init__(
        self,
        kind: str,
        base: type[T],
        classes: Mapping[str, type[T]],
        aliases: Mapping[str, str] | None = None,
        normalize: Callable[[str], str] = snake_case,
        hints: Mapping[str, str] | None = None,
    ):
        self.kind = kind
        self.base = base
        self.classes = dict(classes)
        self.aliases = dict(aliases or {})
        self.normalize = normalize
        self.hints = dict(hints or {})

    @property
    def names(self) -> list[str]:
        return sorted(self.classes)

    def lookup(self, name: str) -> type[T]:
        """The class a name stands for.

        Raises:
            UnknownIdentifierError: naming the received string and listing the valid names and aliases, with the
                hint for it if there is one.
        """
        key = self.normalize(name)
        if self.aliases.get(key, key) in self.classes:
            return self.classes[self.aliases.get(key, key)]
        aliases = sorted(alias for alias, target in self.aliases.items() if alias != target)
        also = f", and the aliases {', '.join(f'{a!r} (= {self.aliases[a]!r})' for a in aliases)}" if aliases else ""
        hint = f" {self.hints[key]}" if key in self.hints else ""
        raise UnknownIdentifierError(
            f"Could not interpret {self.kind} {name!r}. Valid names: {self.names}{also}.{hint}"
        )

    def get(self, identifier: Any, also_accepted: str = "") -> T:
        """An instance for a name, a class, a config dict ({"name": ..., **arguments}) or an instance."""
        if isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier()
        if isinstance(identifier, dict):
            if "name" not in identifier:
                raise InvalidArgumentError(
                    f"Could not interpret {self.kind} config {identifier!r}: it has no 'name' key. "
                    f"Expected {{'name': one of {self.names}, **arguments}}."
                )
            arguments = {key: value for key, value in identifier.items() if key != "name"}
            cls = self.lookup(str(identifier["name"]))
            accepted = _keyword_arguments(cls)
            unknown = [key for key in arguments if accepted is not None and key not in accepted]
            if unknown:
                raise InvalidArgumentError(
                    f"Could not interpret {self.kind} config {identifier!r}: unknown key(s) {unknown} for "
                    f"{cls.__name__}. Accepted keys: {['name', *(accepted or [])]}"
                )
            return cls(**arguments)
        if isinstance(identifier, str):
            return self.lookup(identifier)()
        raise UnknownIdentifierError(
            f"Could not interpret {self.kind} {identifier!r} ({type(identifier).__name__}). Expected one of "
            f"{self.names}{also_accepted}, {_article(self.base.__name__)} {self.base.__name__} class or instance, or a "
            "config dict."
        )


def _keyword_arguments(cls: type) -> list[str] | None:
    """The arguments `cls(...)` takes by keyword, or None when it takes any (**kwargs) or has no readable signature."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


class Registered:
    """Classes and functions of one's own that a saved model names (by `__name__`), recorded by a kind's `register`
    decorator, as Keras' `register_keras_serializable`: `load_model` rebuilds them by that name, which only the code
    that defines them can supply, so they are registered when that code runs.

    Args:
        kind: what they are ("metric"), for messages.
        decorator: the public decorator, as messages name it ("onnxtrain.metrics.register").
        accepts: whether an object may be registered; `expected` says what that is, for the refusal.
        built_in: the kind's own names, which a class of one's own may not take (it would shadow them on load).
    """

    def __init__(
        self, kind: str, decorator: str, accepts: Callable[[Any], bool], expected: str, built_in: Callable[[], Any]
    ):
        self.kind = kind
        self.decorator = decorator
        self.accepts = accepts
        self.expected = expected
        self.built_in = built_in
        self.objects: dict[str, Any] = {}

    def register(self, obj: T) -> T:
        """Record `obj` under its `__name__` and return it (a decorator). Registering a name again replaces it (a
        notebook cell run twice).

        Raises:
            InvalidTypeError: not what this kind registers, or a lambda (which has no name to save).
            InvalidArgumentError: the name of one of the kind's own.
        """
        name = getattr(obj, "__name__", None)
        if not self.accepts(obj) or not isinstance(name, str):
            raise InvalidTypeError(f"{self.decorator} expects {self.expected}. Received: {obj!r}")
        if name == "<lambda>":
            raise InvalidTypeError(
                f"{self.decorator} expects {self.expected} with a name; a lambda has none to save. Define it with "
                "def. Received: a lambda"
            )
        if name in self.built_in():
            raise InvalidArgumentError(
                f"{self.decorator}: {name!r} is the name of a built-in {self.kind}; give yours another name."
            )
        self.objects[name] = obj
        return obj

    def get(self, name: str) -> Any | None:
        """What was registered under `name`, or None."""
        return self.objects.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self.objects)


def _article(word: str) -> str:
    """English's article before `word`: "an Optimizer", "a Loss"."""
    return "an" if word[:1].lower() in "aeiou" else "a"
