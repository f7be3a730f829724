"""argparse types that several commands' options share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse's `type` for options that take a positive integer (--epochs, --batch-size, ...)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
