"""The `stacklevel` that points a warning raised while a model is imported at the user's own line."""

from __future__ import annotations

import os
import sys
import types

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # onnxtrain/


def user_stacklevel() -> int:
    """For `warnings.warn` in the function that calls this: the level of the first frame outside onnxtrain.
    Counting frames by hand breaks whenever a wrapper is added on the way (`Layer.__init__`'s wrappers)."""
    level = 2  # 1: the function that warns; 2: its caller
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    return level
