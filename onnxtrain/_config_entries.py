"""Reading a saved model's config.json entry by entry: what rebuilding a layer, loss, optimizer or metric from a
damaged entry raises, re-raised as a ModelFileError naming the entry (`config_entry`), shown at most 200
characters long (`shown_entry`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from onnxtrain.errors import ModelFileError, OnnxtrainError

REBUILD_ERRORS = (OnnxtrainError, AttributeError, KeyError, TypeError, ValueError, OverflowError, MemoryError)
"""What rebuilding a layer, loss, optimizer or metric from a damaged config.json raises."""


@contextlib.contextmanager
def config_entry(problem: str, entry: str | None = None, value: Any = None) -> Iterator[None]:
    """Re-raise what rebuilding `entry` of config.json raises as a ModelFileError that names the entry."""
    try:
        yield
    except ModelFileError:
        raise
    except REBUILD_ERRORS as e:
        cause = str(e) if isinstance(e, OnnxtrainError) else f"{type(e).__name__}: {e}"
        if entry is None:
            raise ModelFileError(f"{problem}: {cause}") from e
        raise ModelFileError(f"{problem}: {entry} = {shown_entry(value)}: {cause}") from e


def shown_entry(value: Any) -> str:
    """A config.json entry as messages show it: its JSON, cut to 200 characters."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 200 else text[:199] + "…"
