"""The training engines by name: `ENGINES` maps each name to the factory that opens the engine.

Example:
    >>> from onnxtrain import engines
    >>> engines.names()
    ('auto', 'ort-training', 'portable')
    >>> engine = engines.get("portable")(EngineRequest(layers, loss, optimizer, Device("cpu")))  # doctest: +SKIP
"""

from __future__ import annotations

from onnxtrain import _ort_training_session, portable
from onnxtrain.engine import EngineFactory
from onnxtrain.errors import InvalidArgumentError

AUTO = "auto"
"""The engine `compile` picks by default: the portable one (`resolve`)."""

ENGINES: dict[str, EngineFactory] = {
    "ort-training": _ort_training_session.create_engine,
    "portable": portable.create_engine,
}


def names() -> tuple[str, ...]:
    """What `compile(engine=...)` takes: "auto", then each engine's name."""
    return (AUTO, *ENGINES)


def resolve(requested: str) -> str:
    """ "auto" -> "portable": the engine every ONNX Runtime build runs, with every optimizer and op that has a
    gradient rule. "ort-training" is used only where asked for (its training builds ended at ONNX Runtime 1.19).
    """
    return "portable" if requested == AUTO else requested


def get(name: str) -> EngineFactory:
    """The factory of the engine `name` ("auto" included).

    Raises:
        InvalidArgumentError: no engine has that name; the message lists those that do.
    """
    factory = ENGINES.get(resolve(name)) if isinstance(name, str) else None
    if factory is None:
        raise InvalidArgumentError(f"engine expects one of {list(names())}. Received: engine={name!r}")
    return factory
