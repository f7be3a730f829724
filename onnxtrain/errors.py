"""The project's exception types, and `listing`, which names a few of many entries in their messages.

Each subclasses the matching built-in (ValueError, TypeError, FileExistsError, ...) so callers can catch either
the onnxtrain type or the standard one. Messages name the argument, what was expected and what was received.
"""

from __future__ import annotations

from collections.abc import Iterable


class OnnxtrainError(Exception):
    """Base class of every error raised by onnxtrain."""


class InvalidArgumentError(OnnxtrainError, ValueError):
    """An argument has the right type but a value that is not allowed."""


class InvalidTypeError(OnnxtrainError, TypeError):
    """An argument has a type that is not allowed."""


class ShapeError(InvalidArgumentError):
    """A tensor or layer shape does not match what is expected."""


class UnknownIdentifierError(InvalidArgumentError):
    """A string identifier (activation, initializer, optimizer, loss, metric...) is not known."""


class DataFormatError(OnnxtrainError, ValueError):
    """A data file (IDX, dataset archive) is malformed, truncated or fails verification."""


class DownloadError(OnnxtrainError, OSError):
    """A download failed: HTTP error, time-out or refused connection."""


class ModelExistsError(OnnxtrainError, FileExistsError):
    """The save target already exists and the writing mode forbids touching it."""


class ModelFileError(OnnxtrainError, ValueError):
    """A saved model (directory, model.onnx, config.json, checkpoint) is missing, unreadable or invalid."""


class ModelStateError(OnnxtrainError, RuntimeError):
    """The model is in the wrong state for the call (not compiled, already closed, ...)."""


class RuntimeSetupError(OnnxtrainError, ImportError):
    """The installed ONNX Runtime cannot do what was asked (missing package, flavour clash, no CUDA provider)."""


class UnsupportedError(OnnxtrainError, NotImplementedError):
    """The requested combination cannot be expressed by the training engine."""


class PortableEngineOnlyError(UnsupportedError):
    """A training graph needs what only the portable engine's train step has: a step counter (Dropout's masks) or
    outputs for layer state (BatchNormalization's running statistics). The ort-training engine adds that advice."""


class OpsetTooOldError(UnsupportedError):
    """An opset older than a graph the model holds, which is never downgraded (`OnnxLayer.graph_at`): `required`
    is the oldest opset that takes it, so that a command can say which option value to pass (`--opset 21`)."""

    def __init__(self, message: str, *, required: int | None = None):
        super().__init__(message)
        self.required = required


class NonFiniteLossError(OnnxtrainError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class DataParallelError(InvalidArgumentError):
    """The processes of a data-parallel world cannot train together as they asked: they compiled different models or
    settings, or hold different data, or a batch has fewer rows than the world has processes.

    Every process raises it alike, with the same message, at the same call: it comes from a check on values that
    all processes shared first (`onnxtrain._data_parallel_fit`), so none is left waiting in a collective call, and a
    launcher may report it once (`onnxtrain train --workers N` prints it from process 0 alone).
    """


class PeerProcessError(OnnxtrainError, ConnectionError):
    """Another process of the data-parallel world failed, left or could not be reached, so this process's
    collective call (all-reduce, broadcast, joining the world) could not complete. The runtime's own error is the
    cause; the failing process's error says what went wrong there."""


def listing(names: Iterable[str], limit: int, *, quote: bool = True) -> str:
    """`names` for a message: the first `limit` of them (quoted with repr unless `quote=False`), then how many
    more there are; "nothing" when there are none. A folder may hold thousands of entries."""
    names = list(names)
    if not names:
        return "nothing"
    shown = ", ".join(repr(name) if quote else name for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
